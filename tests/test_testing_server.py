"""modelwire.testing: the replay server speaks each provider's real wire format.

Real HTTP over loopback. Raw httpx reads check the framing; the official
openai and anthropic SDKs act as oracles: what they reassemble from the
served bytes must equal the script. Depends on modelwire.testing only, not
on the engine.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import anyio
import attrs
import httpx
import openai
import pytest

import modelwire.testing
from modelwire.testing import (
    FORMATS,
    ReplayServer,
    Reply,
    Script,
    StreamError,
    ToolCall,
    fake_embedding,
)

SEEDS = range(25)

WEATHER = ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
BASIC = Script(text="Hello, wörld 😀", tool_calls=[WEATHER], usage=(12, 7))


# --- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def module_server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=0) as srv:
        yield srv


@pytest.fixture
def srv(module_server: ReplayServer) -> Iterator[ReplayServer]:
    module_server.reset()
    module_server.default = Script()
    yield module_server
    assert module_server.pending == 0, "a test left pushed answers unconsumed"


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def openai_client(module_server: ReplayServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=module_server.url_for("openai"), api_key="x", max_retries=0)
    with client:
        yield client


@pytest.fixture(scope="module")
def anthropic_client(module_server: ReplayServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=module_server.url_for("anthropic"), api_key="x", max_retries=0
    )
    with client:
        yield client


# --- small sans-IO decoders (the test's own, independent of the engine) ------

_LINE = re.compile(r"\r\n|\r|\n")


def sse(body: bytes) -> list[dict[str, Any]]:
    """Decode an SSE body per the spec: returns events and comments in order."""
    out: list[dict[str, Any]] = []
    event: str | None = None
    data: list[str] = []
    # Split on CR, LF, CRLF only: str.splitlines() would also split inside
    # the JSON on U+2028, which the random scripts send.
    for line in _LINE.split(body.decode("utf-8")):
        if line == "":
            if data or event is not None:
                out.append({"event": event, "data": "\n".join(data)})
            event, data = None, []
        elif line.startswith(":"):
            out.append({"comment": line[1:].strip()})
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    assert not data and event is None, "stream ended inside an event"
    return out


def ndjson(body: bytes) -> list[Any]:
    text = body.decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def openai_reassemble(body: bytes) -> dict[str, Any]:
    events = [e for e in sse(body) if "data" in e]
    assert events[-1]["data"] == "[DONE]"
    chunks = [json.loads(e["data"]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text, calls, finish, usage = "", {}, None, None
    for chunk in chunks:
        if chunk.get("usage"):
            assert chunk["choices"] == []
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                call = calls.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] += tc.get("id", "")
                call["name"] += tc.get("function", {}).get("name", "")
                call["arguments"] += tc.get("function", {}).get("arguments", "")
            finish = choice["finish_reason"] or finish
    return {
        "text": text,
        "calls": [calls[i] for i in sorted(calls)],
        "finish": finish,
        "usage": usage,
    }


def expected_calls(script: Script) -> list[dict[str, str]]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in script.tool_calls]


# --- the formats, read raw --------------------------------------------------


def test_openai_stream_structure(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(BASIC)
    r = http.post(
        srv.url_for("openai") + "/chat/completions",
        json={"model": "gpt-4.1", "stream": True, "stream_options": {"include_usage": True}},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["transfer-encoding"] == "chunked"
    got = openai_reassemble(r.content)
    assert got["text"] == "Hello, wörld 😀"
    assert got["calls"] == expected_calls(BASIC)
    assert got["finish"] == "tool_calls"
    assert got["usage"]["prompt_tokens"] == 12
    assert got["usage"]["completion_tokens"] == 7
    assert got["usage"]["total_tokens"] == 19
    chunks = [json.loads(e["data"]) for e in sse(r.content)[:-1]]
    assert all("usage" in c and c["model"] == "gpt-4.1" for c in chunks)
    first_tool = next(
        c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls")
    )
    head = first_tool["choices"][0]["delta"]["tool_calls"][0]
    assert head == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }


def test_openai_stream_without_include_usage_has_no_usage(
    srv: ReplayServer, http: httpx.Client
) -> None:
    srv.push(BASIC)
    r = http.post(srv.url_for("openai") + "/chat/completions", json={"model": "m", "stream": True})
    chunks = [json.loads(e["data"]) for e in sse(r.content)[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)


def test_openai_parallel_tool_calls_and_split_ids(srv: ReplayServer, http: httpx.Client) -> None:
    calls = [
        ToolCall(f"call_{i}abcdefgh", f"tool_number_{i}", json.dumps({"i": i, "s": "é" * 30}))
        for i in range(3)
    ]
    script = Script(text="", tool_calls=calls, split_ids=True, seed=3)
    srv.push(script)
    r = http.post(srv.url_for("openai") + "/chat/completions", json={"model": "m", "stream": True})
    got = openai_reassemble(r.content)
    assert got["text"] == ""
    assert got["calls"] == expected_calls(script)
    frames = [json.loads(e["data"]) for e in sse(r.content)[:-1]]
    arg_frames = [f for f in frames if f["choices"][0]["delta"].get("tool_calls")]
    assert len(arg_frames) > 3 * 5, "arguments must be spread over many deltas"


def test_openai_non_stream(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(BASIC)
    r = http.post(srv.url_for("openai") + "/chat/completions", json={"model": "m"})
    body = r.json()
    assert r.headers["content-length"] == str(len(r.content))
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert message["content"] == "Hello, wörld 😀"
    assert message["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["total_tokens"] == 19


def test_anthropic_stream_structure(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(BASIC)
    r = http.post(
        srv.url_for("anthropic") + "/v1/messages", json={"model": "claude-x", "stream": True}
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.content)
    names = [e["event"] for e in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1:3] == ["content_block_start", "ping"]  # where the real API puts its ping
    for e in events:
        assert json.loads(e["data"])["type"] == e["event"]
    data = [json.loads(e["data"]) for e in events]
    start = data[0]["message"]
    assert start["usage"]["input_tokens"] == 12 and start["usage"]["output_tokens"] == 1
    assert start["model"] == "claude-x" and start["content"] == []
    text = "".join(
        d["delta"]["text"]
        for d in data
        if d["type"] == "content_block_delta" and d["delta"]["type"] == "text_delta"
    )
    assert text == "Hello, wörld 😀"
    tool_start = next(d for d in data if d["type"] == "content_block_start" and d["index"] == 1)
    assert tool_start["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {},
    }
    partial = [
        d["delta"]["partial_json"]
        for d in data
        if d["type"] == "content_block_delta" and d["index"] == 1
    ]
    assert partial[0] == "" and "".join(partial) == '{"city":"Paris"}' and len(partial) > 2
    assert data[-2]["delta"]["stop_reason"] == "tool_use"
    assert data[-2]["usage"] == {"output_tokens": 7}


def test_anthropic_non_stream(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(BASIC)
    body = http.post(srv.url_for("anthropic") + "/v1/messages", json={"model": "c"}).json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"] == [
        {"type": "text", "text": "Hello, wörld 😀"},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert body["stop_reason"] == "tool_use"
    assert body["usage"]["input_tokens"] == 12 and body["usage"]["output_tokens"] == 7


def test_gemini_sse_structure(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(BASIC)
    r = http.post(
        srv.url_for("gemini") + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        params={"alt": "sse"},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert r.headers["content-type"] == "text/event-stream"
    assert b"\r\n\r\n" in r.content
    chunks = [json.loads(e["data"]) for e in sse(r.content)]
    assert all(c["candidates"][0]["content"]["role"] == "model" for c in chunks)
    assert all(c["modelVersion"] == "gemini-2.5-flash" for c in chunks)
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts) == "Hello, wörld 😀"
    assert [p["functionCall"] for p in parts if "functionCall" in p] == [
        {"name": "get_weather", "args": {"city": "Paris"}}
    ]
    assert [c["candidates"][0].get("finishReason") for c in chunks][-1] == "STOP"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 12,
        "candidatesTokenCount": 7,
        "totalTokenCount": 19,
    }


def test_gemini_json_array_and_non_stream(srv: ReplayServer, http: httpx.Client) -> None:
    base = srv.url_for("gemini") + "/v1beta/models/g"
    srv.push(BASIC, BASIC)
    r = http.post(base + ":streamGenerateContent", json={})
    assert r.headers["content-type"] == "application/json"
    chunks = r.json()
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    body = http.post(base + ":generateContent", json={}).json()
    parts = body["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": "Hello, wörld 😀"}
    assert parts[1] == {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    assert body["usageMetadata"]["totalTokenCount"] == 19


def test_ollama_stream_structure(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(BASIC)
    r = http.post(srv.url_for("ollama") + "/api/chat", json={"model": "llama3.2", "messages": []})
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(r.content)
    assert all(
        line["model"] == "llama3.2" and line["message"]["role"] == "assistant" for line in lines
    )
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert "".join(line["message"]["content"] for line in lines) == "Hello, wörld 😀"
    calls = [c for line in lines for c in line["message"].get("tool_calls", [])]
    assert calls == [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    last = lines[-1]
    assert last["done_reason"] == "stop"
    assert last["prompt_eval_count"] == 12 and last["eval_count"] == 7


def test_ollama_non_stream_and_generate(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(BASIC, Script(text="a b c"), Script(text="a b c"))
    body = http.post(
        srv.url_for("ollama") + "/api/chat", json={"model": "m", "stream": False}
    ).json()
    assert body["done"] is True and body["message"]["content"] == "Hello, wörld 😀"
    assert body["message"]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    lines = ndjson(http.post(srv.url_for("ollama") + "/api/generate", json={"model": "m"}).content)
    assert "".join(line["response"] for line in lines) == "a b c" and lines[-1]["done"] is True
    body = http.post(
        srv.url_for("ollama") + "/api/generate", json={"model": "m", "stream": False}
    ).json()
    assert body["response"] == "a b c"


@pytest.mark.parametrize(
    ("fmt", "path", "request_body", "marker"),
    [
        pytest.param("openai", "/chat/completions", {"stream": True}, b"data: [DONE]", id="openai"),
        pytest.param(
            "anthropic", "/v1/messages", {"stream": True}, b"event: message_stop", id="anthropic"
        ),
        pytest.param(
            "gemini",
            "/v1beta/models/g:streamGenerateContent?alt=sse",
            {},
            b'"finishReason"',
            id="gemini",
        ),
        pytest.param("ollama", "/api/chat", {}, b'"done":true', id="ollama"),
    ],
)
def test_end_marker_knob(
    srv: ReplayServer,
    http: httpx.Client,
    fmt: str,
    path: str,
    request_body: dict[str, Any],
    marker: bytes,
) -> None:
    srv.push(Script(text="x y"), Script(text="x y", end_marker=False))
    url = srv.url_for(fmt) + path
    assert marker in http.post(url, json=request_body).content
    cut = http.post(url, json=request_body).content
    assert marker not in cut and b"y" in cut


@pytest.mark.parametrize(
    ("fmt", "path", "request_body", "expected"),
    [
        pytest.param(
            "openai",
            "/chat/completions",
            {"stream": True},
            b'data: {"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}}\n\n',
            id="openai",
        ),
        pytest.param(
            "anthropic",
            "/v1/messages",
            {"stream": True},
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
            id="anthropic",
        ),
        pytest.param(
            "gemini",
            "/v1beta/models/g:streamGenerateContent?alt=sse",
            {},
            b'data: {"error":{"code":529,"message":"Overloaded","status":"overloaded_error"}}\r\n\r\n',
            id="gemini",
        ),
        pytest.param("ollama", "/api/chat", {}, b'{"error":"Overloaded"}\n', id="ollama"),
        pytest.param(
            "cohere",
            "/v2/chat",
            {"stream": True},
            b'"finish_reason":"ERROR","usage":{"billed_units":{"input_tokens":10,"output_tokens":20},'
            b'"tokens":{"input_tokens":194,"output_tokens":20}},"error":"Overloaded"}}\n\n',
            id="cohere",
        ),
    ],
)
def test_in_stream_error(
    srv: ReplayServer,
    http: httpx.Client,
    fmt: str,
    path: str,
    request_body: dict[str, Any],
    expected: bytes,
) -> None:
    srv.push(Script(text="one two three", error=StreamError(after=2)))
    r = http.post(srv.url_for(fmt) + path, json=request_body)
    assert r.status_code == 200
    assert r.content.endswith(expected)
    assert b"three" not in r.content


@pytest.mark.parametrize("fmt", FORMATS)
def test_status_knob_gives_the_formats_error_body(
    srv: ReplayServer, http: httpx.Client, fmt: str
) -> None:
    path = {
        "openai": "/chat/completions",
        "anthropic": "/v1/messages",
        "gemini": "/v1beta/models/g:generateContent",
        "ollama": "/api/chat",
        "bedrock": "/model/m/converse-stream",
        "vertex": "/v1/projects/p/locations/l/publishers/google/models/g:generateContent",
        "cohere": "/v2/chat",
        "mistral": "/chat/completions",
    }[fmt]
    srv.push(Script(status=429, headers={"retry-after": "1"}))
    r = http.post(srv.url_for(fmt) + path, json={"stream": True})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    body = r.json()
    if fmt == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    elif fmt in ("openai", "mistral"):
        assert body["error"]["type"] == "rate_limit_error"
    elif fmt in ("gemini", "vertex"):
        assert body["error"]["status"] == "RESOURCE_EXHAUSTED" and body["error"]["code"] == 429
    elif fmt == "bedrock":
        assert body == {"message": "scripted HTTP 429 from modelwire.testing"}
        assert r.headers["x-amzn-errortype"].startswith("ThrottlingException:")
    elif fmt == "cohere":
        assert isinstance(body["message"], str) and "error" not in body
    else:
        assert isinstance(body["error"], str)


def test_sdks_raise_on_scripted_statuses(
    srv: ReplayServer, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    srv.push(Script(status=429, headers={"retry-after": "1"}), Script(status=529))
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.APIStatusError) as info:
        anthropic_client.messages.create(
            model="c", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 529


def test_sdks_raise_on_in_stream_errors(
    srv: ReplayServer, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    srv.push(Script(text="a b", error=StreamError()), Script(text="a b", error=StreamError()))
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    with (
        pytest.raises(openai.APIError, match="Overloaded"),
        openai_client.chat.completions.stream(model="m", messages=messages) as s,
    ):
        s.get_final_completion()
    with (
        pytest.raises(anthropic.APIError, match="Overloaded"),
        anthropic_client.messages.stream(model="c", max_tokens=5, messages=messages) as a,
    ):
        a.get_final_message()


def test_reply_sends_raw_bytes_on_any_path(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(
        Reply(status=200, body="<html>proxy</html>", content_type="text/html"),
        Reply(status=200, body=b"", content_type="text/event-stream", stream=True),
        Reply(status=503, body=b'{"error": "down"}', headers=[("x-a", "1"), ("x-b", "2")]),
    )
    r = http.get(srv.base_url + "/anything/at/all")
    assert (r.status_code, r.headers["content-type"], r.text) == (
        200,
        "text/html",
        "<html>proxy</html>",
    )
    r = http.post(srv.url_for("openai") + "/chat/completions", json={"stream": True})
    assert r.content == b"" and r.headers["transfer-encoding"] == "chunked"
    r = http.post(srv.url_for("anthropic") + "/v1/messages", json={})
    assert (r.status_code, r.json(), r.headers["x-a"], r.headers["x-b"]) == (
        503,
        {"error": "down"},
        "1",
        "2",
    )


def test_content_type_override(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(Script(content_type="application/json"))
    r = http.post(srv.url_for("openai") + "/chat/completions", json={"stream": True})
    assert r.headers["content-type"] == "application/json"
    assert r.content.startswith(b"data: {")


def test_unknown_path_is_404_and_keeps_the_script(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(Script(text="kept"))
    r = http.post(srv.url_for("openai") + "/nope", json={})
    assert r.status_code == 404 and "no route" in r.json()["error"]["message"]
    assert srv.pending == 1
    r = http.post(srv.url_for("ollama") + "/api/chat", json={"stream": False})
    assert r.json()["message"]["content"] == "kept"
    assert [q.fmt for q in srv.requests] == [None, "ollama"]


def test_default_script_when_queue_is_empty(srv: ReplayServer, http: httpx.Client) -> None:
    r = http.post(srv.url_for("ollama") + "/api/chat", json={"stream": False})
    assert r.json()["message"]["content"] == modelwire.testing.DEFAULT_TEXT
    srv.default = Script(text="custom default")
    r = http.post(srv.url_for("ollama") + "/api/chat", json={"stream": False})
    assert r.json()["message"]["content"] == "custom default"


def test_requests_are_recorded(srv: ReplayServer, http: httpx.Client) -> None:
    http.post(
        srv.url_for("gemini") + "/v1beta/models/gem-1:streamGenerateContent",
        params={"alt": "sse", "key": "k"},
        headers={"X-Goog-Api-Key": "secret"},
        json={"contents": []},
    )
    http.post(srv.url_for("openai") + "/chat/completions", content=b"not json")
    first, second = srv.requests
    assert (first.method, first.path, first.fmt) == (
        "POST",
        "/gemini/v1beta/models/gem-1:streamGenerateContent",
        "gemini",
    )
    assert first.query == {"alt": "sse", "key": "k"}
    assert first.headers["x-goog-api-key"] == "secret"
    assert first.json == {"contents": []}
    assert (second.body, second.json) == (b"not json", None)


def test_chunked_request_bodies_are_read(srv: ReplayServer, http: httpx.Client) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"model": '
        yield b'"chunky", "stream": false}'

    r = http.post(srv.url_for("ollama") + "/api/chat", content=parts())
    assert r.json()["model"] == "chunky"
    assert srv.requests[0].json == {"model": "chunky", "stream": False}


# --- transport knobs --------------------------------------------------------


def test_chunk_size_is_what_the_client_reads(srv: ReplayServer, http: httpx.Client) -> None:
    script = Script(text="Hello, wörld 😀 " * 20)
    for size, knob in [(1, (1, 1)), (7, (3, 7))]:
        srv.push(attrs.evolve(script, chunk_size=knob))
        with http.stream(
            "POST", srv.url_for("openai") + "/chat/completions", json={"stream": True}
        ) as r:
            pieces = list(r.iter_raw())
        assert max(len(p) for p in pieces) <= size
        assert len(pieces) > 100
        assert openai_reassemble(b"".join(pieces))["text"] == script.full_text()


def test_chunk_size_none_writes_one_piece_per_frame(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(Script(text="a b c", chunk_size=None, delay=0.001))
    with http.stream("POST", srv.url_for("ollama") + "/api/chat", json={}) as r:
        pieces = list(r.iter_raw())
    assert len(pieces) == 4 and all(p.endswith(b"\n") and p.count(b"\n") == 1 for p in pieces)


def test_delay_knob_streams_the_same_bytes(srv: ReplayServer, http: httpx.Client) -> None:
    url = srv.url_for("anthropic") + "/v1/messages"
    srv.push(Script(seed=5, chunk_size=(40, 80)))
    fast = http.post(url, json={"stream": True}).content
    srv.reset()
    srv.push(Script(seed=5, chunk_size=(40, 80), delay=0.002))
    with http.stream("POST", url, json={"stream": True}) as r:
        slow = list(r.iter_raw())
    assert b"".join(slow) == fast and len(slow) > 5


@pytest.mark.parametrize("stream", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("after", [0, 1, 300])
def test_disconnect_knob_breaks_the_body(
    srv: ReplayServer, http: httpx.Client, stream: bool, after: int
) -> None:
    srv.push(Script(disconnect_after=after))
    with http.stream(
        "POST", srv.url_for("openai") + "/chat/completions", json={"stream": stream}
    ) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            r.read()
    # the server closed that connection; the pool opens a new one
    assert http.post(srv.url_for("ollama") + "/api/chat", json={"stream": False}).status_code == 200


def test_disconnect_with_delay(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(Script(disconnect_after=100, delay=0.001, chunk_size=(10, 30)))
    with http.stream("POST", srv.url_for("anthropic") + "/v1/messages", json={"stream": True}) as r:
        received = b""
        with pytest.raises(httpx.RemoteProtocolError):
            for piece in r.iter_raw():
                received += piece
    assert len(received) == 100


def test_pings_knob(srv: ReplayServer, http: httpx.Client) -> None:
    srv.push(Script(text="a b c", pings=3), Script(text="a b c", pings=0))
    events = sse(
        http.post(srv.url_for("openai") + "/chat/completions", json={"stream": True}).content
    )
    assert sum("comment" in e for e in events) == 3
    events = sse(
        http.post(srv.url_for("anthropic") + "/v1/messages", json={"stream": True}).content
    )
    assert not any(e["event"] == "ping" for e in events)


# --- embeddings -------------------------------------------------------------


def test_embeddings_every_format(
    srv: ReplayServer, http: httpx.Client, openai_client: openai.OpenAI
) -> None:
    result = openai_client.embeddings.create(model="text-embedding-3-small", input=["a", "bé"])
    assert [d.embedding for d in result.data] == [fake_embedding("a"), fake_embedding("bé")]
    floats = http.post(
        srv.url_for("openai") + "/embeddings",
        json={"input": "a", "encoding_format": "float", "dimensions": 20},
    ).json()
    assert floats["data"][0]["embedding"] == fake_embedding("a", 20)
    base = srv.url_for("gemini") + "/v1beta/models/text-embedding-004"
    one = http.post(base + ":embedContent", json={"content": {"parts": [{"text": "a"}]}}).json()
    assert one == {"embedding": {"values": fake_embedding("a")}}
    batch = http.post(
        base + ":batchEmbedContents",
        json={"requests": [{"content": {"parts": [{"text": t}]}} for t in ("a", "b")]},
    ).json()
    assert batch == {
        "embeddings": [{"values": fake_embedding("a")}, {"values": fake_embedding("b")}]
    }
    body = http.post(
        srv.url_for("ollama") + "/api/embed", json={"model": "m", "input": ["a", "b"]}
    ).json()
    assert body["embeddings"] == [fake_embedding("a"), fake_embedding("b")]
    srv.push(Script(status=401))
    assert http.post(srv.url_for("openai") + "/embeddings", json={"input": "a"}).status_code == 401


def test_fake_embedding_is_deterministic() -> None:
    assert fake_embedding("x") == fake_embedding("x") != fake_embedding("y")
    assert len(fake_embedding("x", 100)) == 100
    assert all(-1.0 <= v < 1.0 for v in fake_embedding("x", 100))


# --- the official SDKs as oracles --------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_openai_sdk_reassembles_random_streams(
    srv: ReplayServer, openai_client: openai.OpenAI, seed: int
) -> None:
    script = Script.random(seed)
    srv.push(script)
    with openai_client.chat.completions.stream(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "hi"}],
        stream_options={"include_usage": True},
    ) as stream:
        stream.until_done()
        # The SDK's own accumulation; get_final_completion() would refuse a
        # "length" finish.
        final = stream.current_completion_snapshot
    message = final.choices[0].message
    assert (message.content or "") == script.full_text()
    got = [
        {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
        for c in message.tool_calls or []
        if c.type == "function"
    ]
    assert got == expected_calls(script)
    assert final.choices[0].finish_reason == script.wire_finish("openai")
    assert final.usage is not None and script.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == script.usage


@pytest.mark.parametrize("seed", SEEDS)
def test_anthropic_sdk_reassembles_random_streams(
    srv: ReplayServer, anthropic_client: anthropic.Anthropic, seed: int
) -> None:
    script = Script.random(seed)
    srv.push(script)
    with anthropic_client.messages.stream(
        model="claude-replay", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    text = "".join(b.text for b in final.content if b.type == "text")
    assert text == script.full_text()
    got = [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert got == [(c.id, c.name, json.loads(c.arguments)) for c in script.tool_calls]
    assert final.stop_reason == script.wire_finish("anthropic")
    assert script.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == script.usage


@pytest.mark.parametrize("seed", range(5))
def test_sdks_read_random_non_streamed_answers(
    srv: ReplayServer,
    openai_client: openai.OpenAI,
    anthropic_client: anthropic.Anthropic,
    seed: int,
) -> None:
    script = Script.random(seed)
    srv.push(script, script)
    completion = openai_client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert (completion.choices[0].message.content or "") == script.full_text()
    assert completion.choices[0].finish_reason == script.wire_finish("openai")
    message = anthropic_client.messages.create(
        model="c", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    assert "".join(b.text for b in message.content if b.type == "text") == script.full_text()
    assert [b.input for b in message.content if b.type == "tool_use"] == [
        json.loads(c.arguments) for c in script.tool_calls
    ]


@pytest.mark.parametrize("seed", range(10))
def test_raw_reassembly_of_random_streams_in_every_format(
    srv: ReplayServer, http: httpx.Client, seed: int
) -> None:
    script = Script.random(seed)
    srv.push(script, script, script)
    r = http.post(srv.url_for("gemini") + "/v1beta/models/g:streamGenerateContent?alt=sse", json={})
    parts = [
        p
        for e in sse(r.content)
        if "data" in e
        for p in json.loads(e["data"])["candidates"][0]["content"]["parts"]
    ]
    assert "".join(p.get("text", "") for p in parts) == script.full_text()
    assert [p["functionCall"]["args"] for p in parts if "functionCall" in p] == [
        json.loads(c.arguments) for c in script.tool_calls
    ]
    lines = ndjson(http.post(srv.url_for("ollama") + "/api/chat", json={}).content)
    assert "".join(line["message"]["content"] for line in lines) == script.full_text()
    r = http.post(srv.url_for("openai") + "/chat/completions", json={"stream": True})
    assert openai_reassemble(r.content)["calls"] == expected_calls(script)


def test_random_scripts_are_reproducible_and_varied() -> None:
    assert Script.random(7) == Script.random(7)
    scripts = [Script.random(s) for s in range(30)]
    text = "".join(s.full_text() for s in scripts)
    assert any(ord(ch) > 0xFFFF for ch in text), "astral characters"
    assert any("\u0300" <= ch <= "\u036f" for ch in text), "combining marks"
    assert {len(s.tool_calls) for s in scripts} == {0, 1, 2, 3}
    assert Script.random(3, usage=(1, 2), pings=0).usage == (1, 2)


def test_same_seed_same_bytes() -> None:
    bodies = []
    for _ in range(2):
        with ReplayServer(seed=42) as srv, httpx.Client() as client:
            srv.push(Script.random(1), Script.random(2))
            url = srv.url_for("anthropic") + "/v1/messages"
            bodies.append([client.post(url, json={"stream": True}).content for _ in range(2)])
    assert bodies[0] == bodies[1]


# --- event loops, concurrency, lifecycle -------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_clients_on_any_event_loop(srv: ReplayServer, backend: str) -> None:
    async def main() -> bytes:
        async with httpx.AsyncClient() as client:
            url = srv.url_for("openai") + "/chat/completions"
            async with client.stream("POST", url, json={"stream": True}) as r:
                return b"".join([piece async for piece in r.aiter_bytes()])

    srv.push(BASIC)
    assert openai_reassemble(anyio.run(main, backend=backend))["text"] == "Hello, wörld 😀"


def test_50_concurrent_streams(srv: ReplayServer) -> None:
    srv.default = Script(text=[f"piece {i} é " for i in range(200)], chunk_size=(1, 64))
    expected = srv.default.full_text()

    async def one(client: httpx.AsyncClient) -> str:
        url = srv.url_for("openai") + "/chat/completions"
        async with client.stream("POST", url, json={"stream": True}) as r:
            return openai_reassemble(await r.aread())["text"]

    async def main() -> list[str]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(limits=limits, timeout=20) as client:
            return await asyncio.gather(*[one(client) for _ in range(50)])

    assert asyncio.run(main()) == [expected] * 50
    assert len(srv.requests) == 50


def test_stop_cuts_idle_keep_alive_connections() -> None:
    srv = ReplayServer().start()
    url = srv.url_for("ollama") + "/api/chat"
    with httpx.Client() as client:
        assert client.post(url, json={"stream": False}).status_code == 200
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        stopper.join(timeout=5)
        assert not stopper.is_alive(), "stop() hung on an idle keep-alive connection"
        with pytest.raises(httpx.TransportError):
            client.post(url, json={"stream": False})
    srv.stop()  # idempotent


def test_stop_interrupts_a_delayed_stream() -> None:
    srv = ReplayServer().start()
    srv.push(Script(delay=10.0, chunk_size=(5, 5)))
    with (
        httpx.Client() as client,
        client.stream(
            "POST", srv.url_for("openai") + "/chat/completions", json={"stream": True}
        ) as r,
    ):
        it = r.iter_raw()
        next(it)
        srv.stop()
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in it:
                pass


def test_api_errors() -> None:
    srv = ReplayServer()
    with pytest.raises(RuntimeError, match="not running"):
        srv.base_url  # noqa: B018
    with srv:
        with pytest.raises(ValueError, match="unknown format 'palm'"):
            srv.url_for("palm")
        with pytest.raises(TypeError):
            srv.push("hello")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="already running"):
            srv.start()
        assert srv.url_for("openai") == srv.base_url + "/openai/v1"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", srv.base_url)
    with pytest.raises(ValueError, match="chunk_size"):
        Script(chunk_size=(0, 3))


def test_exported_members() -> None:
    assert modelwire.testing.__all__ == sorted(modelwire.testing.__all__)
    for name in modelwire.testing.__all__:
        value = getattr(modelwire.testing, name)
        assert name.isupper() or value.__module__.startswith("modelwire.testing.")


def test_restarts_on_the_port_it_just_left() -> None:
    """A server-closed connection leaves the port in TIME_WAIT: a restart there must still bind."""
    first = ReplayServer(seed=0).start()
    port = first.port
    with httpx.Client(timeout=10) as client:  # keep-alive: the server closes it at stop()
        assert client.post(f"{first.url_for('openai')}/chat/completions", json={"model": "m"}).status_code == 200
        first.stop()
    with ReplayServer(seed=0, port=port) as again:
        assert again.port == port
        r = httpx.post(f"{again.url_for('openai')}/chat/completions", json={"model": "m"}, timeout=10)
        assert r.status_code == 200
