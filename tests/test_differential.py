"""modelwire against the official SDKs, reading the very same bytes.

For each seed, ``modelwire.testing`` serves a random rich script (non-ASCII
text, tool calls whose id, name and arguments are split across many chunks,
parallel calls, usage, pings, reasoning with signatures, prompt-cache reads
and writes, reasoning tokens, and for a third of the seeds a JSON answer) once
to the SDK and once to modelwire; the final text, tool calls, usage, finish
reason, reasoning and token details must agree, and a JSON answer asked for
with ``response_format`` must come back from ``Response.parsed`` as
``json.loads`` of the SDK's text.
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


def json_answer(script: Script) -> bool:
    """Whether the script's answer is a JSON object (then modelwire asks for one with ``response_format``)."""
    try:
        return isinstance(json.loads(script.full_text()), dict)
    except ValueError:
        return False


def ours(rt: modelwire.SyncRuntime, model: str, script: Script) -> dict[str, Any]:
    structured = json_answer(script)
    resp = rt.generate(model, "hi", **({"response_format": {"type": "object"}} if structured else {}))
    usage = resp.usage
    return {
        "text": resp.text,
        "tool_calls": [(c.id, c.name, c.parsed_arguments()) for c in resp.tool_calls],
        "usage": (usage.input_tokens, usage.output_tokens) if usage else None,
        "finish": resp.finish_reason,
        "reasoning": [(b.text, b.signature, b.redacted) for b in resp.reasoning_blocks],
        "cache": (usage.cached_input_tokens or 0, usage.cache_write_tokens or 0) if usage else None,
        "reasoning_tokens": (usage.reasoning_tokens or 0) if usage else None,
        "parsed": resp.parsed if structured else None,
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
    script = Script.random(seed, rich=True)
    server.push(script)
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, list[Any]] = {}
    usage = finish = cache = reasoning_tokens = None
    stream = openai_client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            details = chunk.usage.prompt_tokens_details
            cache = (details.cached_tokens or 0 if details else 0, 0)  # OpenAI reports no cache writes
            out_details = chunk.usage.completion_tokens_details
            reasoning_tokens = out_details.reasoning_tokens or 0 if out_details else 0
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            # DeepSeek's reasoning_content is not an OpenAI field: the SDK keeps it as an extra.
            if getattr(choice.delta, "reasoning_content", None):
                reasoning.append(choice.delta.reasoning_content)
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
        # One block: the stream has no block boundaries and no signatures.
        "reasoning": [("".join(reasoning), None, None)] if reasoning else [],
        "cache": cache,
        "reasoning_tokens": reasoning_tokens,
        "parsed": json.loads("".join(text)) if json_answer(script) else None,
    }
    server.push(script)
    assert ours(runtime, "gpt-4.1-mini", script) == sdk
    assert sdk["text"] == script.full_text()
    assert "".join(reasoning) == script.full_reasoning()


@pytest.mark.parametrize("seed", SEEDS)
def test_anthropic_sdk_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, anthropic_client: Any) -> None:
    script = Script.random(seed, rich=True)
    server.push(script)
    with anthropic_client.messages.stream(
        model="claude-haiku-4-5", max_tokens=1024, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = stream.get_final_message()
    usage = message.usage
    text = "".join(b.text for b in message.content if b.type == "text")
    cache = (usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0)
    sdk = {
        "text": text,
        "tool_calls": [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"],
        # Anthropic's input_tokens leaves the cache out; modelwire's input is the whole prompt.
        "usage": (usage.input_tokens + sum(cache), usage.output_tokens),
        "finish": ANTHROPIC_FINISH.get(message.stop_reason, message.stop_reason),
        "reasoning": [
            (b.thinking, b.signature, None) if b.type == "thinking" else ("", None, b.data)
            for b in message.content if b.type in ("thinking", "redacted_thinking")
        ],
        "cache": cache,
        "reasoning_tokens": usage.output_tokens_details.thinking_tokens if usage.output_tokens_details else 0,
        "parsed": json.loads(text) if json_answer(script) else None,
    }
    server.push(script)
    assert ours(runtime, "claude-haiku-4-5", script) == sdk
    assert sdk["text"] == script.full_text()
    assert [b.signature for b in script.reasoning if b.redacted is None] == [
        b.signature for b in message.content if b.type == "thinking"
    ]
