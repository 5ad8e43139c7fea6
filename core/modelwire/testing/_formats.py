"""Render a script in a provider's real wire format (sans-IO: no sockets here).

Each renderer turns a :class:`Script` plus what the request asked for (model,
stream or not, ``stream_options.include_usage``) into response bytes, framed
exactly as the real service frames them: OpenAI ``data:`` lines ending in
``[DONE]`` (Mistral's with whole tool calls), Anthropic and Cohere (v2
chat) named SSE events, Gemini ``data:`` lines separated by
CRLF pairs (or a JSON array without ``alt=sse``), Ollama NDJSON. Keeping this
pure lets the server cache a rendered stream and lets tests inspect it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import random
import re
import struct
import uuid
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import attrs

from ._script import Headers, Script, StreamError

__all__ = [
    "Rendered",
    "Route",
    "error_body",
    "eventstream_message",
    "fake_embedding",
    "render_embedding",
    "render_script",
    "resolve",
]

_SSE = "text/event-stream; charset=utf-8"
_JSON = "application/json"
_NDJSON = "application/x-ndjson"
_CREATED_AT = "2025-01-01T00:00:00.000000000Z"
_WORDS = re.compile(r"\s*\S{1,12}|\s+")
_HOLE = "\x00modelwire-hole\x00"


@attrs.frozen
class Route:
    """What a request path asks for: a format and an operation."""

    fmt: str
    #: ``chat`` (OpenAI chat completions, Anthropic messages, Gemini
    #: generateContent, Ollama /api/chat), ``generate`` (Ollama
    #: /api/generate) or ``embed``.
    op: str
    #: The model named in the path (Gemini), else None.
    model: str | None = None
    #: Gemini's method (``streamGenerateContent``, ``embedContent``, ...).
    method: str | None = None


@attrs.frozen
class Rendered:
    """A response ready to write: status, Content-Type, body and framing."""

    status: int
    content_type: str
    body: bytes
    #: True: Transfer-Encoding chunked (a stream); False: Content-Length.
    stream: bool
    headers: Headers = ()
    #: End offsets of the frames (events, lines) in ``body``; empty when the
    #: body is one piece. ``chunk_size=None`` writes along these.
    frames: tuple[int, ...] = ()


_GEMINI_PATH = re.compile(r"/models/([^/:]+):([A-Za-z]+)$")


def resolve(path: str) -> Route | None:
    """Map a request path (``/openai/v1/chat/completions``) to a route.

    The first segment picks the format; the rest is matched by its ending, so
    a manifest may put the version in its base URL or in its path alike.
    """
    fmt, _, rest = path.lstrip("/").partition("/")
    rest = "/" + rest.rstrip("/")
    if fmt == "openai":
        if rest.endswith("/chat/completions"):
            return Route("openai", "chat")
        if rest.endswith("/embeddings"):
            return Route("openai", "embed")
    elif fmt == "anthropic":
        if rest.endswith("/messages"):
            return Route("anthropic", "chat")
    elif fmt == "mistral":
        if rest.endswith("/chat/completions"):
            return Route("mistral", "chat")
    elif fmt == "cohere":
        if rest.endswith("/v2/chat"):
            return Route("cohere", "chat")
    elif fmt == "gemini":
        match = _GEMINI_PATH.search(rest)
        if match:
            model, method = match.groups()
            if method in ("streamGenerateContent", "generateContent"):
                return Route("gemini", "chat", model, method)
            if method in ("embedContent", "batchEmbedContents"):
                return Route("gemini", "embed", model, method)
    elif fmt == "vertex":
        return _vertex_route(rest)
    elif fmt == "bedrock":
        return _bedrock_route(rest)
    elif fmt == "ollama":
        if rest.endswith("/api/chat"):
            return Route("ollama", "chat")
        if rest.endswith("/api/generate"):
            return Route("ollama", "generate")
        if rest.endswith(("/api/embed", "/api/embeddings")):
            return Route("ollama", "embed", method=rest.rsplit("/", 1)[1])
    return None


def _dumps(obj: Any) -> str:
    # Compact and raw UTF-8, as the real services send it: random write
    # boundaries then fall inside multi-byte characters, which clients must
    # survive.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _template(obj: dict[str, Any]) -> Callable[[str], str]:
    """``obj`` with one value left open: fill it with already-dumped JSON.

    Most of a streamed chunk (id, model, created...) is the same in every
    frame; dumping it once keeps a 20,000-frame render cheap.
    """
    prefix, suffix = _dumps(obj).split(_dumps(_HOLE))
    return lambda value: prefix + value + suffix


def _pieces(script: Script) -> list[str]:
    if isinstance(script.text, str):
        return _WORDS.findall(script.text)
    return list(script.text)


def _fragments(text: str, rng: random.Random, longest: int = 8) -> list[str]:
    """Cut ``text`` into random pieces of 1..longest characters."""
    out: list[str] = []
    start = 0
    while start < len(text):
        end = start + rng.randint(1, longest)
        out.append(text[start:end])
        start = end
    return out


def _rid(rng: random.Random, prefix: str, n: int = 24) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(rng.choices(alphabet, k=n))


@attrs.define
class _Frames:
    """A stream before the knobs are applied."""

    head: list[str]
    content: list[str]
    tail: list[str]
    marker: list[str]
    error: str
    ping: str | None = None
    default_pings: int = 0
    first_ping_at: int | None = None


def _assemble(frames: _Frames, script: Script, rng: random.Random) -> list[str]:
    content = list(frames.content)
    if script.error is not None and script.error.after is not None:
        del content[script.error.after :]
    pings = frames.default_pings if script.pings is None else script.pings
    if frames.ping is not None and pings > 0:
        spots = sorted((rng.randint(0, len(content)) for _ in range(pings)), reverse=True)
        if frames.first_ping_at is not None:
            spots[-1] = min(frames.first_ping_at, len(content))
            spots.sort(reverse=True)
        for spot in spots:
            content.insert(spot, frames.ping)
    out = frames.head + content
    if script.error is not None:
        out.append(frames.error)
    else:
        out += frames.tail
        if script.end_marker:
            out += frames.marker
    return out


# --- openai ---------------------------------------------------------------


def _openai_usage(usage: tuple[int, int], script: Script | None = None) -> dict[str, Any]:
    prompt, completion = usage
    cached = script.cache_read if script is not None else 0
    reasoning = script.reasoning_tokens if script is not None else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _openai_stream(
    script: Script, model: str, include_usage: bool, rng: random.Random
) -> list[str]:
    base: dict[str, Any] = {
        "id": _rid(rng, "chatcmpl-", 29),
        "object": "chat.completion.chunk",
        "created": 1735689600 + rng.randrange(10**7),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_replay",
        "choices": _HOLE,
    }
    if include_usage:
        base["usage"] = None  # the real API sends usage: null until the last chunk
    chunk = _template(base)

    def frame(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        return "data: " + chunk(_dumps(choice)) + "\n\n"

    pieces = _pieces(script)
    head = [frame({"role": "assistant", "content": "" if pieces else None, "refusal": None})]
    # Reasoning first, as DeepSeek sends it: delta.reasoning_content, content null.
    content = [
        frame({"content": None, "reasoning_content": piece})
        for block in script.reasoning if block.redacted is None
        for piece in block.pieces() if piece
    ]
    # Text deltas are the hot path: splice the JSON string into a fixed frame.
    text_frame = _template(
        {"index": 0, "delta": {"content": _HOLE}, "logprobs": None, "finish_reason": None}
    )
    content += ["data: " + chunk("[" + text_frame(_dumps(p)) + "]") + "\n\n" for p in pieces]
    for index, call in enumerate(script.tool_calls):
        ids = _fragments(call.id, rng, 6) if script.split_ids else [call.id]
        names = _fragments(call.name, rng, 4) if script.split_ids else [call.name]
        for n in range(max(len(ids), len(names))):
            entry: dict[str, Any] = {"index": index}
            if n < len(ids):
                entry["id"] = ids[n]
            if n == 0:
                entry["type"] = "function"
            # Every delta carries a function object, as clients (the openai
            # SDK's stream helper among them) expect.
            function: dict[str, Any] = {}
            if n < len(names):
                function["name"] = names[n]
            if n == 0 or n >= len(names):
                function["arguments"] = ""
            entry["function"] = function
            content.append(frame({"tool_calls": [entry]}))
        for piece in _fragments(call.arguments, rng):
            content.append(
                frame({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    tail = [frame({}, script.wire_finish("openai"))]
    if include_usage and script.usage is not None:
        last = dict(base, choices=[], usage=_openai_usage(script.usage, script))
        tail.append("data: " + _dumps(last) + "\n\n")
    err = script.error or StreamError()
    error = {"error": {"message": err.message, "type": err.type, "param": None, "code": None}}
    return _assemble(
        _Frames(
            head=head,
            content=content,
            tail=tail,
            marker=["data: [DONE]\n\n"],
            error="data: " + _dumps(error) + "\n\n",
            ping=": ping\n\n",
        ),
        script,
        rng,
    )


def _openai_message(script: Script, model: str, rng: random.Random) -> str:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": script.full_text() or None,
        "refusal": None,
        "annotations": [],
    }
    if script.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in script.tool_calls
        ]
    body: dict[str, Any] = {
        "id": _rid(rng, "chatcmpl-", 29),
        "object": "chat.completion",
        "created": 1735689600 + rng.randrange(10**7),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": script.wire_finish("openai"),
            }
        ],
    }
    if script.reasoning:
        message["reasoning_content"] = "".join(b.full_text() for b in script.reasoning if b.redacted is None)
    if script.usage is not None:
        body["usage"] = _openai_usage(script.usage, script)
    body["service_tier"] = "default"
    body["system_fingerprint"] = "fp_replay"
    return _dumps(body)


# --- anthropic ------------------------------------------------------------


def _anthropic_event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {_dumps(data)}\n\n"


def _anthropic_usage(script: Script, output: int | None = None) -> dict[str, Any]:
    """Anthropic's usage: ``input_tokens`` is only the uncached part of the prompt."""
    prompt, completion = script.usage or (0, 0)
    return {
        "input_tokens": max(prompt - script.cache_read - script.cache_write, 0),
        "cache_creation_input_tokens": script.cache_write,
        "cache_read_input_tokens": script.cache_read,
        "output_tokens": completion if output is None else output,
    }


