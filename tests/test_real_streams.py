"""Streams shaped exactly as the real services send them (issue 14, "defects
found on real streams"), through real loopback HTTP and the Runtime, with the
official SDKs reading the same bytes as oracles where they expose the field.

Each body cites where its shape comes from. Bodies are sent as raw ``Reply``
bytes (never re-encoded) and cut at random write boundaries by the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import modelwire
from modelwire import ReasoningDelta, ServerToolCall, TextDelta, ToolCallDelta
from modelwire.testing import ReplayServer, Reply

pytestmark = pytest.mark.timeout(60)


def sse(*events: tuple[str | None, dict[str, Any] | str]) -> bytes:
    """SSE frames as the services write them: compact JSON, one ``data:`` line each."""
    out = []
    for name, data in events:
        body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append((f"event: {name}\n" if name else "") + f"data: {body}\n\n")
    return "".join(out).encode()


def reply(body: bytes, content_type: str = "text/event-stream; charset=utf-8") -> Reply:
    return Reply(body=body, content_type=content_type, stream=True, chunk_size=(1, 7))


def genai_stream(genai: Any, server: ReplayServer, contents: str) -> list[Any]:
    """The google-genai SDK's chunks for one streamed call (the client closed: an open one warns later)."""
    client = genai.Client(api_key="k", http_options={"base_url": server.url_for("gemini")})
    try:
        return list(client.models.generate_content_stream(model="gemini-2.5-flash", contents=contents))
    finally:
        client.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=14) as srv:
        yield srv


@pytest.fixture(scope="module")
def rt(server: ReplayServer) -> Iterator[modelwire.SyncRuntime]:
    env = {
        "OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k",
        "ANTHROPIC_BASE_URL": server.url_for("anthropic"), "ANTHROPIC_API_KEY": "k",
        "GEMINI_BASE_URL": server.url_for("gemini"), "GEMINI_API_KEY": "k",
        "OLLAMA_BASE_URL": server.url_for("ollama"),
        "OPENAI_COMPATIBLE_BASE_URL": server.url_for("openai") + "/v1",
    }
    with modelwire.SyncRuntime.from_manifests(
        "builtin:openai", "builtin:anthropic", "builtin:gemini", "builtin:ollama", "builtin:openai-compatible",
        env=env,
    ) as runtime:
        yield runtime


# -- defect 1: Anthropic cached input tokens overwritten by message_delta ----------
# Shape: the Messages streaming docs (docs.anthropic.com "Streaming Messages",
# "Basic streaming request") and anthropic-sdk-python's MessageDeltaUsage
# (types/message_delta_usage.py: "cumulative" input_tokens,
# cache_creation_input_tokens, cache_read_input_tokens repeated in message_delta).
ANTHROPIC_CACHED = sse(
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5-20250929", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 3, "cache_creation_input_tokens": 120, "cache_read_input_tokens": 18639,
                  "cache_creation": {"ephemeral_5m_input_tokens": 120, "ephemeral_1h_input_tokens": 0},
                  "output_tokens": 1, "service_tier": "standard"}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Cached hello"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"input_tokens": 3, "cache_creation_input_tokens": 120,
                                 "cache_read_input_tokens": 18639, "output_tokens": 503}}),
    ("message_stop", {"type": "message_stop"}),
)


def test_anthropic_cached_input_is_not_overwritten(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    server.push(reply(ANTHROPIC_CACHED))
    resp = rt.generate("claude-sonnet-4-5", "hi")
    u = resp.usage
    assert u is not None
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_tokens, u.output_tokens) == (
        3 + 120 + 18639, 18639, 120, 503)
    # claude-sonnet-4-5: input 3.0, cache read 0.3, cache write 3.75, output 15.0 per Mtok
    assert u.cost == (Decimal(3) * 3 + Decimal(18639) * Decimal("0.3") + Decimal(120) * Decimal("3.75")
                      + Decimal(503) * 15) / 1_000_000
    assert u.currency == "USD"


