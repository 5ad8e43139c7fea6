"""The runtime end to end over loopback, in all four bundled wire formats,
under asyncio and trio, and through the blocking SyncRuntime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import modelwire
from modelwire import Done, Finish, TextDelta, ToolCallDelta, Usage
from modelwire.testing import ReplayServer, Script, StreamError, ToolCall

from core_helpers import PROVIDERS, provider_env

pytestmark = pytest.mark.anyio

IDS = [p[0] for p in PROVIDERS]
EMBED_MODELS = {"openai": "text-embedding-3-small", "gemini": "gemini-embedding-001", "ollama": "nomic-embed-text"}
TOOLS = [{"name": "get_weather", "description": "w", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=3) as srv:
        yield srv


@pytest.fixture
def env(server: ReplayServer) -> dict[str, str]:
    server.reset()
    return provider_env(server)


def make_runtime(env: dict[str, str]) -> modelwire.Runtime:
    # No retries here: these tests look at one exchange each (test_fallback.py covers the policy).
    return modelwire.Runtime.from_manifests("builtin:*", env=env, policy="raise")


@pytest.mark.parametrize(("fmt", "model", "base_var", "key_var"), PROVIDERS, ids=IDS)
async def test_generate_text_tools_usage_cost(server: ReplayServer, env: dict[str, str], fmt: str, model: str,
                                              base_var: str, key_var: str | None) -> None:
    calls = [ToolCall("call_a1", "get_weather", '{"city": "Paris"}'), ToolCall("call_b2", "get_weather", '{"city": "Rome"}')]
    server.push(Script(text=("Héllo", ", ", "wörld 🌍", "!"), tool_calls=calls, usage=(21, 9)))
    async with make_runtime(env) as rt:
        resp = await rt.generate(model, "hi", tools=TOOLS, system="be brief")
    assert resp.text == "Héllo, wörld 🌍!"
    assert [(c.name, c.parsed_arguments()) for c in resp.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})
    ]
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (21, 9)
    pricing = rt.catalog.models[model].pricing
    assert pricing is not None
    assert resp.cost is not None
    assert float(resp.cost) == pytest.approx(21 * pricing.input_per_mtok / 1e6 + 9 * pricing.output_per_mtok / 1e6)
    assert resp.finish_reason in ("tool_calls", "stop")
    sent = server.requests[-1]
    assert sent.fmt == fmt
    if key_var:
        assert f"key-for-{fmt}" in json.dumps(sent.headers)
    assert "be brief" in json.dumps(sent.json)


@pytest.mark.parametrize(("fmt", "model", "base_var", "key_var"), PROVIDERS, ids=IDS)
async def test_stream_event_order(server: ReplayServer, env: dict[str, str], fmt: str, model: str,
                                  base_var: str, key_var: str | None) -> None:
    server.push(Script(text="one two three", usage=(3, 4), finish="stop"))
    events: list[Any] = []
    async with make_runtime(env) as rt:
        async for ev in rt.stream(model, "hi"):
            events.append(ev)
    assert "".join(e.text for e in events if type(e) is TextDelta) == "one two three"
    assert type(events[-1]) is Done
    assert type(events[-2]) is Usage
    assert [e.reason for e in events if type(e) is Finish] == ["stop"]
    assert not any(type(e) is ToolCallDelta for e in events)


@pytest.mark.parametrize(("fmt", "model", "base_var", "key_var"), PROVIDERS, ids=IDS)
async def test_missing_end_marker_is_an_error(server: ReplayServer, env: dict[str, str], fmt: str, model: str,
                                              base_var: str, key_var: str | None) -> None:
    server.push(Script(text="cut short", end_marker=False))
    got: list[str] = []
    async with make_runtime(env) as rt:
        with pytest.raises(modelwire.NetworkError) as info:
            async for ev in rt.stream(model, "hi"):
                if type(ev) is TextDelta:
                    got.append(ev.text)
    assert info.value.code == "STREAM_TRUNCATED"
    assert (info.value.model, info.value.provider) == (model, rt.catalog.models[model].provider)


@pytest.mark.parametrize(("fmt", "model", "base_var", "key_var"), PROVIDERS, ids=IDS)
async def test_mid_stream_disconnect(server: ReplayServer, env: dict[str, str], fmt: str, model: str,
                                     base_var: str, key_var: str | None) -> None:
    server.push(Script(text="a long answer " * 20, disconnect_after=200))
    async with make_runtime(env) as rt:
        with pytest.raises(modelwire.NetworkError):
            await rt.generate(model, "hi")


@pytest.mark.parametrize(("fmt", "model", "base_var", "key_var"), PROVIDERS, ids=IDS)
async def test_in_stream_error_is_typed(server: ReplayServer, env: dict[str, str], fmt: str, model: str,
                                        base_var: str, key_var: str | None) -> None:
    server.push(Script(text="partial answer", error=StreamError(type="overloaded_error", message="Overloaded", after=1)))
    async with make_runtime(env) as rt:
        with pytest.raises(modelwire.ModelError) as info:
            await rt.generate(model, "hi")
    assert info.value.kind in ("provider_down", "rate_limit")
    assert "Overloaded" in str(info.value)


@pytest.mark.parametrize(("status", "cls"), [(429, modelwire.RateLimitError), (500, modelwire.ProviderDownError),
                                             (401, modelwire.AuthError), (400, modelwire.InvalidRequestError)])
@pytest.mark.parametrize(("fmt", "model", "base_var", "key_var"), PROVIDERS, ids=IDS)
async def test_http_error_statuses(server: ReplayServer, env: dict[str, str], fmt: str, model: str,
                                   base_var: str, key_var: str | None, status: int, cls: type[Exception]) -> None:
    server.push(Script(status=status))
    async with make_runtime(env) as rt:
        with pytest.raises(cls) as info:
            await rt.generate(model, "hi")
    assert info.value.status == status  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", sorted(EMBED_MODELS))
async def test_embed(server: ReplayServer, env: dict[str, str], fmt: str) -> None:
    from modelwire.testing import fake_embedding

    async with make_runtime(env) as rt:
        vectors = await rt.embed(EMBED_MODELS[fmt], ["alpha", "béta"])
    assert vectors == [fake_embedding("alpha"), fake_embedding("béta")]


async def test_passthrough_and_model_params(server: ReplayServer, env: dict[str, str]) -> None:
    server.push(Script(text="ok"))
    async with make_runtime(env) as rt:
        await rt.generate("gpt-4.1-mini", "hi", extra={"seed": 42, "user": "u-1"}, temperature=0.5)
    body = server.requests[-1].json
    assert (body["seed"], body["user"], body["temperature"]) == (42, "u-1", 0.5)
    assert "max_tokens" not in body  # nulls dropped


def test_sync_runtime(server: ReplayServer, env: dict[str, str]) -> None:
    server.push(Script(text="sync works"), Script(text="and streams"))
    with modelwire.SyncRuntime.from_manifests("builtin:*", env=env) as rt:
        assert rt.generate("gpt-4.1-mini", "hi").text == "sync works"
        events = list(rt.stream("claude-haiku-4-5", "hi"))
        assert "".join(e.text for e in events if type(e) is TextDelta) == "and streams"
        assert rt.embed("nomic-embed-text", "x")[0] == modelwire.testing.fake_embedding("x")
