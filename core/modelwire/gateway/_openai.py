"""The OpenAI wire format: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models`` and errors.

Requests are parsed into a :class:`Call`; the runtime's unified events are
written back as ``chat.completion.chunk`` SSE events (or one
``chat.completion`` body), so the official ``openai`` SDK reads them
whatever provider served the model.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Any

from .._events import Finish, TextDelta, ToolCallDelta, Usage
from ._call import BodyError, Call, Outcome, need, open_body, positive_int, stop_list

__all__ = [
    "ChatStream",
    "chat_body",
    "embeddings_body",
    "error_body",
    "models_body",
    "parse_chat",
    "parse_embeddings",
]

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_FINISH = ("stop", "length", "tool_calls", "content_filter", "function_call")
#: accepted and not forwarded: they do not change the answer's content
_IGNORED = {"user", "metadata", "store", "parallel_tool_calls", "service_tier", "logprobs", "n"}
_KNOWN = {
    "model", "messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens", "temperature",
    "stop", "stream", "stream_options", "response_format", *_IGNORED,
}
_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error",
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _content(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise BodyError(where, "expected a string or a list of content parts")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(value):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise BodyError(at, "expected an object")
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise BodyError(f"{at}.image_url.url", "expected a string")
            parts.append({"type": "image_url", "url": url})
        else:
            raise BodyError(f"{at}.type", f"unsupported content part {str(kind)[:40]!r}; supported: text, image_url")
    return parts


def parse_chat(body: Any) -> Call:
    """A ``/v1/chat/completions`` body -> :class:`Call`; :class:`BodyError` names the bad field."""
    model, raw = open_body(body, _KNOWN)
    if not raw:
        raise BodyError("messages", "give at least one message")
    messages: list[dict[str, Any]] = []
    for i, msg in enumerate(raw):
        at = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise BodyError(at, "expected an object")
        role = _ROLES.get(msg.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise BodyError(f"{at}.role", "expected system, developer, user, assistant or tool")
        item: dict[str, Any] = {"role": role, "content": _content(msg.get("content"), f"{at}.content")}
        if role == "tool":
            if not isinstance(msg.get("tool_call_id"), str):
                raise BodyError(f"{at}.tool_call_id", "a tool message needs the id of its call")
            item["tool_call_id"] = msg["tool_call_id"]
            if isinstance(item["content"], list):
                item["content"] = "".join(p.get("text", "") for p in item["content"])
        calls = msg.get("tool_calls")
        if calls is not None:
            if role != "assistant" or not isinstance(calls, list):
                raise BodyError(f"{at}.tool_calls", "expected a list, on an assistant message")
            flat = []
            for j, call in enumerate(calls):
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise BodyError(f"{at}.tool_calls[{j}].function", "expected {name, arguments}")
                flat.append({"id": call.get("id"), "name": fn["name"], "arguments": fn.get("arguments") or ""})
            item["tool_calls"] = flat
        if isinstance(msg.get("name"), str):
            item["name"] = msg["name"]
        messages.append(item)
    tools = need(body, "tools", list, "a list of tools")
    if tools is not None:
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise BodyError(f"tools[{i}].function", "expected {name, description?, parameters?}")
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        fn = choice.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BodyError("tool_choice.function.name", "expected a string")
        choice = {"name": fn["name"]}
    elif choice is not None and choice not in ("auto", "none", "required"):
        raise BodyError("tool_choice", "expected auto, none, required or {type: function, function: {name}}")
    temperature = need(body, "temperature", (int, float), "a number")
    stream = need(body, "stream", bool, "true or false") or False
    options = need(body, "stream_options", dict, "an object") or {}
    if body.get("n") not in (None, 1):
        raise BodyError("n", "only n=1 is supported")
    return Call(
        model=model, messages=messages, tools=tools or None, tool_choice=choice,
        max_tokens=positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens"),
        temperature=float(temperature) if temperature is not None else None,
        stop=stop_list(body, "stop"), stream=stream, include_usage=bool(options.get("include_usage")),
        response_format=_response_format(body),
    )


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` as the runtime's (the runtime checks the schema itself).

    ``text`` asks for nothing; ``json_schema`` passes through; ``json_object``
    (any JSON object) becomes the schema ``{"type": "object"}``, so every
    provider gets its own structured-output form.
    """
    value = need(body, "response_format", dict, "an object")
    kind = value.get("type") if value is not None else None
    if value is None or kind == "text":
        return None
    if kind == "json_object":
        return {"schema": {"type": "object"}}
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise BodyError("response_format.json_schema.schema", "expected a JSON Schema object")
        return dict(value)
    raise BodyError("response_format.type", "expected text, json_object or json_schema")


