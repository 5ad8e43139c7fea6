"""Real recorded streams (tests/corpus, provenance in tests/corpus/SOURCE), replayed.

Each recorded stream is framed as its API frames it and served, as raw
bytes, from one loopback server twice: once to the vendor's official SDK,
once to modelwire through the bundled manifest. The expectation is the
SDK's reading of the same bytes, never a hand-typed value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelwire
from modelwire.testing import ReplayServer, Reply

CORPUS = Path(__file__).parent / "corpus"
# Known disagreements, each a finding of this corpus (none left: the Gemini
# tool-call stream that sends finishReason a chunk after the call now reads
# `tool_calls`, through remember/recall in the manifest).
KNOWN: dict[str, str] = {}
FILES = [
    pytest.param(p, id=f"{p.parent.name}/{p.name}", marks=[pytest.mark.xfail(reason=KNOWN[k], strict=True)] if (k := f"{p.parent.name}/{p.name}") in KNOWN else [])
    for p in sorted(CORPUS.glob("*/*.chunks.txt"))
]
OPENAI_FAMILY = {"openai", "groq", "mistral", "deepseek", "xai", "perplexity"}
# The provider's replay base (modelwire's base URL for it) and a model.
MODELS = {
    "openai": "gpt-4.1-mini", "groq": "llama-3.3-70b-versatile", "mistral": "mistral-small-latest",
    "deepseek": "deepseek-chat", "xai": "grok-3-mini", "perplexity": "sonar",
    "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash", "cohere": "command-a-03-2025",
}
ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
COHERE_FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}


def framed(provider: str, path: Path) -> bytes:
    """The recorded payloads (one per line) framed as the provider's API frames them."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if provider in ("anthropic", "cohere"):
        frames = [f"event: {json.loads(line)['type']}\ndata: {line}\n\n" for line in lines]
    elif provider == "gemini":
        frames = [f"data: {line}\r\n\r\n" for line in lines]
    else:
        frames = [f"data: {line}\n\n" for line in lines] + ["data: [DONE]\n\n"]
    return "".join(frames).encode("utf-8")


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=0) as srv:
        yield srv


@pytest.fixture(scope="module")
def runtime(server: ReplayServer) -> Iterator[modelwire.SyncRuntime]:
    env = {"GEMINI_API_KEY": "k", "CO_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}
    for name in OPENAI_FAMILY:
        env[f"{name.upper()}_BASE_URL"] = server.url_for("openai")
        env[f"{name.upper()}_API_KEY"] = "k"
    env.update(ANTHROPIC_BASE_URL=server.url_for("anthropic"), GEMINI_BASE_URL=server.url_for("gemini"),
               COHERE_BASE_URL=server.url_for("cohere"))
    with modelwire.SyncRuntime.from_manifests(*(f"builtin:{p}" for p in MODELS), env=env) as rt:
        yield rt


def read_openai_sdk(server: ReplayServer) -> dict[str, Any]:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=server.url_for("openai"), api_key="k", max_retries=0) as client:
        text: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, list[str]] = {}
        usage = finish = cached = thought = None
        for chunk in client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True):
            if chunk.usage is not None:
                # modelwire's output is the whole output, reasoning included. Most of these APIs
                # count reasoning inside completion_tokens; xAI counts it beside them
                # (total = prompt + completion + reasoning). total_tokens - prompt_tokens is the
                # whole output either way.
                usage = (chunk.usage.prompt_tokens, chunk.usage.total_tokens - chunk.usage.prompt_tokens)
                details = chunk.usage.prompt_tokens_details
                cached = details.cached_tokens if details is not None else None
                out_details = chunk.usage.completion_tokens_details
                thought = out_details.reasoning_tokens if out_details is not None else None
            for choice in chunk.choices:
                content: Any = choice.delta.content
                if isinstance(content, list):
                    # Mistral's parts (text, thinking): the SDK types content as str, so these are
                    # its untyped reading of the wire JSON.
                    for part in content:
                        if part.get("type") == "text":
                            text.append(part["text"])
                        elif part.get("type") == "thinking":
                            reasoning.extend(p.get("text", "") for p in part.get("thinking", ()))
                else:
                    text.append(content or "")
                # DeepSeek's `reasoning_content`, Groq's `reasoning`: extra fields the SDK keeps untyped.
                extra = choice.delta.model_extra or {}
                reasoning.append(extra.get("reasoning_content") or extra.get("reasoning") or "")
                for tc in choice.delta.tool_calls or ():
                    slot = calls.setdefault(tc.index, ["", "", ""])
                    slot[0] += tc.id or ""
                    slot[1] += (tc.function.name or "") if tc.function else ""
                    slot[2] += (tc.function.arguments or "") if tc.function else ""
                finish = choice.finish_reason or finish
    return {"text": "".join(text), "tool_calls": [(i, n, json.loads(a or "{}")) for i, n, a in calls.values()],
            "usage": usage, "finish": finish, "cached": cached, "reasoning": "".join(reasoning),
            "reasoning_tokens": thought}