def test_anthropic_sdk_reads_the_same_cache_counts(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    anthropic = pytest.importorskip("anthropic")
    server.push(reply(ANTHROPIC_CACHED))
    ours = rt.generate("claude-sonnet-4-5", "hi").usage
    server.push(reply(ANTHROPIC_CACHED))
    client = anthropic.Anthropic(base_url=server.url_for("anthropic"), api_key="k", max_retries=0)
    with client, client.messages.stream(model="claude-sonnet-4-5", max_tokens=10,
                                        messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    su = final.usage
    assert ours is not None
    assert ours.cached_input_tokens == su.cache_read_input_tokens
    assert ours.cache_write_tokens == su.cache_creation_input_tokens
    assert ours.input_tokens == su.input_tokens + su.cache_read_input_tokens + su.cache_creation_input_tokens
    assert ours.output_tokens == su.output_tokens


# Writes kept for an hour (cache_control ttl "1h") cost 2x input, the 5-minute ones
# 1.25x: message_start's usage.cache_creation splits them (anthropic-sdk-python
# types/cache_creation.py: ephemeral_5m_input_tokens, ephemeral_1h_input_tokens).
ANTHROPIC_HOUR_CACHE = ANTHROPIC_CACHED.replace(
    b'"cache_creation":{"ephemeral_5m_input_tokens":120,"ephemeral_1h_input_tokens":0}',
    b'"cache_creation":{"ephemeral_5m_input_tokens":20,"ephemeral_1h_input_tokens":100}',
)


def test_anthropic_hour_cache_writes_are_priced_at_the_hour_rate(
    server: ReplayServer, rt: modelwire.SyncRuntime
) -> None:
    assert ANTHROPIC_HOUR_CACHE != ANTHROPIC_CACHED
    server.push(reply(ANTHROPIC_HOUR_CACHE))
    u = rt.generate("claude-sonnet-4-5", "hi").usage
    assert u is not None
    assert (u.cache_write_tokens, u.cache_write_1h_tokens) == (120, 100)
    # claude-sonnet-4-5: cache write 3.75 (5 minutes), 6.0 (1 hour) per Mtok
    assert u.cost == (Decimal(3) * 3 + Decimal(18639) * Decimal("0.3") + Decimal(20) * Decimal("3.75")
                      + Decimal(100) * 6 + Decimal(503) * 15) / 1_000_000

    anthropic = pytest.importorskip("anthropic")
    server.push(reply(ANTHROPIC_HOUR_CACHE))
    client = anthropic.Anthropic(base_url=server.url_for("anthropic"), api_key="k", max_retries=0)
    with client, client.messages.stream(model="claude-sonnet-4-5", max_tokens=10,
                                        messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_creation.ephemeral_1h_input_tokens == u.cache_write_1h_tokens


def test_anthropic_message_delta_without_input_keeps_message_start_counts(
    server: ReplayServer, rt: modelwire.SyncRuntime
) -> None:
    # Older API versions send only output_tokens in message_delta.
    body = ANTHROPIC_CACHED.replace(
        b'"usage":{"input_tokens":3,"cache_creation_input_tokens":120,"cache_read_input_tokens":18639,'
        b'"output_tokens":503}', b'"usage":{"output_tokens":503}')
    assert body != ANTHROPIC_CACHED
    server.push(reply(body))
    u = rt.generate("claude-sonnet-4-5", "hi").usage
    assert u is not None and (u.input_tokens, u.cached_input_tokens, u.output_tokens) == (18762, 18639, 503)


# -- defect 2: server-side tool blocks became client tool calls -------------------
# Shape: the web search tool docs (docs.anthropic.com "Web search tool",
# "Streaming"): a server_tool_use block whose input arrives as
# input_json_delta, a web_search_tool_result block, then text with
# citations_delta (anthropic-sdk-python types/citations_web_search_result_location.py).
ANTHROPIC_WEB_SEARCH = sse(
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_01G", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5",
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 2679, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": 3}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
        "type": "server_tool_use", "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "name": "web_search", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "input_json_delta", "partial_json": "{\"query"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "input_json_delta", "partial_json": "\": \"weather NYC today\"}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "web_search_tool_result", "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
        "content": [{"type": "web_search_result", "title": "Weather in New York City",
                     "url": "https://weather.com/nyc", "encrypted_content": "Ev0DCioIAxgC...",
                     "page_age": None}]}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("content_block_start", {"type": "content_block_start", "index": 2,
                             "content_block": {"type": "text", "text": "", "citations": None}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {
        "type": "citations_delta", "citation": {
            "type": "web_search_result_location", "cited_text": "Sunny, 21C", "url": "https://weather.com/nyc",
            "title": "Weather in New York City", "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1lNm"}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "text_delta", "text": "It is sunny."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("content_block_start", {"type": "content_block_start", "index": 3, "content_block": {
        "type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 3,
                             "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"NYC\"}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 3}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"output_tokens": 510, "server_tool_use": {"web_search_requests": 1}}}),
    ("message_stop", {"type": "message_stop"}),
)


def test_anthropic_server_tool_is_not_a_client_tool_call(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    server.push(reply(ANTHROPIC_WEB_SEARCH))
    resp = rt.generate("claude-sonnet-4-5", "weather?")
    assert [(c.id, c.name, c.parsed_arguments()) for c in resp.tool_calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "NYC"})]
    assert [(c.id, c.name, c.parsed_arguments()) for c in resp.server_tool_calls] == [
        ("srvtoolu_014hJH82Qum7Td6UV8gDXThB", "web_search", {"query": "weather NYC today"})]
    (result,) = resp.server_tool_results
    assert (result.tool_call_id, result.kind) == ("srvtoolu_014hJH82Qum7Td6UV8gDXThB", "web_search_tool_result")
    assert result.content[0]["url"] == "https://weather.com/nyc"
    assert [(c.url, c.title, c.cited_text) for c in resp.citations] == [
        ("https://weather.com/nyc", "Weather in New York City", "Sunny, 21C")]
    assert resp.text == "It is sunny."


def test_anthropic_sdk_agrees_on_server_and_client_tools(server: ReplayServer) -> None:
    anthropic = pytest.importorskip("anthropic")
    server.push(reply(ANTHROPIC_WEB_SEARCH))
    client = anthropic.Anthropic(base_url=server.url_for("anthropic"), api_key="k", max_retries=0)
    with client, client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "w"}]) as s:
        final = s.get_final_message()
    assert [(b.type, b.id, b.input) for b in final.content if b.type in ("tool_use", "server_tool_use")] == [
        ("server_tool_use", "srvtoolu_014hJH82Qum7Td6UV8gDXThB", {"query": "weather NYC today"}),
        ("tool_use", "toolu_01A09q90qw90lq917835lq9", {"city": "NYC"}),
    ]


def test_mcp_tool_use_is_server_side(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    # Shape: anthropic-sdk-python types/beta/beta_mcp_tool_use_block.py (id, name, server_name, input).
    body = sse(
        ("message_start", {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant",
                           "content": [], "model": "c", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "mcp_tool_use", "id": "mcptoolu_01", "name": "echo", "server_name": "demo", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"x\":1}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "mcp_tool_result", "tool_use_id": "mcptoolu_01", "is_error": False,
            "content": [{"type": "text", "text": "1"}]}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    )
    server.push(reply(body))
    events = list(rt.stream("claude-sonnet-4-5", "x"))
    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    calls = [e for e in events if isinstance(e, ServerToolCall)]
    assert "".join(e.arguments or "" for e in calls) == '{"x":1}' and calls[0].name == "echo"


# -- defect 3: Gemini thought parts leaked into the answer --------------------------
# Shape: Gemini API "Thinking" docs (includeThoughts: parts with "thought": true)
# and googleapis/python-genai types.py (Part.thought, UsageMetadata.thoughtsTokenCount,
# cachedContentTokenCount); google-genai's .text leaves thought parts out.
GEMINI_THINKING = sse(
    (None, {"candidates": [{"content": {"parts": [{"text": "**Weighing** the options", "thought": True}],
                                        "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 1200, "totalTokenCount": 1200,
                              "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1200}]},
            "modelVersion": "gemini-2.5-flash", "responseId": "r1"}),
    (None, {"candidates": [{"content": {"parts": [{"text": "The answer is 4."}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 6, "totalTokenCount": 1306,
                              "cachedContentTokenCount": 1000, "thoughtsTokenCount": 100},
            "modelVersion": "gemini-2.5-flash", "responseId": "r1"}),
).replace(b"\n\n", b"\r\n\r\n")


def test_gemini_thoughts_are_reasoning_and_billed(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    server.push(reply(GEMINI_THINKING))
    resp = rt.generate("gemini-2.5-flash", "2+2")
    assert resp.text == "The answer is 4."
    assert resp.reasoning == "**Weighing** the options"
    u = resp.usage
    assert u is not None
    assert (u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_input_tokens) == (1200, 106, 100, 1000)
    # gemini-2.5-flash: input 0.3, cached 0.03, output 2.5 per Mtok (thinking billed as output)
    assert u.cost == (Decimal(200) * Decimal("0.3") + Decimal(1000) * Decimal("0.03")
                      + Decimal(106) * Decimal("2.5")) / 1_000_000


def test_google_genai_agrees_on_text_and_thoughts(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    genai = pytest.importorskip("google.genai")
    server.push(reply(GEMINI_THINKING))
    ours = rt.generate("gemini-2.5-flash", "2+2")
    server.push(reply(GEMINI_THINKING))
    chunks = genai_stream(genai, server, "2+2")
    assert "".join(c.text or "" for c in chunks) == ours.text
    thoughts = "".join(p.text for c in chunks for p in c.candidates[0].content.parts if p.thought)
    assert thoughts == ours.reasoning
    assert ours.usage is not None
    assert chunks[-1].usage_metadata.thoughts_token_count == ours.usage.reasoning_tokens


# -- Gemini thought signatures on function calls go back with the call -------------
# Shape: Gemini API "Thought signatures" docs (a thinking model's functionCall part
# carries thoughtSignature; Gemini 3 answers 400 when the next turn leaves it out)
# and googleapis/python-genai types.py (Part.thought_signature, bytes, base64 on the wire).
SIGNATURE = "CiIBVKhc7oDkZ2uWZ3c0x1d0cGx1c2lnbmF0dXJlLWJ5dGVz"
GEMINI_SIGNED_CALL = sse(
    (None, {"candidates": [{"content": {"parts": [
        {"text": "I should look the weather up.", "thought": True},
        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE}],
        "role": "model"}, "index": 0}],
        "modelVersion": "gemini-3-pro-preview", "responseId": "r2"}),
    (None, {"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 8, "thoughtsTokenCount": 12,
                              "totalTokenCount": 60},
            "modelVersion": "gemini-3-pro-preview", "responseId": "r2"}),
)
GEMINI_FINAL = sse(
    (None, {"candidates": [{"content": {"parts": [{"text": "Sunny in Paris."}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 4, "totalTokenCount": 74},
            "modelVersion": "gemini-3-pro-preview", "responseId": "r3"}),
)


def test_gemini_call_signature_is_read_and_sent_back_by_the_tool_loop(
    server: ReplayServer, rt: modelwire.SyncRuntime
) -> None:
    from modelwire.tools import run_tools_sync, tool

    @tool
    def weather(city: str) -> str:
        return f"sunny in {city}"

    server.push(reply(GEMINI_SIGNED_CALL))
    first = rt.generate("gemini-2.5-flash", "weather in Paris?")
    assert [(c.name, c.signature) for c in first.tool_calls] == [("weather", SIGNATURE)]
    assert first.finish_reason == "tool_calls"
    assert first.message()["tool_calls"][0]["signature"] == SIGNATURE

    server.push(reply(GEMINI_SIGNED_CALL))
    server.push(reply(GEMINI_FINAL))
    events = list(run_tools_sync(rt, "gemini-2.5-flash", "weather in Paris?", tools=[weather]))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Sunny in Paris."
    model_turn = server.requests[-1].json["contents"][1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"] == [
        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE}
    ]


def test_gemini_unsigned_calls_send_no_signature(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "name": "weather", "arguments": "{}"}]},
        {"role": "tool", "tool_call_id": "c1", "name": "weather", "content": "sunny"},
    ]
    server.push(reply(GEMINI_FINAL))
    rt.generate("gemini-2.5-flash", messages=messages)
    assert server.requests[-1].json["contents"][1]["parts"] == [{"functionCall": {"name": "weather", "args": {}}}]


def test_google_genai_reads_the_same_call_signature(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    import base64

    genai = pytest.importorskip("google.genai")
    server.push(reply(GEMINI_SIGNED_CALL))
    ours = rt.generate("gemini-2.5-flash", "weather?")
    server.push(reply(GEMINI_SIGNED_CALL))
    chunks = genai_stream(genai, server, "weather?")
    signed = [p for c in chunks for p in c.candidates[0].content.parts if p.function_call]
    assert [base64.b64encode(p.thought_signature).decode() for p in signed] == [c.signature for c in ours.tool_calls]


# -- OpenAI web search: url_citation annotations are citations -----------------------
# Shape: OpenAI "Web search" guide (Chat Completions, gpt-4o-search-preview: the
# message carries annotations [{type: url_citation, url_citation: {start_index,
# end_index, url, title}}]); openai-python types/chat/chat_completion_message.py
# (Annotation, AnnotationURLCitation).
def _search_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1750000000,
            "model": "gpt-4o-search-preview-2025-03-11", "choices": [{"index": 0, "delta": delta,
                                                                      "finish_reason": finish}], **extra}


OPENAI_SEARCH = sse(
    (None, _search_chunk({"role": "assistant", "content": ""})),
    (None, _search_chunk({"content": "Oslo is sunny today ([yr.no](https://www.yr.no/en))."})),
    (None, _search_chunk({"annotations": [
        {"type": "url_citation", "url_citation": {"end_index": 49, "start_index": 21,
                                                  "title": "Oslo weather - yr", "url": "https://www.yr.no/en"}}]})),
    (None, _search_chunk({}, "stop")),
    (None, _search_chunk({}, None, usage={"prompt_tokens": 9, "completion_tokens": 15, "total_tokens": 24})),
    (None, "[DONE]"),
)


def test_openai_url_citations_are_citations_not_text(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    server.push(reply(OPENAI_SEARCH))
    resp = rt.generate("gpt-4.1", "Weather in Oslo?")
    assert resp.text == "Oslo is sunny today ([yr.no](https://www.yr.no/en))."
    assert [(c.url, c.title) for c in resp.citations] == [("https://www.yr.no/en", "Oslo weather - yr")]

    server.push(reply(OPENAI_SEARCH))
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=server.url_for("openai"), api_key="k", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "x"}],
                                                     stream=True))
    # the SDK's chunk type does not declare delta.annotations; it keeps them as an extra field
    sdk = [a for c in chunks if c.choices for a in (getattr(c.choices[0].delta, "annotations", None) or [])]
    assert [(a["url_citation"]["url"], a["url_citation"]["title"]) for a in sdk] == [
        (c.url, c.title) for c in resp.citations]


# -- defect 4: delta.content as a list of typed parts ---------------------------------
# Shape: Mistral's reasoning models (docs.mistral.ai "Reasoning": content is a list
# of {"type": "thinking", "thinking": [{"type": "text", ...}]} and {"type": "text"}
# chunks), sent through the OpenAI-compatible chat completions stream.
def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1750000000, "model": "magistral-medium",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


MISTRAL_PARTS = sse(
    (None, _chunk({"role": "assistant", "content": [
        {"type": "thinking", "thinking": [{"type": "text", "text": "17 * 23 = 391"}]}]})),
    (None, _chunk({"content": [{"type": "text", "text": "3"}]})),
    (None, _chunk({"content": "91"})),
    (None, _chunk({"content": ""}, "stop",
                  usage={"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52})),
    (None, "[DONE]"),
)


def test_openai_compatible_content_parts(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    server.push(reply(MISTRAL_PARTS))
    resp = rt.generate("openai-compatible/magistral-medium", "17*23")
    assert (resp.text, resp.reasoning, resp.finish_reason) == ("391", "17 * 23 = 391", "stop")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_openai_compatible_reasoning_field(field: str, server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    # Shape: DeepSeek API docs "Reasoning Model" (delta.reasoning_content, usage
    # prompt_cache_hit_tokens, completion_tokens_details.reasoning_tokens);
    # Groq "Reasoning" docs (delta.reasoning).
    body = sse(
        (None, _chunk({"role": "assistant", "content": None, field: "Let me add."})),
        (None, _chunk({field: " 1+1=2."})),
        (None, _chunk({"content": "2"})),
        (None, _chunk({}, "stop", usage={
            "prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50, "prompt_cache_hit_tokens": 16,
            "prompt_cache_miss_tokens": 4, "completion_tokens_details": {"reasoning_tokens": 25}})),
        (None, "[DONE]"),
    )
    server.push(reply(body))
    events = list(rt.stream("openai-compatible/deepseek-reasoner", "1+1"))
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Let me add. 1+1=2."
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "2"
    (u,) = [e for e in events if isinstance(e, modelwire.Usage)]
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens) == (20, 30, 16, 25)


def test_openai_sdk_reads_the_same_reasoning(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    openai = pytest.importorskip("openai")
    body = sse(
        (None, _chunk({"role": "assistant", "reasoning_content": "think"})),
        (None, _chunk({"content": "ok"}, "stop")),
        (None, {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
                          "prompt_tokens_details": {"cached_tokens": 8},
                          "completion_tokens_details": {"reasoning_tokens": 3}}}),
        (None, "[DONE]"),
    )
    server.push(reply(body))
    ours = rt.generate("openai-compatible/deepseek-reasoner", "x")
    server.push(reply(body))
    with openai.OpenAI(base_url=server.url_for("openai") + "/v1", api_key="k", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                     stream=True, stream_options={"include_usage": True}))
    theirs = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert theirs == ours.reasoning == "think"
    usage = chunks[-1].usage
    assert ours.usage is not None
    assert (ours.usage.input_tokens, ours.usage.output_tokens, ours.usage.cached_input_tokens,
            ours.usage.reasoning_tokens) == (usage.prompt_tokens, usage.completion_tokens,
                                             usage.prompt_tokens_details.cached_tokens,
                                             usage.completion_tokens_details.reasoning_tokens)


def test_chat_completion_done_chunk_finish_is_read(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    body = sse(
        (None, _chunk({"role": "assistant", "content": "hi"})),
        (None, {"id": "cmpl-1", "object": "chat.completion.done", "created": 1750000000, "model": "m",
                "finish_reason": "length", "choices": []}),
        (None, "[DONE]"),
    )
    server.push(reply(body))
    resp = rt.generate("openai-compatible/some-model", "x")
    assert (resp.text, resp.finish_reason) == ("hi", "length")
