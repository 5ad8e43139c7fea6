"""modelwire against more official SDKs, reading the very same bytes.

As in test_differential.py: for each seed, one loopback ``ReplayServer``
serves a random rich script (non-ASCII text, parallel tool calls with
arguments split across many deltas, usage, random write boundaries,
reasoning, prompt-cache and reasoning-token counts, sometimes a JSON answer)
once to the vendor's SDK and once to modelwire; text, tool calls, finish
reason, usage, reasoning and token details must agree, the text must be the
script's, and a JSON answer asked for with ``response_format`` must come back
from ``Response.parsed`` as ``json.loads`` of the SDK's text. Gemini and
Ollama had no independent reading before these tests.

The replay server writes reasoning and cache counts only where the real
service sends them in that format (docs/testing.md has the table): the
Mistral and Cohere streams carry neither, so there modelwire must report
none.

Where an SDK cannot read a stream the real service can send, the test says
so and compares modelwire with the wire instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import modelwire
from modelwire.testing import ReplayServer, Script

SEEDS = range(120)
COHERE_FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=29) as srv:
        yield srv


@pytest.fixture(scope="module")
def runtime(server: ReplayServer) -> Iterator[modelwire.SyncRuntime]:
    env = {
        "COHERE_BASE_URL": server.url_for("cohere"), "CO_API_KEY": "k",
        "GROQ_BASE_URL": server.url_for("openai"), "GROQ_API_KEY": "k",
        "MISTRAL_BASE_URL": server.url_for("mistral"), "MISTRAL_API_KEY": "k",
        "OLLAMA_BASE_URL": server.url_for("ollama"),
        "GEMINI_BASE_URL": server.url_for("gemini"), "GEMINI_API_KEY": "k",
    }
    sources = ["builtin:cohere", "builtin:groq", "builtin:mistral", "builtin:ollama", "builtin:gemini"]
    with modelwire.SyncRuntime.from_manifests(*sources, env=env) as rt:
        yield rt


def json_answer(script: Script) -> bool:
    """Whether the script's answer is a JSON object (then modelwire asks for one with ``response_format``)."""
    try:
        return isinstance(json.loads(script.full_text()), dict)
    except ValueError:
        return False


def ours(rt: modelwire.SyncRuntime, model: str, script: Script, ids: bool = True) -> dict[str, Any]:
    structured = json_answer(script)
    resp = rt.generate(model, "hi", **({"response_format": {"type": "object"}} if structured else {}))
    usage = resp.usage
    return {
        "text": resp.text,
        "tool_calls": [(c.id if ids else None, c.name, c.parsed_arguments()) for c in resp.tool_calls],
        "usage": (usage.input_tokens, usage.output_tokens) if usage else None,
        "finish": resp.finish_reason,
        "reasoning": resp.reasoning,
        "cache_read": (usage.cached_input_tokens or 0) if usage else None,
        "reasoning_tokens": (usage.reasoning_tokens or 0) if usage else None,
        "parsed": resp.parsed if structured else None,
    }


def script_for(seed: int, **knobs: Any) -> Script:
    return Script.random(seed, rich=True, **knobs)


def parsed(script: Script, text: str) -> Any:
    return json.loads(text) if json_answer(script) else None


# -- cohere (ClientV2.chat_stream) ----------------------------------------------------------


@pytest.fixture(scope="module")
def cohere_client(server: ReplayServer) -> Iterator[Any]:
    cohere = pytest.importorskip("cohere")
    with httpx.Client() as http:
        yield cohere.ClientV2(base_url=server.url_for("cohere"), api_key="k", httpx_client=http)


@pytest.mark.parametrize("seed", SEEDS)
def test_cohere_sdk_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, cohere_client: Any) -> None:
    script = script_for(seed)
    server.push(script)
    text: list[str] = []
    calls: list[list[str]] = []
    usage = finish = None
    for event in cohere_client.chat_stream(model="command-a-03-2025", messages=MESSAGES):
        if event.type == "content-delta":
            text.append(event.delta.message.content.text)
        elif event.type == "tool-call-start":
            call = event.delta.message.tool_calls
            calls.append([call.id, call.function.name, call.function.arguments or ""])
        elif event.type == "tool-call-delta":
            calls[-1][2] += event.delta.message.tool_calls.function.arguments
        elif event.type == "message-end":
            finish = COHERE_FINISH.get(event.delta.finish_reason, event.delta.finish_reason)
            billed = event.delta.usage.billed_units
            usage = (int(billed.input_tokens), int(billed.output_tokens))
    sdk = {
        "text": "".join(text),
        "tool_calls": [(i, n, json.loads(a) if a else {}) for i, n, a in calls],
        "usage": usage,
        "finish": finish,
        # The Cohere stream the server writes has no thinking or cache counts.
        "reasoning": "", "cache_read": 0, "reasoning_tokens": 0,
        "parsed": parsed(script, "".join(text)),
    }
    server.push(script)
    assert ours(runtime, "command-a-03-2025", script) == sdk
    assert sdk["text"] == script.full_text()


