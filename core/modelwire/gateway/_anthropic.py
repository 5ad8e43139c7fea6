"""The Anthropic wire format: ``/v1/messages`` requests, SSE events, bodies and errors.

Content blocks map onto the unified messages: ``tool_use`` blocks become an
assistant's ``tool_calls``, ``tool_result`` blocks become ``tool`` messages,
base64 ``image`` blocks become ``image_url`` parts (data URLs). The answer is
written as ``message_start`` ... ``message_stop`` events, or one message
body, so the official ``anthropic`` SDK reads it whatever provider served it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .._events import Finish, TextDelta, ToolCallDelta, Usage
from ._call import BodyError, Call, Outcome, need, open_body, positive_int, stop_list

__all__ = ["MessageStream", "error_body", "message_body", "parse_messages"]

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_IGNORED = {"metadata", "service_tier", "top_k", "top_p", "thinking"}
_KNOWN = {"model", "messages", "system", "max_tokens", "tools", "tool_choice", "temperature",
          "stop_sequences", "stream", "output_config", *_IGNORED}
_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error",
    529: "overloaded_error",
}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _text_of(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        out = []
        for j, block in enumerate(value):
            if not (isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)):
                raise BodyError(f"{where}[{j}]", "expected a text block")
            out.append(block["text"])
        return "".join(out)
    raise BodyError(where, "expected a string or a list of text blocks")


def _blocks(msg: dict[str, Any], at: str) -> list[dict[str, Any]]:
    """One Anthropic message -> unified messages (tool results become tool messages)."""
    role = msg.get("role")
    if role not in ("user", "assistant"):
        raise BodyError(f"{at}.role", "expected user or assistant")
    content = msg.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise BodyError(f"{at}.content", "expected a string or a list of content blocks")
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        where = f"{at}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):  # type: ignore[union-attr]
            parts.append({"type": "text", "text": block["text"]})  # type: ignore[index]
        elif kind == "image":
            src = block.get("source") or {}  # type: ignore[union-attr]
            if src.get("type") == "base64" and isinstance(src.get("data"), str):
                parts.append({"type": "image_url", "url": f"data:{src.get('media_type', 'image/png')};base64,{src['data']}"})
            elif src.get("type") == "url" and isinstance(src.get("url"), str):
                parts.append({"type": "image_url", "url": src["url"]})
            else:
                raise BodyError(f"{where}.source", "expected a base64 or url image source")
        elif kind == "tool_use" and role == "assistant":
            if not isinstance(block.get("name"), str):  # type: ignore[union-attr]
                raise BodyError(f"{where}.name", "expected a string")
            calls.append({"id": block.get("id"), "name": block["name"],  # type: ignore[union-attr,index]
                          "arguments": _dumps(block.get("input") or {})})  # type: ignore[union-attr]
        elif kind == "tool_result" and role == "user":
            if not isinstance(block.get("tool_use_id"), str):  # type: ignore[union-attr]
                raise BodyError(f"{where}.tool_use_id", "expected a string")
            result = block.get("content", "")  # type: ignore[union-attr]
            out.append({"role": "tool", "tool_call_id": block["tool_use_id"],  # type: ignore[index]
                        "content": _text_of(result, f"{where}.content")})
        else:
            raise BodyError(f"{where}.type", f"unsupported content block {str(kind)[:40]!r} for role {role}")
    if parts or calls:
        text_only = all(p["type"] == "text" for p in parts)
        item: dict[str, Any] = {
            "role": role,
            "content": "".join(p["text"] for p in parts) if text_only else parts,
        }
        if calls:
            item["tool_calls"] = calls
        out.append(item)
    return out


def parse_messages(body: Any) -> Call:
    """A ``/v1/messages`` body -> :class:`Call`; :class:`BodyError` names the bad field."""
    model, raw = open_body(body, _KNOWN)
    messages: list[dict[str, Any]] = []
    if body.get("system") is not None:
        messages.append({"role": "system", "content": _text_of(body["system"], "system")})
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict):
            raise BodyError(f"messages[{i}]", "expected an object")
        messages.extend(_blocks(msg, f"messages[{i}]"))
    if not raw:
        raise BodyError("messages", "give at least one message")
    tools = need(body, "tools", list, "a list of tools")
    unified = None
    if tools:
        unified = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise BodyError(f"tools[{i}].name", "expected a string")
            unified.append({"name": tool["name"], "description": tool.get("description"),
                            "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}})
    choice: Any = None
    raw_choice = body.get("tool_choice")
    if raw_choice is not None:
        kind = raw_choice.get("type") if isinstance(raw_choice, dict) else None
        if kind == "auto":
            choice = "auto"
        elif kind == "any":
            choice = "required"
        elif kind == "none":
            choice = "none"
        elif kind == "tool" and isinstance(raw_choice.get("name"), str):  # type: ignore[union-attr]
            choice = {"name": raw_choice["name"]}  # type: ignore[index]
        else:
            raise BodyError("tool_choice", "expected {type: auto|any|none} or {type: tool, name}")
    temperature = need(body, "temperature", (int, float), "a number")
    return Call(
        model=model, messages=messages, tools=unified, tool_choice=choice,
        max_tokens=positive_int(body, "max_tokens"),
        temperature=float(temperature) if temperature is not None else None,
        stop=stop_list(body, "stop_sequences"), stream=need(body, "stream", bool, "true or false") or False,
        include_usage=True, response_format=_output_format(body),
    )


def _output_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """Anthropic's ``output_config.format`` (structured output) as the runtime's ``response_format``.

    Any provider behind the gateway then gets its own structured-output form
    (OpenAI's ``json_schema``, Gemini's ``responseJsonSchema``, ...).
    """
    config = need(body, "output_config", dict, "an object")
    if config is None:
        return None
    for name in config:
        if name != "format":
            raise BodyError(f"output_config.{str(name)[:40]}", "not supported by this gateway")
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise BodyError("output_config.format.type", "expected json_schema")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise BodyError("output_config.format.schema", "expected a JSON Schema object")
    return {"schema": schema}


def stop_reason(reason: str | None, had_tools: bool) -> str:
    """Anthropic's name for why the answer ended (``tool_use`` whenever calls were made and it just stopped)."""
    if had_tools and reason in (None, "stop"):
        return "tool_use"
    if reason in _STOP:
        return _STOP[reason]  # type: ignore[index]
    return "tool_use" if had_tools else "end_turn"


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {_dumps(data)}\n\n".encode()