def _anthropic_block(index: int, block: dict[str, Any], deltas: list[dict[str, Any]]) -> list[str]:
    """One content block: start, its deltas, stop."""
    out = [_anthropic_event("content_block_start",
                            {"type": "content_block_start", "index": index, "content_block": block})]
    out += [_anthropic_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas]
    out.append(_anthropic_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out


def _anthropic_prelude(script: Script, rng: random.Random) -> list[str]:
    """Thinking and server-tool blocks, which come before the text (indexes from 0)."""
    out: list[str] = []
    index = 0
    for block in script.reasoning:
        if block.redacted is not None:
            out += _anthropic_block(index, {"type": "redacted_thinking", "data": block.redacted}, [])
        else:
            deltas = [{"type": "thinking_delta", "thinking": p} for p in block.pieces()]
            deltas.append({"type": "signature_delta", "signature": block.signature or ""})
            out += _anthropic_block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)
        index += 1
    for tool in script.server_tools:
        mcp = tool.server_name is not None
        use: dict[str, Any] = {"type": "mcp_tool_use" if mcp else "server_tool_use", "id": tool.id,
                               "name": tool.name, "input": {}}
        if mcp:
            use["server_name"] = tool.server_name
        pieces = ["", *_fragments(tool.arguments, rng)]
        out += _anthropic_block(index, use, [{"type": "input_json_delta", "partial_json": p} for p in pieces])
        result: dict[str, Any] = {"type": "mcp_tool_result" if mcp else tool.result_type,
                                  "tool_use_id": tool.id, "content": json.loads(tool.result)}
        if mcp:
            result["is_error"] = False
        out += _anthropic_block(index + 1, result, [])
        index += 2
    return out