# -- groq (Groq().chat.completions, OpenAI's stream) ------------------------------------------


@pytest.fixture(scope="module")
def groq_client(server: ReplayServer) -> Iterator[Any]:
    groq = pytest.importorskip("groq")
    # The SDK's base URL is the host; it adds /openai/v1 itself.
    client = groq.Groq(base_url=server.base_url, api_key="k", max_retries=0)
    yield client
    client.close()


def openai_style(stream: Any) -> dict[str, Any]:
    """Fold OpenAI-style chunks the way the SDK documents it (by ``index``)."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, list[str]] = {}
    usage = finish = cache_read = reasoning_tokens = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            details = chunk.usage.prompt_tokens_details
            cache_read = (details.cached_tokens or 0) if details else 0
            out_details = chunk.usage.completion_tokens_details
            reasoning_tokens = (out_details.reasoning_tokens or 0) if out_details else 0
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            # The server writes DeepSeek's reasoning_content; groq's SDK types only
            # Groq's own `reasoning` and keeps the other as an extra field.
            piece = (choice.delta.model_extra or {}).get("reasoning_content") or choice.delta.reasoning
            if piece:
                reasoning.append(piece)
            for tc in choice.delta.tool_calls or ():
                slot = calls.setdefault(tc.index, ["", "", ""])
                slot[0] += tc.id or ""
                slot[1] += (tc.function.name or "") if tc.function else ""
                slot[2] += (tc.function.arguments or "") if tc.function else ""
            if choice.finish_reason:
                finish = choice.finish_reason
    return {
        "text": "".join(text),
        "tool_calls": [(i, n, json.loads(a) if a else {}) for _, (i, n, a) in sorted(calls.items())],
        "usage": usage,
        "finish": finish,
        "reasoning": "".join(reasoning),
        "cache_read": cache_read,
        "reasoning_tokens": reasoning_tokens,
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_groq_sdk_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, groq_client: Any) -> None:
    script = script_for(seed)
    server.push(script)
    sdk = openai_style(
        groq_client.chat.completions.create(
            model="llama-3.3-70b-versatile", messages=MESSAGES, stream=True,
            extra_body={"stream_options": {"include_usage": True}},  # documented, not a keyword in groq 1.x
        )
    )
    sdk["parsed"] = parsed(script, sdk["text"])
    server.push(script)
    assert ours(runtime, "llama-3.3-70b-versatile", script) == sdk
    assert sdk["text"] == script.full_text()
    assert sdk["reasoning"] == script.full_reasoning()
    assert json.loads(server.requests[-1].body)["stream_options"] == {"include_usage": True}


# -- ollama (Client.chat, NDJSON) -------------------------------------------------------------


@pytest.fixture(scope="module")
def ollama_client(server: ReplayServer) -> Iterator[Any]:
    ollama = pytest.importorskip("ollama")
    client = ollama.Client(host=server.url_for("ollama"))
    yield client
    client._client.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_ollama_sdk_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, ollama_client: Any) -> None:
    script = script_for(seed)
    server.push(script)
    text: list[str] = []
    thinking: list[str] = []
    calls: list[tuple[None, str, Any]] = []
    usage = finish = None
    for chunk in ollama_client.chat(model="llama3.2", messages=MESSAGES, stream=True):
        text.append(chunk.message.content or "")
        thinking.append(chunk.message.thinking or "")
        calls += [(None, c.function.name, dict(c.function.arguments)) for c in chunk.message.tool_calls or ()]
        if chunk.done:
            finish = chunk.done_reason
            if chunk.prompt_eval_count is not None:
                usage = (chunk.prompt_eval_count, chunk.eval_count)
    sdk = {
        "text": "".join(text), "tool_calls": calls, "usage": usage, "finish": finish,
        # Ollama reports no cache or reasoning-token counts.
        "reasoning": "".join(thinking), "cache_read": 0, "reasoning_tokens": 0,
        "parsed": parsed(script, "".join(text)),
    }
    server.push(script)
    mine = ours(runtime, "ollama/llama3.2", script, ids=False)
    # Ollama says `stop` on a tool-call turn (the calls came lines before
    # done_reason); modelwire says tool_calls, as for every other provider.
    assert mine == {**sdk, "finish": mine["finish"]}
    assert mine["finish"] == ("tool_calls" if calls else finish)
    assert sdk["text"] == script.full_text()
    assert sdk["reasoning"] == script.full_reasoning()


# -- gemini (google-genai, generate_content_stream) -------------------------------------------


@pytest.fixture(scope="module")
def genai_client(server: ReplayServer) -> Iterator[Any]:
    genai = pytest.importorskip("google.genai")
    options = genai.types.HttpOptions(base_url=server.url_for("gemini"), api_version="v1beta")
    client = genai.Client(api_key="k", http_options=options)
    yield client
    client.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_google_genai_sdk_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, genai_client: Any) -> None:
    # google-genai parses every line that is not `data:` as JSON, so an SSE
    # comment (`: ping`) breaks it. Gemini sends none; neither do these scripts.
    script = script_for(seed, pings=0)
    server.push(script)
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[tuple[None, str, Any]] = []
    usage = finish = cache_read = reasoning_tokens = None
    for chunk in genai_client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
        for candidate in chunk.candidates or ():
            for part in (candidate.content.parts if candidate.content else None) or ():
                if part.text:
                    (thoughts if part.thought else text).append(part.text)
                if part.function_call:
                    calls.append((None, part.function_call.name, part.function_call.args or {}))
            if candidate.finish_reason:
                finish = candidate.finish_reason.value
        meta = chunk.usage_metadata
        if meta is not None and meta.candidates_token_count is not None:
            # candidatesTokenCount leaves thinking out; modelwire's output includes it.
            reasoning_tokens = meta.thoughts_token_count or 0
            usage = (meta.prompt_token_count, meta.candidates_token_count + reasoning_tokens)
            cache_read = meta.cached_content_token_count or 0
    sdk = {
        "text": "".join(text), "tool_calls": calls, "usage": usage, "finish": finish,
        "reasoning": "".join(thoughts), "cache_read": cache_read, "reasoning_tokens": reasoning_tokens,
        "parsed": parsed(script, "".join(text)),
    }
    server.push(script)
    mine = ours(runtime, "gemini-2.5-flash", script, ids=False)
    # modelwire reports a stream with function calls as finishing for them
    # (Gemini itself says STOP); everything else is Gemini's own reason.
    assert mine == {**sdk, "finish": mine["finish"]}
    assert mine["finish"] == ("tool_calls" if calls else GEMINI_FINISH.get(finish, finish))
    assert sdk["text"] == script.full_text()
    assert sdk["reasoning"] == script.full_reasoning()


# -- mistral (mistralai Mistral().chat.stream, whole tool calls) -----------------------------


@pytest.fixture(scope="module")
def mistral_client(server: ReplayServer) -> Iterator[Any]:
    client_module = pytest.importorskip("mistralai.client")
    with httpx.Client() as http:
        # The SDK adds /v1/chat/completions to its server URL.
        yield client_module.Mistral(api_key="k", server_url=server.base_url + "/mistral", client=http)


@pytest.mark.parametrize("seed", SEEDS)
def test_mistral_sdk_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, mistral_client: Any) -> None:
    script = script_for(seed)
    server.push(script)
    text: list[str] = []
    calls: list[tuple[str, str, Any]] = []
    usage = finish = None
    for event in mistral_client.chat.stream(model="mistral-small-latest", messages=MESSAGES):
        chunk = event.data
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices:
            if isinstance(choice.delta.content, str):
                text.append(choice.delta.content)
            for tc in choice.delta.tool_calls or ():
                args = tc.function.arguments
                calls.append((tc.id, tc.function.name, json.loads(args) if isinstance(args, str) else args))
            if choice.finish_reason:
                finish = choice.finish_reason
    sdk = {
        "text": "".join(text), "tool_calls": calls, "usage": usage, "finish": finish,
        # The Mistral stream the server writes has no thinking parts or cache counts.
        "reasoning": "", "cache_read": 0, "reasoning_tokens": 0,
        "parsed": parsed(script, "".join(text)),
    }
    server.push(script)
    assert ours(runtime, "mistral-small-latest", script) == sdk
    assert sdk["text"] == script.full_text()
    assert "stream_options" not in json.loads(server.requests[-1].body)
