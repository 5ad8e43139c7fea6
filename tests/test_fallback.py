"""Retries, fallback chains (also mid-stream), local limits, usage and cost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import modelwire
from modelwire import Fallback, TextDelta, Usage
from modelwire._errors import ModelError
from modelwire._manifest.model import Retry
from modelwire._plugins.policies import Attempt, Decision, DefaultPolicy
from modelwire.testing import ReplayServer, Reply, Script

pytestmark = pytest.mark.anyio

MODELS = """
version: 1
models:
  primary:
    provider: openai
    id: gpt-x
    fallback: [backup]
    retry: {attempts: 2, base_delay: 0.001, max_delay: 0.002}
    pricing: {input_per_mtok: 1.1, output_per_mtok: 3.3, cached_input_per_mtok: 0.11}
  backup:
    provider: anthropic
    id: claude-x
    capabilities: [generate, stream, tools, prefill]
    retry: {attempts: 1}
    pricing: {input_per_mtok: 3, output_per_mtok: 15}
  midstream-next:
    provider: openai
    fallback: [backup]
    retry: {attempts: 1, on_midstream: next}
  midstream-prefix:
    provider: openai
    fallback: [backup]
    retry: {attempts: 1, on_midstream: prefix}
  no-tools:
    provider: openai
    capabilities: [generate, stream]
    fallback: [backup]
  lonely:
    provider: openai
    capabilities: [generate, stream]
  no-stream:
    provider: openai
    capabilities: [generate, tools]
    fallback: [backup]
  no-stream-alone:
    provider: openai
    capabilities: [generate]
  whole-body:
    provider: onebody
    capabilities: [generate]
  limited:
    provider: openai
    limits: {rpm: 2, context_window: 50}
    retry: {attempts: 1}
  one-at-a-time:
    provider: openai
    limits: {concurrency: 1}
  custom-policy:
    provider: openai
    policy: always-next
    fallback: [backup]
providers:
  onebody:  # a generate operator that answers with one JSON body
    base_url: ${OPENAI_BASE_URL}
    auth: {type: bearer, env: OPENAI_API_KEY}
    operators:
      generate:
        path: /chat/completions
        stream: false
        parser: jsonchunk
        request: "{model: model, messages: messages, stream: stream}"
        events:
          - each: "choices[].message.content"
            emit: {type: text, text: "@"}