def _anthropic_stream(script: Script, model: str, rng: random.Random) -> list[str]:
    message: dict[str, Any] = {
        "id": _rid(rng, "msg_01"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _anthropic_usage(script, output=1),
    }
    head = [_anthropic_event("message_start", {"type": "message_start", "message": message})]
    content: list[str] = _anthropic_prelude(script, rng)
    index = len(script.reasoning) + 2 * len(script.server_tools)
    pieces = _pieces(script)
    if pieces:
        block: dict[str, Any] = {"type": "text", "text": ""}
        if script.citations:
            block["citations"] = []
        content.append(
            _anthropic_event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        for c in script.citations:
            citation = {"type": "web_search_result_location", "cited_text": c.cited_text, "url": c.url,
                        "title": c.title, "encrypted_index": _rid(rng, "Eo8BCioIAhgBIiQ", 16)}
            content.append(_anthropic_event("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "citations_delta", "citation": citation}}))
        delta = _template(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": _HOLE},
            }
        )
        content += [f"event: content_block_delta\ndata: {delta(_dumps(p))}\n\n" for p in pieces]
        content.append(
            _anthropic_event("content_block_stop", {"type": "content_block_stop", "index": index})
        )
        index += 1
    for call in script.tool_calls:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        content.append(
            _anthropic_event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        for piece in ["", *_fragments(call.arguments, rng)]:
            content.append(
                _anthropic_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
            )
        content.append(
            _anthropic_event("content_block_stop", {"type": "content_block_stop", "index": index})
        )
        index += 1
    output = script.usage[1] if script.usage is not None else 0
    # Current API versions repeat the cumulative input counts in message_delta
    # (anthropic-sdk-python MessageDeltaUsage); a script with cache or
    # reasoning counts gets that shape, others the older output-only one.
    final_usage: dict[str, Any] = {"output_tokens": output}
    if script.cache_read or script.cache_write or script.reasoning_tokens:
        final_usage = _anthropic_usage(script)
        if script.reasoning_tokens:
            final_usage["output_tokens_details"] = {"thinking_tokens": script.reasoning_tokens}
    tail = [
        _anthropic_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": script.wire_finish("anthropic"), "stop_sequence": None},
                "usage": final_usage,
            },
        )
    ]
    err = script.error or StreamError()
    return _assemble(
        _Frames(
            head=head,
            content=content,
            tail=tail,
            marker=[_anthropic_event("message_stop", {"type": "message_stop"})],
            error=_anthropic_event(
                "error", {"type": "error", "error": {"type": err.type, "message": err.message}}
            ),
            # The real API writes this one with a space after the colon.
            ping='event: ping\ndata: {"type": "ping"}\n\n',
            default_pings=1,
            first_ping_at=1,
        ),
        script,
        rng,
    )


def _anthropic_message(script: Script, model: str, rng: random.Random) -> str:
    blocks: list[dict[str, Any]] = [
        {"type": "redacted_thinking", "data": b.redacted} if b.redacted is not None
        else {"type": "thinking", "thinking": b.full_text(), "signature": b.signature or ""}
        for b in script.reasoning
    ]
    if script.full_text():
        blocks.append({"type": "text", "text": script.full_text()})
    for call in script.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.parsed_arguments()}
        )
    return _dumps(
        {
            "id": _rid(rng, "msg_01"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": script.wire_finish("anthropic"),
            "stop_sequence": None,
            "usage": _anthropic_usage(script),
        }
    )


# --- gemini ---------------------------------------------------------------


def _gemini_chunks(
    script: Script, model: str, rng: random.Random, final: bool
) -> list[dict[str, Any]]:
    """GenerateContentResponse objects; ``final`` puts finishReason on the last."""
    response_id = _rid(rng, "", 22)
    parts_list: list[list[dict[str, Any]]] = [
        [{"text": p, "thought": True}]
        for block in script.reasoning if block.redacted is None
        for p in block.pieces() if p
    ]
    parts_list += [[{"text": p}] for p in _pieces(script)]
    if script.tool_calls:
        parts_list.append(
            [
                {"functionCall": {"name": c.name, "args": c.parsed_arguments()}}
                for c in script.tool_calls
            ]
        )
    if not parts_list:
        parts_list.append([{"text": ""}])
    chunks: list[dict[str, Any]] = []
    for parts in parts_list:
        chunk: dict[str, Any] = {
            "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}]
        }
        if script.usage is not None:
            # Real streams carry the prompt count on every chunk and the
            # candidate count only once it is known.
            chunk["usageMetadata"] = {
                "promptTokenCount": script.usage[0],
                "totalTokenCount": script.usage[0],
            }
        chunk["modelVersion"] = model
        chunk["responseId"] = response_id
        chunks.append(chunk)
    if final:
        last = chunks[-1]
        candidate = last["candidates"][0]
        last["candidates"][0] = {
            "content": candidate["content"],
            "finishReason": script.wire_finish("gemini"),
            "index": 0,
        }
        if script.citations:
            last["candidates"][0]["groundingMetadata"] = {
                "groundingChunks": [{"web": {"uri": c.url, "title": c.title}} for c in script.citations],
            }
        if script.usage is not None:
            prompt, completion = script.usage
            # candidatesTokenCount leaves thinking out; thoughtsTokenCount
            # and cachedContentTokenCount appear only when non-zero.
            meta: dict[str, Any] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": completion - script.reasoning_tokens,
                "totalTokenCount": prompt + completion,
            }
            if script.cache_read:
                meta["cachedContentTokenCount"] = script.cache_read
            if script.reasoning_tokens:
                meta["thoughtsTokenCount"] = script.reasoning_tokens
            last["usageMetadata"] = meta
    return chunks


