"""modelwire against the official SDKs, reading the very same bytes.

For each seed, ``modelwire.testing`` serves a random script (non-ASCII text,
tool calls whose id, name and arguments are split across many chunks,
parallel calls, usage, pings) once to the SDK and once to modelwire; the
final text, tool calls, usage and finish reason must agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import modelwire
from modelwire.testing import ReplayServer, Script

SEEDS = range(120)
ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=11) as srv:
        yield srv


@pytest.fixture(scope="module")
def runtime(server: ReplayServer) -> Iterator[modelwire.SyncRuntime]:
    env = {
        "OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k",
        "ANTHROPIC_BASE_URL": server.url_for("anthropic"), "ANTHROPIC_API_KEY": "k",
    }
    with modelwire.SyncRuntime.from_manifests("builtin:openai", "builtin:anthropic", env=env) as rt:
        yield rt


def ours(rt: modelwire.SyncRuntime, model: str) -> dict[str, Any]:
    resp = rt.generate(model, "hi")
    return {
        "text": resp.text,
        "tool_calls": [(c.id, c.name, c.parsed_arguments()) for c in resp.tool_calls],
        "usage": (resp.usage.input_tokens, resp.usage.output_tokens) if resp.usage else None,
        "finish": resp.finish_reason,
    }


@pytest.fixture(scope="module")
def openai_client(server: ReplayServer) -> Iterator[Any]:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url_for("openai"), api_key="k", max_retries=0)
    yield client
    client.close()


@pytest.fixture(scope="module")
def anthropic_client(server: ReplayServer) -> Iterator[Any]:
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.Anthropic(base_url=server.url_for("anthropic"), api_key="k", max_retries=0)
    yield client
    client.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_openai_sdk_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, openai_client: Any) -> None:
    script = Script.random(seed)
    server.push(script)
    text: list[str] = []
    calls: dict[int, list[Any]] = {}
    usage = finish = None
    stream = openai_client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            for tc in choice.delta.tool_calls or ():
                slot = calls.setdefault(tc.index, ["", "", ""])
                slot[0] += tc.id or ""
                slot[1] += (tc.function.name or "") if tc.function else ""
                slot[2] += (tc.function.arguments or "") if tc.function else ""
            if choice.finish_reason:
                finish = choice.finish_reason
    sdk = {
        "text": "".join(text),
        "tool_calls": [(i, n, json.loads(a) if a else {}) for _, (i, n, a) in sorted(calls.items())],
        "usage": usage,
        "finish": finish,
    }
    server.push(script)
    assert ours(runtime, "gpt-4.1-mini") == sdk
    assert sdk["text"] == script.full_text()


@pytest.mark.parametrize("seed", SEEDS)
def test_anthropic_sdk_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, anthropic_client: Any) -> None:
    script = Script.random(seed)
    server.push(script)
    with anthropic_client.messages.stream(
        model="claude-haiku-4-5", max_tokens=1024, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = stream.get_final_message()
    sdk = {
        "text": "".join(b.text for b in message.content if b.type == "text"),
        "tool_calls": [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"],
        "usage": (message.usage.input_tokens, message.usage.output_tokens),
        "finish": ANTHROPIC_FINISH.get(message.stop_reason, message.stop_reason),
    }
    server.push(script)
    assert ours(runtime, "claude-haiku-4-5") == sdk
    assert sdk["text"] == script.full_text()