"""


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=9) as srv:
        yield srv


@pytest.fixture
def rt(server: ReplayServer, tmp_path: Path) -> modelwire.Runtime:
    server.reset()
    (tmp_path / "models.yaml").write_text(MODELS)
    env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k",
           "ANTHROPIC_BASE_URL": server.url_for("anthropic"), "ANTHROPIC_API_KEY": "k"}
    plugins = modelwire.Plugins(only=["modelwire-sse", "modelwire-jsonchunk", "modelwire-text"])

    class AlwaysNext:
        @modelwire.hookimpl
        def register_fallback_policies(self, register: Any) -> None:
            register("always-next", lambda error, attempt: Decision("next"))

    plugins.register(AlwaysNext(), name="always-next-policy")
    return modelwire.Runtime.from_manifests("builtin:openai", "builtin:anthropic", tmp_path / "models.yaml",
                                            env=env, plugins=plugins)


async def collect(rt: modelwire.Runtime, model: str, **kw: Any) -> list[Any]:
    async with rt:
        return [ev async for ev in rt.stream(model, "hi", **kw)]


def text(events: list[Any]) -> str:
    return "".join(e.text for e in events if type(e) is TextDelta)


# -- the default policy, as a table ------------------------------------------

def err(cls: type[ModelError], status: int | None = None, retry_after: float | None = None, code: str | None = None) -> ModelError:
    return cls("x", status=status, retry_after=retry_after, code=code)


R = Retry(attempts=3, base_delay=0.5, max_delay=4, retry_after_cap=30)


@pytest.mark.parametrize(
    ("error", "number", "started", "settings", "next_model", "action"),
    [
        pytest.param(err(modelwire.ProviderDownError, 503), 1, False, R, "b", "retry", id="5xx-retries"),
        pytest.param(err(modelwire.ProviderDownError, 503), 3, False, R, "b", "next", id="5xx-spent-moves-on"),
        pytest.param(err(modelwire.ProviderDownError, 503), 3, False, R, None, "raise", id="5xx-end-of-chain"),
        pytest.param(err(modelwire.RateLimitError, 429, 2.0), 1, False, R, "b", "retry", id="429-retry-after"),
        pytest.param(err(modelwire.RateLimitError, 429, 120.0), 1, False, R, "b", "next", id="429-retry-after-over-cap"),
        pytest.param(err(modelwire.RequestTimeout), 1, False, R, "b", "retry", id="timeout-retries"),
        pytest.param(err(modelwire.NetworkError), 3, False, R, "b", "raise", id="network-not-in-fallback-on"),
        pytest.param(err(modelwire.InvalidRequestError, 400), 1, False, R, "b", "raise", id="invalid-never"),
        pytest.param(err(modelwire.AuthError, 401), 1, False, R, "b", "raise", id="auth-never"),
        pytest.param(err(modelwire.ProviderDownError, 503), 1, True, R, "b", "raise", id="midstream-default-raises"),
        pytest.param(err(modelwire.NetworkError), 1, True, Retry(on_midstream="next"), "b", "next", id="midstream-next"),
        pytest.param(err(modelwire.RateLimitError, code="LOCAL_RATE_LIMIT"), 1, False, R, "b", "next", id="local-reject-no-retry"),
    ],
)
def test_default_policy(error: ModelError, number: int, started: bool, settings: Retry, next_model: str | None, action: str) -> None:
    decision = DefaultPolicy().decide(error, Attempt("a", number, started, settings, next_model))
    assert decision.action == action
    if action == "retry":
        assert 0 <= decision.delay <= max(settings.max_delay, error.retry_after or 0)
        if error.retry_after is not None:
            assert decision.delay == error.retry_after


# -- the runtime loop ---------------------------------------------------------------

async def test_retry_is_invisible(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(status=503), Script(text="second try"))
    events = await collect(rt, "primary")
    assert text(events) == "second try"
    assert not any(type(e) is Fallback for e in events)
    assert len(server.requests) == 2


async def test_retry_after_zero_is_honoured(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(status=429, headers={"retry-after": "0"}), Script(text="ok"))
    assert text(await collect(rt, "primary")) == "ok"


async def test_fallback_marker_comes_first(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(status=503), Script(status=503), Script(text="from backup"))
    events = await collect(rt, "primary")
    kinds = [type(e).__name__ for e in events]
    first_text = kinds.index("TextDelta")
    assert kinds.index("Fallback") < first_text
    fb = next(e for e in events if type(e) is Fallback)
    assert (fb.from_model, fb.to_model, fb.continued) == ("primary", "backup", False)
    assert "provider_down" in fb.reason
    assert text(events) == "from backup"
    assert [r.fmt for r in server.requests] == ["openai", "openai", "anthropic"]


async def test_generate_records_the_path(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(status=503), Script(status=503), Script(text="b", usage=(1, 1)))
    async with rt:
        resp = await rt.generate("primary", "hi")
    assert resp.models == ("primary", "backup") and resp.model == "backup" and resp.text == "b"


async def test_invalid_request_never_falls_back(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(status=400))
    with pytest.raises(modelwire.InvalidRequestError):
        await collect(rt, "primary")
    assert len(server.requests) == 1


async def test_midstream_failure_raises_by_default(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text="a partial answer that will be cut " * 5, disconnect_after=800))
    seen: list[Any] = []
    async with rt:
        with pytest.raises(modelwire.NetworkError):
            async for ev in rt.stream("primary", "hi"):
                seen.append(ev)
    assert text(seen) and not any(type(e) is Fallback for e in seen)
    assert len(server.requests) == 1  # no silent replay


async def test_midstream_next_marks_the_switch(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text="first model words " * 10, disconnect_after=800), Script(text="second model"))
    events = await collect(rt, "midstream-next")
    idx = next(i for i, e in enumerate(events) if type(e) is Fallback)
    before, after = events[:idx], events[idx + 1:]
    assert text(before).startswith("first") and "first" in text(before)
    assert text(after) == "second model"
    assert events[idx].continued is False
    async with rt:
        server.push(Script(text="first model words " * 10, disconnect_after=800), Script(text="second model"))
        resp = await rt.generate("midstream-next", "hi")
    assert resp.text == "second model" and resp.models == ("midstream-next", "backup")


async def test_midstream_prefix_resends_the_partial_answer(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text=("Once ", "upon ", "a ", "time ") * 20, disconnect_after=1000), Script(text=" happily ever after."))
    events = await collect(rt, "midstream-prefix")
    fb = next(e for e in events if type(e) is Fallback)
    assert fb.continued is True
    idx = events.index(fb)
    partial = text(events[:idx])
    sent = server.requests[-1].json["messages"]
    assert sent[-1] == {"role": "assistant", "content": [{"type": "text", "text": partial}]}
    async with rt:
        server.push(Script(text=("Once ", "upon ", "a ", "time ") * 20, disconnect_after=1000), Script(text=" the end."))
        resp = await rt.generate("midstream-prefix", "hi")
    assert resp.text.startswith("Once upon") and resp.text.endswith(" the end.")


async def test_third_party_policy_by_name(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(status=500), Script(text="policy moved me"))
    events = await collect(rt, "custom-policy")
    assert type(events[0]) is Fallback
    assert text(events) == "policy moved me"
    assert len(server.requests) == 2  # no retry: the plugin said next at once


TOOLS = [{"name": "f", "parameters": {"type": "object"}}]


async def test_capability_aware_planning(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text="I can use tools"))
    events = await collect(rt, "no-tools", tools=TOOLS)
    assert type(events[0]) is Fallback and events[0].to_model == "backup" and "tools" in events[0].reason
    assert [r.fmt for r in server.requests] == ["anthropic"]


async def test_capability_missing_everywhere(rt: modelwire.Runtime, server: ReplayServer) -> None:
    with pytest.raises(modelwire.InvalidRequestError) as info:
        await collect(rt, "lonely", tools=TOOLS)
    assert info.value.code == "CAPABILITY_MISSING" and "tools" in str(info.value) and "lonely" in str(info.value)
    assert server.requests == []


async def test_stream_capability_skips_to_a_model_that_streams(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text="I stream"))
    events = await collect(rt, "no-stream")
    assert type(events[0]) is Fallback and events[0].to_model == "backup" and "stream" in events[0].reason
    assert text(events) == "I stream" and [r.fmt for r in server.requests] == ["anthropic"]


async def test_stream_capability_missing_is_refused_before_http(rt: modelwire.Runtime, server: ReplayServer) -> None:
    with pytest.raises(modelwire.InvalidRequestError) as info:
        await collect(rt, "no-stream-alone")
    assert info.value.code == "CAPABILITY_MISSING" and info.value.model == "no-stream-alone"
    assert "lacks capability stream" in str(info.value) or "capability stream is missing" in str(info.value)
    assert server.requests == []


async def test_a_whole_body_operator_needs_no_stream_capability(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Reply(body=json.dumps({"choices": [{"message": {"role": "assistant", "content": "one body"}}]}),
))
    events = await collect(rt, "whole-body")
    assert text(events) == "one body"
    assert json.loads(server.requests[0].body)["stream"] is False


async def test_rpm_rejects_locally(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text="1"), Script(text="2"))
    async with rt:
        for _ in range(2):
            await rt.generate("limited", "hi")
        with pytest.raises(modelwire.RateLimitError) as info:
            await rt.generate("limited", "hi")
    assert info.value.code == "LOCAL_RATE_LIMIT" and info.value.retry_after is not None
    assert len(server.requests) == 2


async def test_context_window_checked_before_http(rt: modelwire.Runtime, server: ReplayServer) -> None:
    with pytest.raises(modelwire.LimitExceededError) as info:
        await collect(rt, "limited", messages=[{"role": "user", "content": "word " * 400}])
    assert info.value.code == "CONTEXT_WINDOW_EXCEEDED"
    assert server.requests == []


async def test_concurrency_reject(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text="first holds the slot"), Script(text="after release"))
    async with rt:
        stream = rt.stream("one-at-a-time", "hi")
        first = await stream.__anext__()  # the first call is in flight, its slot taken
        assert type(first) is TextDelta
        with pytest.raises(modelwire.RateLimitError) as info:
            await rt.generate("one-at-a-time", "hi")
        assert info.value.code == "LOCAL_CONCURRENCY"
        rest = [ev async for ev in stream]
        assert text([first, *rest]) == "first holds the slot"
        assert (await rt.generate("one-at-a-time", "hi")).text == "after release"
    assert len(server.requests) == 2


async def test_usage_estimated_without_provider_usage(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text="some words to count", usage=None))
    events = await collect(rt, "primary")
    usage = next(e for e in events if type(e) is Usage)
    assert usage.estimated is True and usage.input_tokens and usage.output_tokens


async def test_cost_is_exact_decimal_and_totalled(rt: modelwire.Runtime, server: ReplayServer) -> None:
    server.push(Script(text="a", usage=(1000, 2000)), Script(text="b", usage=(10, 20)))
    async with rt:
        first = await rt.generate("primary", "hi")
        second = await rt.generate("primary", "hi")
    assert first.cost == Decimal("0.0011") + Decimal("0.0066")
    assert isinstance(second.cost, Decimal)
    assert rt.totals.cost == first.cost + second.cost
    assert (rt.totals.input_tokens, rt.totals.output_tokens, rt.totals.calls) == (1010, 2020, 2)


def test_unknown_policy_name_fails_at_load(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("version: 1\nmodels:\n  x: {provider: openai, policy: no-such-policy}\n")
    with pytest.raises(modelwire.NotFoundError) as info:
        modelwire.Runtime.from_manifests("builtin:openai", tmp_path / "m.yaml", env={})
    assert info.value.code == "FALLBACK_POLICY_NOT_FOUND" and "m.yaml:3" in str(info.value)


def test_unknown_limiter_backend_fails_at_load(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("version: 1\nlimiter: {backend: nope}\n")
    with pytest.raises(modelwire.NotFoundError) as info:
        modelwire.Runtime.from_manifests("builtin:openai", tmp_path / "m.yaml", env={})
    assert info.value.code == "LIMITER_NOT_FOUND"