def _gemini_error(err: StreamError) -> dict[str, Any]:
    return {"error": {"code": err.code, "message": err.message, "status": err.type}}


def _gemini_stream(script: Script, model: str, rng: random.Random, sse: bool) -> list[str]:
    final = script.end_marker and script.error is None
    chunks = _gemini_chunks(script, model, rng, final)
    err = script.error or StreamError()
    if not sse:
        # Without alt=sse the API streams one JSON array, element by element.
        objs = [_dumps(c) for c in chunks]
        if script.error is not None:
            if script.error.after is not None:
                del objs[script.error.after :]
            objs.append(_dumps(_gemini_error(err)))
        frames = ["[" + objs[0], *[",\r\n" + o for o in objs[1:]]]
        return [*frames, "]"] if script.end_marker else frames
    return _assemble(
        _Frames(
            head=[],
            content=[f"data: {_dumps(c)}\r\n\r\n" for c in chunks],
            tail=[],
            marker=[],
            error=f"data: {_dumps(_gemini_error(err))}\r\n\r\n",
            ping=": ping\r\n\r\n",
        ),
        script,
        rng,
    )


def _gemini_response(script: Script, model: str, rng: random.Random) -> str:
    parts: list[dict[str, Any]] = []
    if script.full_text():
        parts.append({"text": script.full_text()})
    parts += [
        {"functionCall": {"name": c.name, "args": c.parsed_arguments()}} for c in script.tool_calls
    ]
    whole = attrs.evolve(script, text=(), tool_calls=())
    (chunk,) = _gemini_chunks(whole, model, rng, final=True)
    chunk["candidates"][0]["content"]["parts"] = parts or [{"text": ""}]
    return _dumps(chunk)


# --- ollama ---------------------------------------------------------------