def finish_reason(reason: str | None, had_tools: bool) -> str:
    """OpenAI's name for why the answer ended (``tool_calls`` whenever calls were made and it just stopped)."""
    if had_tools and reason in (None, "stop"):
        return "tool_calls"
    if reason in _FINISH:
        return reason  # type: ignore[return-value]
    return "tool_calls" if had_tools else "stop"


def _usage(input_tokens: int | None, output_tokens: int | None) -> dict[str, int]:
    i, o = input_tokens or 0, output_tokens or 0
    return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}


class ChatStream:
    """Writes unified events as ``chat.completion.chunk`` server-sent events."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.had_tools = False
        self._tool_ids: dict[int, str] = {}
        self._head = b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,' % (
            self.id.encode(), self.created, _dumps(model),
        )

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._head + b'"choices":[' + _dumps(choice) + b"]}\n\n"

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def event(self, ev: Any) -> bytes | None:
        kind = type(ev)
        if kind is TextDelta:
            return self._chunk({"content": ev.text})
        if kind is ToolCallDelta:
            self.had_tools = True
            call: dict[str, Any] = {"index": ev.index}
            if ev.index not in self._tool_ids:  # the first delta of a call carries its id
                call["id"] = self._tool_ids[ev.index] = ev.id or "call_" + uuid.uuid4().hex[:24]
                call["type"] = "function"
            fn: dict[str, Any] = {}
            if ev.name is not None:
                fn["name"] = ev.name
            fn["arguments"] = ev.arguments or ""
            call["function"] = fn
            return self._chunk({"tool_calls": [call]})
        if kind is Finish:
            return self._chunk({}, finish_reason(ev.reason, self.had_tools))
        if kind is Usage and self.include_usage:
            return self._head + b'"choices":[],"usage":' + _dumps(_usage(ev.input_tokens, ev.output_tokens)) + b"}\n\n"
        return None

    def done(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, status: int, code: str, message: str) -> bytes:
        """An in-stream error: the openai SDK raises ``APIError`` on a data event with ``error``."""
        return b"data: " + _dumps(error_body(status, code, message)) + b"\n\n"


def chat_body(out: Outcome, calls: list[Any]) -> bytes:
    """The whole ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(out.text) if out.text or not calls else None}
    if calls:
        message["tool_calls"] = [
            {"id": c.id or "call_" + uuid.uuid4().hex[:24], "type": "function",
             "function": {"name": c.name or "", "arguments": c.arguments or ""}}
            for c in calls
        ]
    return _dumps({
        "id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
        "model": out.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(out.finish, bool(calls))}],
        "usage": _usage(out.input_tokens, out.output_tokens),
    })


def parse_embeddings(body: Any) -> tuple[str, list[str], bool]:
    """A ``/v1/embeddings`` body -> (model, texts, base64 wanted)."""
    if not isinstance(body, dict):
        raise BodyError(None, "the body must be a JSON object")
    model = need(body, "model", str, "a model name", required=True)
    raw = body.get("input")
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        texts = list(raw)
    else:
        raise BodyError("input", "expected a string or a non-empty list of strings (token arrays are not supported)")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise BodyError("encoding_format", "expected float or base64")
    if body.get("dimensions") is not None:
        raise BodyError("dimensions", "not supported by this gateway")
    return model, texts, fmt == "base64"


def embeddings_body(model: str, vectors: list[list[float]], as_base64: bool, tokens: int) -> bytes:
    data = []
    for i, vec in enumerate(vectors):
        value: Any = vec
        if as_base64:  # little-endian float32, as the OpenAI API sends it
            value = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return _dumps({"object": "list", "data": data, "model": model,
                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def models_body(names: list[str], created: int) -> bytes:
    return _dumps({"object": "list", "data": [
        {"id": n, "object": "model", "created": created, "owned_by": n.split("/")[0] if "/" in n else "modelwire"}
        for n in names
    ]})


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    if code == "BUDGET_EXCEEDED":
        kind = "insufficient_quota"
    return {"error": {"message": message, "type": kind, "param": param, "code": code.lower()}}