def read_anthropic_sdk(server: ReplayServer) -> dict[str, Any]:
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.Anthropic(base_url=server.url_for("anthropic"), api_key="k", max_retries=0)
    # The beta stream: the plain one does not gather `mcp_tool_use` input deltas (it reads {}).
    with client, client.beta.messages.stream(model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        message = stream.get_final_message()
    blocks = message.content
    u = message.usage
    read, wrote = u.cache_read_input_tokens, u.cache_creation_input_tokens
    return {
        "text": "".join(b.text for b in blocks if b.type == "text"),
        "tool_calls": [(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"],
        # Anthropic's input_tokens excludes the cache; modelwire's input is the whole prompt:
        # input_tokens + cache_read_input_tokens + cache_creation_input_tokens.
        "usage": (u.input_tokens + (read or 0) + (wrote or 0), u.output_tokens),
        "finish": ANTHROPIC_FINISH.get(message.stop_reason or "", message.stop_reason),
        "cached": read,
        "cache_write": wrote,
        "reasoning": "".join(b.thinking for b in blocks if b.type == "thinking"),
        "reasoning_blocks": [(b.thinking, b.signature, None) if b.type == "thinking" else ("", None, b.data)
                             for b in blocks if b.type in ("thinking", "redacted_thinking")],
        "server_tool_calls": [(b.id, b.name, b.input) for b in blocks if b.type in ("server_tool_use", "mcp_tool_use")],
        "server_tool_results": [(getattr(b, "tool_use_id", None), b.type, b.to_dict()["content"])
                                for b in blocks if b.type.endswith("_tool_result")],
        "citations": [(getattr(c, "url", None), getattr(c, "title", None), getattr(c, "cited_text", None))
                      for b in blocks if b.type == "text" for c in b.citations or ()],
    }


def read_genai_sdk(server: ReplayServer) -> dict[str, Any]:
    genai = pytest.importorskip("google.genai")
    options = genai.types.HttpOptions(base_url=server.url_for("gemini"), api_version="v1beta")
    with genai.Client(api_key="k", http_options=options) as client:
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[tuple[None, str, Any]] = []
        usage = finish = thought = cached = None
        for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
            for candidate in chunk.candidates or ():
                for part in (candidate.content.parts if candidate.content else None) or ():
                    if part.text:
                        (reasoning if part.thought else text).append(part.text)
                    if part.function_call:
                        calls.append((None, part.function_call.name, part.function_call.args or {}))
                if candidate.finish_reason:
                    finish = GEMINI_FINISH.get(candidate.finish_reason.value, candidate.finish_reason.value)
            meta = chunk.usage_metadata
            if meta is not None and meta.candidates_token_count is not None:
                # Gemini's candidatesTokenCount excludes thinking; modelwire's output is the whole
                # output: candidates_token_count + thoughts_token_count.
                thought = meta.thoughts_token_count
                usage = (meta.prompt_token_count, meta.candidates_token_count + (thought or 0))
                cached = meta.cached_content_token_count
    # modelwire names a stream that ends in function calls by them (Gemini says STOP).
    return {"text": "".join(text), "tool_calls": calls, "usage": usage,
            "finish": "tool_calls" if calls and finish == "stop" else finish,
            "reasoning": "".join(reasoning), "reasoning_tokens": thought, "cached": cached}


def read_cohere_sdk(server: ReplayServer) -> dict[str, Any]:
    cohere = pytest.importorskip("cohere")
    with httpx.Client() as http:
        client = cohere.ClientV2(base_url=server.url_for("cohere"), api_key="k", httpx_client=http)
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[list[str]] = []
        usage = finish = None
        for event in client.chat_stream(model="m", messages=[{"role": "user", "content": "hi"}]):
            if event.type == "content-delta":
                content = event.delta.message.content
                text.append(content.text or "")
                reasoning.append(getattr(content, "thinking", None) or "")
            elif event.type == "tool-call-start":
                call = event.delta.message.tool_calls
                calls.append([call.id, call.function.name, call.function.arguments or ""])
            elif event.type == "tool-call-delta":
                calls[-1][2] += event.delta.message.tool_calls.function.arguments or ""
            elif event.type == "message-end":
                finish = COHERE_FINISH.get(event.delta.finish_reason, event.delta.finish_reason)
                billed = event.delta.usage.billed_units
                usage = (int(billed.input_tokens), int(billed.output_tokens))
    return {"text": "".join(text), "tool_calls": [(i, n, json.loads(a or "{}")) for i, n, a in calls],
            "usage": usage, "finish": finish, "reasoning": "".join(reasoning)}


def sdk_reading(provider: str, server: ReplayServer) -> dict[str, Any]:
    if provider in OPENAI_FAMILY:
        return read_openai_sdk(server)
    return {"anthropic": read_anthropic_sdk, "gemini": read_genai_sdk, "cohere": read_cohere_sdk}[provider](server)


@pytest.mark.parametrize("path", FILES)
def test_recorded_stream_reads_as_the_sdk_reads_it(path: Path, server: ReplayServer, runtime: modelwire.SyncRuntime) -> None:
    provider = path.parent.name
    reply = Reply(body=framed(provider, path), content_type="text/event-stream", stream=True)
    server.push(reply)
    sdk = sdk_reading(provider, server)
    server.push(reply)
    resp = runtime.generate(MODELS[provider], "hi")
    ids = provider != "gemini"  # Gemini's function calls carry no id
    usage = resp.usage
    ours = {
        "text": resp.text,
        "tool_calls": [(c.id if ids else None, c.name, c.parsed_arguments()) for c in resp.tool_calls],
        "usage": (usage.input_tokens, usage.output_tokens) if usage else None,
        "finish": resp.finish_reason,
        "cached": usage.cached_input_tokens if usage else None,
        "cache_write": usage.cache_write_tokens if usage else None,
        "reasoning_tokens": usage.reasoning_tokens if usage else None,
        "reasoning": resp.reasoning,
        "reasoning_blocks": [(b.text, b.signature, b.redacted) for b in resp.reasoning_blocks],
        "server_tool_calls": [(c.id, c.name, c.parsed_arguments()) for c in resp.server_tool_calls],
        "server_tool_results": [(r.tool_call_id, r.kind, r.content) for r in resp.server_tool_results],
        "citations": [(c.url, c.title, c.cited_text) for c in resp.citations],
    }
    # Each SDK reading names what that SDK exposes; those are compared.
    assert {k: ours[k] for k in sdk} == sdk
    # A server-side tool is never a call for the client to run.
    assert not {c.id for c in resp.server_tool_calls} & {c.id for c in resp.tool_calls}
    assert sdk["text"] or sdk["tool_calls"]  # a recording that reads as nothing checks nothing


def test_corpus_files_all_have_provenance() -> None:
    listed = (CORPUS / "SOURCE").read_text(encoding="utf-8")
    assert FILES
    for param in FILES:
        path = param.values[0]
        assert isinstance(path, Path) and f"{path.parent.name}/{path.name} " in listed, path