def _ollama_final(script: Script) -> dict[str, Any]:
    out: dict[str, Any] = {"done_reason": script.wire_finish("ollama"), "done": True}
    if script.usage is not None:
        prompt, completion = script.usage
        out.update(
            total_duration=1_000_000 * (prompt + completion),
            load_duration=1_000_000,
            prompt_eval_count=prompt,
            prompt_eval_duration=100_000 * prompt,
            eval_count=completion,
            eval_duration=1_000_000 * completion,
        )
    return out


def _ollama_tool_calls(script: Script) -> list[dict[str, Any]]:
    return [
        {"function": {"name": c.name, "arguments": c.parsed_arguments()}} for c in script.tool_calls
    ]


_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _go_json(line: str) -> str:
    """JSON text as Go's ``json.Marshal`` writes it (Ollama's server): ``<``,
    ``>``, ``&``, U+2028 and U+2029 escaped. Only strings hold those
    characters, so escaping the whole text is exact."""
    return line.translate(_GO_ESCAPES)


def _ollama_stream(script: Script, model: str, op: str, rng: random.Random) -> list[str]:
    return [_go_json(line) for line in _ollama_lines(script, model, op, rng)]


def _ollama_lines(script: Script, model: str, op: str, rng: random.Random) -> list[str]:
    head = {"model": model, "created_at": _CREATED_AT}
    if op == "generate":
        line = _template(dict(head, response=_HOLE, done=False))
        content = [line(_dumps(p)) + "\n" for p in _pieces(script)]
        final = dict(head, response="", **_ollama_final(script))
    else:
        thinking = _template(dict(head, message={"role": "assistant", "content": "", "thinking": _HOLE},
                                  done=False))
        content = [
            thinking(_dumps(p)) + "\n"
            for block in script.reasoning if block.redacted is None
            for p in block.pieces() if p
        ]
        line = _template(dict(head, message={"role": "assistant", "content": _HOLE}, done=False))
        content += [line(_dumps(p)) + "\n" for p in _pieces(script)]
        if script.tool_calls:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "",
                "tool_calls": _ollama_tool_calls(script),
            }
            content.append(_dumps(dict(head, message=message, done=False)) + "\n")
        final = dict(head, message={"role": "assistant", "content": ""}, **_ollama_final(script))
    err = script.error or StreamError()
    return _assemble(
        _Frames(
            head=[],
            content=content,
            tail=[],
            marker=[_dumps(final) + "\n"],
            error=_dumps({"error": err.message}) + "\n",
        ),
        script,
        rng,
    )


def _ollama_response(script: Script, model: str, op: str) -> str:
    head: dict[str, Any] = {"model": model, "created_at": _CREATED_AT}
    if op == "generate":
        return _go_json(_dumps(dict(head, response=script.full_text(), **_ollama_final(script))))
    message: dict[str, Any] = {"role": "assistant", "content": script.full_text()}
    if script.tool_calls:
        message["tool_calls"] = _ollama_tool_calls(script)
    return _go_json(_dumps(dict(head, message=message, **_ollama_final(script))))


# --- mistral --------------------------------------------------------------
#
# Mistral's chat completions stream (docs.mistral.ai, the shapes mistralai's
# CompletionChunk validates): OpenAI-style chunks without logprobs or usage
# nulls, tool calls whole (id, name and all arguments in one delta: the SDK
# requires name and arguments in each), usage on the chunk with the finish
# reason, then ``data: [DONE]``.