class MessageStream:
    """Writes unified events as Anthropic ``message_*`` / ``content_block_*`` server-sent events."""

    def __init__(self, model: str) -> None:
        self.id = "msg_" + uuid.uuid4().hex[:24]
        self.model = model
        self.had_tools = False
        self._block = -1
        self._open: str | None = None  # "text" or the tool index
        self._tools: dict[int, int] = {}  # tool index -> block index
        self._reason: str | None = None

    def start(self) -> bytes:
        return _event("message_start", {"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0},
        }})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._block})

    def event(self, ev: Any) -> bytes | None:
        kind = type(ev)
        if kind is TextDelta:
            out = b""
            if self._open != "text":
                out = self._close()
                self._block += 1
                self._open = "text"
                out += _event("content_block_start", {"type": "content_block_start", "index": self._block,
                                                      "content_block": {"type": "text", "text": ""}})
            return out + _event("content_block_delta", {"type": "content_block_delta", "index": self._block,
                                                        "delta": {"type": "text_delta", "text": ev.text}})
        if kind is ToolCallDelta:
            self.had_tools = True
            out = b""
            tag = f"tool{ev.index}"
            if self._open != tag:
                out = self._close()
                self._block += 1
                self._open = tag
                out += _event("content_block_start", {"type": "content_block_start", "index": self._block,
                                                      "content_block": {"type": "tool_use",
                                                                        "id": ev.id or "toolu_" + uuid.uuid4().hex[:24],
                                                                        "name": ev.name or "", "input": {}}})
            if ev.arguments:
                out += _event("content_block_delta", {"type": "content_block_delta", "index": self._block,
                                                      "delta": {"type": "input_json_delta", "partial_json": ev.arguments}})
            return out or None
        if kind is Finish:
            self._reason = ev.reason
            return None
        if kind is Usage:
            return self._close() + _event("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(self._reason, self.had_tools), "stop_sequence": None},
                "usage": {"input_tokens": ev.input_tokens or 0, "output_tokens": ev.output_tokens or 0},
            })
        return None

    def done(self, usage_sent: bool) -> bytes:
        out = self._close()
        if not usage_sent:
            out += _event("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(self._reason, self.had_tools), "stop_sequence": None},
                "usage": {"output_tokens": 0},
            })
        return out + _event("message_stop", {"type": "message_stop"})

    def error(self, status: int, code: str, message: str) -> bytes:
        """An in-stream ``event: error``; the anthropic SDK raises on it."""
        return _event("error", error_body(status, code, message))


def message_body(out: Outcome, calls: list[Any]) -> bytes:
    content: list[dict[str, Any]] = []
    if out.text:
        content.append({"type": "text", "text": "".join(out.text)})
    for c in calls:
        try:
            args = json.loads(c.arguments) if c.arguments else {}
        except ValueError:
            args = {"_raw": c.arguments}
        content.append({"type": "tool_use", "id": c.id or "toolu_" + uuid.uuid4().hex[:24], "name": c.name or "", "input": args})
    return _dumps({
        "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant", "model": out.model,
        "content": content, "stop_reason": stop_reason(out.finish, bool(calls)), "stop_sequence": None,
        "usage": {"input_tokens": out.input_tokens or 0, "output_tokens": out.output_tokens or 0},
    }).encode()


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    if param:
        message = f"{param}: {message}"
    return {"type": "error", "error": {"type": kind, "message": message}}