def _mistral_stream(script: Script, model: str, rng: random.Random) -> list[str]:
    base = {
        "id": rng.getrandbits(128).to_bytes(16, "big").hex(),
        "object": "chat.completion.chunk",
        "created": 1735689600 + rng.randrange(10**7),
        "model": model,
        "choices": _HOLE,
    }
    chunk = _template(base)

    def frame(delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + chunk(_dumps([{"index": 0, "delta": delta, "finish_reason": finish}])) + "\n\n"

    pieces = _pieces(script)
    head = [frame({"role": "assistant", "content": ""})]
    text_frame = _template({"index": 0, "delta": {"content": _HOLE}, "finish_reason": None})
    content = ["data: " + chunk("[" + text_frame(_dumps(p)) + "]") + "\n\n" for p in pieces]
    if script.tool_calls:
        calls = [
            {"id": c.id, "function": {"name": c.name, "arguments": c.arguments}, "index": i}
            for i, c in enumerate(script.tool_calls)
        ]
        content.append(frame({"content": "", "tool_calls": calls}))
    last = dict(base, choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": script.wire_finish("mistral")}])
    if script.usage is not None:
        prompt, completion = script.usage
        last["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion}
    err = script.error or StreamError()
    error = {"object": "error", "message": err.message, "type": err.type, "param": None, "code": err.code}
    return _assemble(
        _Frames(
            head=head,
            content=content,
            tail=["data: " + _dumps(last) + "\n\n"],
            marker=["data: [DONE]\n\n"],
            error="data: " + _dumps(error) + "\n\n",
        ),
        script,
        rng,
    )


# --- cohere ---------------------------------------------------------------
#
# Cohere's v2 chat stream (docs.cohere.com/v2/docs/streaming; the shapes of
# cohere-python's V2ChatStreamResponse): named SSE events, one content block
# of text, tool calls as start / argument deltas / end, and ``message-end``
# carrying the finish reason and usage. No pings, no ``[DONE]``.

#: Tokens Cohere counts on top of the billed input (its system preamble):
#: ``usage.tokens.input_tokens`` differs from ``usage.billed_units.input_tokens``.
COHERE_PREAMBLE_TOKENS = 184


def _cohere_event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {_dumps({'type': name, **data})}\n\n"


def _cohere_usage(script: Script) -> dict[str, Any]:
    prompt, completion = script.usage or (0, 0)
    return {
        "billed_units": {"input_tokens": prompt, "output_tokens": completion},
        "tokens": {"input_tokens": prompt + COHERE_PREAMBLE_TOKENS, "output_tokens": completion},
    }


def _cohere_stream(script: Script, rng: random.Random) -> list[str]:
    message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    head = [_cohere_event("message-start", {"id": message_id, "delta": {"message": start}})]
    content: list[str] = []
    pieces = _pieces(script)
    if pieces:
        content.append(
            _cohere_event("content-start", {"index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}})
        )
        delta = _template({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": _HOLE}}}})
        content += [f"event: content-delta\ndata: {delta(_dumps(p))}\n\n" for p in pieces]
        content.append(_cohere_event("content-end", {"index": 0}))
    if script.tool_calls:
        plan = "I will call " + ", ".join(c.name for c in script.tool_calls) + "."
        content += [
            _cohere_event("tool-plan-delta", {"delta": {"message": {"tool_plan": piece}}})
            for piece in _fragments(plan, rng, 12)
        ]
    for index, call in enumerate(script.tool_calls):
        first = {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        content.append(_cohere_event("tool-call-start", {"index": index, "delta": {"message": {"tool_calls": first}}}))
        for piece in _fragments(call.arguments, rng):
            args = {"function": {"arguments": piece}}
            content.append(_cohere_event("tool-call-delta", {"index": index, "delta": {"message": {"tool_calls": args}}}))
        content.append(_cohere_event("tool-call-end", {"index": index}))
    end = {"finish_reason": script.wire_finish("cohere"), "usage": _cohere_usage(script)}
    err = script.error or StreamError()
    failed = {"finish_reason": "ERROR", "usage": _cohere_usage(script), "error": err.message}
    return _assemble(
        _Frames(
            head=head,
            content=content,
            tail=[],
            marker=[_cohere_event("message-end", {"id": message_id, "delta": end})],
            error=_cohere_event("message-end", {"id": message_id, "delta": failed}),
        ),
        script,
        rng,
    )


def _cohere_message(script: Script, rng: random.Random) -> str:
    message: dict[str, Any] = {"role": "assistant"}
    if script.full_text():
        message["content"] = [{"type": "text", "text": script.full_text()}]
    if script.tool_calls:
        message["tool_plan"] = "I will call " + ", ".join(c.name for c in script.tool_calls) + "."
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in script.tool_calls
        ]
    return _dumps(
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "message": message,
            "finish_reason": script.wire_finish("cohere"),
            "usage": _cohere_usage(script),
        }
    )


# --- vertex ---------------------------------------------------------------
# Gemini on Vertex AI: the same chunks and SSE framing as Gemini, under
# /v1/projects/P/locations/L/publishers/google/models/M:method.

_VERTEX_PATH = re.compile(r"/projects/[^/]+/locations/[^/]+/publishers/google/models/([^/:]+):([A-Za-z]+)$")


def _vertex_route(rest: str) -> Route | None:
    match = _VERTEX_PATH.search(rest)
    if match is None:
        return None
    model, method = match.groups()
    if method in ("streamGenerateContent", "generateContent"):
        return Route("gemini", "chat", model, method)
    return None


# --- bedrock --------------------------------------------------------------
# Bedrock Runtime ConverseStream: application/vnd.amazon.eventstream, one
# binary message per event (headers :event-type, :content-type,
# :message-type, as AWS orders them), each JSON payload padded with a "p"
# field as the real service pads it; modelled errors are exception messages.

_BEDROCK_PATH = re.compile(r"/model/([^/]+)/(converse-stream|converse)$")
_EVENTSTREAM = "application/vnd.amazon.eventstream"
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: StreamError.type (Anthropic's names by default) -> Bedrock exception type
_BEDROCK_EXCEPTIONS = {
    "overloaded_error": "serviceUnavailableException",
    "rate_limit_error": "throttlingException",
    "api_error": "internalServerException",
    "invalid_request_error": "validationException",
}
_BEDROCK_ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def _bedrock_route(rest: str) -> Route | None:
    match = _BEDROCK_PATH.search(rest)
    if match is None:
        return None
    return Route("bedrock", "chat", unquote(match.group(1)), match.group(2))


def eventstream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message with string headers (type 7) and both CRCs."""
    head = b"".join(
        bytes([len(k.encode())]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack(">II", 16 + len(head) + len(payload), len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _bedrock_event(name: str, data: dict[str, Any], rng: random.Random) -> bytes:
    payload = _dumps({**data, "p": _PAD[: rng.randint(1, len(_PAD))]}).encode("utf-8")
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return eventstream_message(headers, payload)


def _bedrock_rendered(script: Script, model: str, rng: random.Random) -> Rendered:
    frames = [_bedrock_event("messageStart", {"role": "assistant"}, rng)]
    content: list[bytes] = []
    index = 0
    for block in script.reasoning:  # reasoningContent deltas, then the signature (no start either)
        deltas: list[dict[str, Any]] = (
            [{"redactedContent": base64.b64encode(block.redacted.encode()).decode()}]
            if block.redacted is not None
            else [{"text": p} for p in block.pieces() if p] + [{"signature": block.signature or ""}]
        )
        content += [
            _bedrock_event("contentBlockDelta", {"delta": {"reasoningContent": d}, "contentBlockIndex": index}, rng)
            for d in deltas
        ]
        content.append(_bedrock_event("contentBlockStop", {"contentBlockIndex": index}, rng))
        index += 1
    pieces = _pieces(script)
    if pieces:  # a text block has no contentBlockStart on Bedrock
        content += [
            _bedrock_event("contentBlockDelta", {"delta": {"text": p}, "contentBlockIndex": index}, rng)
            for p in pieces
        ]
        content.append(_bedrock_event("contentBlockStop", {"contentBlockIndex": index}, rng))
        index += 1
    for call in script.tool_calls:
        start = {"toolUse": {"toolUseId": call.id, "name": call.name}}
        content.append(_bedrock_event("contentBlockStart", {"start": start, "contentBlockIndex": index}, rng))
        for piece in _fragments(call.arguments, rng):
            delta = {"toolUse": {"input": piece}}
            content.append(_bedrock_event("contentBlockDelta", {"delta": delta, "contentBlockIndex": index}, rng))
        content.append(_bedrock_event("contentBlockStop", {"contentBlockIndex": index}, rng))
        index += 1
    if script.error is not None:
        if script.error.after is not None:
            del content[script.error.after :]
        kind = _BEDROCK_EXCEPTIONS.get(script.error.type, script.error.type)
        headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
        frames += content
        frames.append(eventstream_message(headers, _dumps({"message": script.error.message}).encode("utf-8")))
    else:
        frames += content
        frames.append(_bedrock_event("messageStop", {"stopReason": script.wire_finish("bedrock")}, rng))
        if script.end_marker:
            prompt, completion = script.usage or (0, 0)
            usage = {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}
            metrics = {"latencyMs": rng.randint(100, 5000)}
            frames.append(_bedrock_event("metadata", {"usage": usage, "metrics": metrics}, rng))
    ends = tuple(itertools.accumulate(len(frame) for frame in frames))
    request_id = (("x-amzn-requestid", _uuid(rng)),)
    return Rendered(script.status, _EVENTSTREAM, b"".join(frames), True, headers=request_id, frames=ends)


def _uuid(rng: random.Random) -> str:
    """A reproducible UUID-shaped request id."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _bedrock_error(status: int, message: str, error: StreamError | None) -> Rendered:
    """A Bedrock error answer: ``{"message"}`` and the type in ``x-amzn-ErrorType``."""
    kind = _BEDROCK_ERRORS.get(status, "InternalServerException")
    if error is not None and error.type not in _BEDROCK_EXCEPTIONS:
        kind = error.type
    headers = (("x-amzn-ErrorType", f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),)
    return Rendered(status, _JSON, _dumps({"message": message}).encode("utf-8"), False, headers=headers)


# --- dispatch -------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def render_script(
    route: Route,
    script: Script,
    model: str,
    stream: bool,
    include_usage: bool,
    sse: bool,
    seed: int,
) -> Rendered:
    """Render a chat or generate answer; cached, since scripts are values.

    ``seed`` drives the random splits (string text, tool arguments, pings)
    and the ids, so the same arguments give the same bytes.
    """
    rng = random.Random(f"modelwire.testing.render:{seed}")
    fmt = route.fmt
    if script.status >= 400:
        return error_body(fmt, script.status, script.error)
    if fmt == "bedrock":
        return _bedrock_rendered(script, model, rng)
    body: str | list[str]
    content_type = _JSON
    if fmt == "openai":
        if stream:
            body, content_type = _openai_stream(script, model, include_usage, rng), _SSE
        else:
            body = _openai_message(script, model, rng)
    elif fmt == "anthropic":
        if stream:
            body, content_type = _anthropic_stream(script, model, rng), _SSE
        else:
            body = _anthropic_message(script, model, rng)
    elif fmt == "mistral" and stream:
        body, content_type = _mistral_stream(script, model, rng), _SSE
    elif fmt == "mistral":
        body = _openai_message(script, model, rng)
    elif fmt == "cohere":
        if stream:
            body, content_type = _cohere_stream(script, rng), _SSE
        else:
            body = _cohere_message(script, rng)
    elif fmt == "gemini":
        if stream:
            body = _gemini_stream(script, model, rng, sse)
            content_type = "text/event-stream" if sse else _JSON
        else:
            body = _gemini_response(script, model, rng)
    else:
        if stream:
            body, content_type = _ollama_stream(script, model, route.op, rng), _NDJSON
        else:
            body = _ollama_response(script, model, route.op)
            content_type = "application/json; charset=utf-8"
    if isinstance(body, str):
        return Rendered(script.status, content_type, body.encode("utf-8"), stream)
    encoded = [frame.encode("utf-8") for frame in body]
    ends = tuple(itertools.accumulate(len(frame) for frame in encoded))
    return Rendered(script.status, content_type, b"".join(encoded), stream, frames=ends)


# --- errors ---------------------------------------------------------------

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(fmt: str | None, status: int, error: StreamError | None = None) -> Rendered:
    """An HTTP error answer in the shape format ``fmt`` uses.

    ``error`` supplies type and message; otherwise they follow the status
    (``rate_limit_error`` / ``RESOURCE_EXHAUSTED`` for 429, ...).
    """
    message = (
        error.message if error is not None else f"scripted HTTP {status} from modelwire.testing"
    )
    if fmt == "bedrock":
        return _bedrock_error(status, message, error)
    body: dict[str, Any]
    if fmt == "gemini":
        kind = error.type if error is not None else _GOOGLE_STATUS.get(status, "UNKNOWN")
        body = {"error": {"code": status, "message": message, "status": kind}}
    elif fmt == "ollama":
        body = {"error": message}
    elif fmt == "cohere":
        body = {"id": "00000000-0000-4000-8000-000000000000", "message": message}
    else:
        kind = error.type if error is not None else _ERROR_TYPES.get(status, "api_error")
        if fmt == "anthropic":
            body = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return Rendered(status, _JSON, _dumps(body).encode("utf-8"), False)


# --- embeddings -----------------------------------------------------------


def fake_embedding(text: str, dimensions: int = 8) -> list[float]:
    """A deterministic vector for ``text``: float32-exact values in [-1, 1).

    Derived from SHA-256, so equal texts get equal vectors in any process,
    and exact in float32 so OpenAI's base64 encoding round-trips them.
    """
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for (n,) in struct.iter_unpack("<I", digest):
            values.append(struct.unpack("<f", struct.pack("<f", n / 2**31 - 1.0))[0])
        counter += 1
    return values[:dimensions]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else _dumps(value)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def render_embedding(route: Route, request: Any, model: str, status: int) -> Rendered:
    """Embeddings for every input text in the request, in the route's format."""
    req = request if isinstance(request, dict) else {}
    if route.fmt == "openai":
        inputs = req.get("input", "")
        texts = [inputs] if isinstance(inputs, str) or not isinstance(inputs, list) else inputs
        if texts and all(isinstance(t, int) for t in texts):
            texts = [texts]  # one token array
        dims = int(req.get("dimensions") or 8)
        as_b64 = req.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = fake_embedding(_as_text(text), dims)
            value: Any = (
                base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_b64 else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        used = sum(_tokens(_as_text(t)) for t in texts)
        body: dict[str, Any] = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": used, "total_tokens": used},
        }
    elif route.fmt == "gemini":
        if route.method == "batchEmbedContents":
            requests = req.get("requests") or []
            body = {
                "embeddings": [
                    {
                        "values": fake_embedding(
                            _gemini_text(r), int(r.get("outputDimensionality") or 8)
                        )
                    }
                    for r in requests
                    if isinstance(r, dict)
                ]
            }
        else:
            dims = int(req.get("outputDimensionality") or 8)
            body = {"embedding": {"values": fake_embedding(_gemini_text(req), dims)}}
    else:
        dims = int(req.get("dimensions") or 8)
        if route.method == "embeddings":  # the legacy single-prompt endpoint
            body = {"embedding": fake_embedding(_as_text(req.get("prompt", "")), dims)}
        else:
            inputs = req.get("input", "")
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            body = {
                "model": model,
                "embeddings": [fake_embedding(_as_text(t), dims) for t in texts],
                "total_duration": 1_000_000,
                "load_duration": 100_000,
                "prompt_eval_count": sum(_tokens(_as_text(t)) for t in texts),
            }
    return Rendered(status, _JSON, _dumps(body).encode("utf-8"), False)


def _gemini_text(request: dict[str, Any]) -> str:
    content = request.get("content") or {}
    parts = (content.get("parts") or []) if isinstance(content, dict) else []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
