"""What a client asked for, whatever its wire format: one model call, and a bad-body error.

The format modules (:mod:`._openai`, :mod:`._anthropic`) parse a request
body into a :class:`Call` (the runtime's unified request) and write the
runtime's unified events back in their own format; this module holds what
they share.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["BodyError", "Call", "Outcome", "error_status", "need", "open_body", "positive_int", "stop_list"]


class BodyError(ValueError):
    """A bad request body; ``field`` is the path of the bad field (``messages[2].role``)."""

    def __init__(self, field: str | None, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.status = status


@attrs.frozen
class Call:
    """One model call in the runtime's terms (see ``Runtime.stream``)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: list[str] | None = None
    stream: bool = False
    include_usage: bool = False
    #: structured output, as ``Runtime.stream(response_format=...)`` takes it
    response_format: dict[str, Any] | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "messages": self.messages, "tools": self.tools, "tool_choice": self.tool_choice,
            "max_tokens": self.max_tokens, "temperature": self.temperature, "stop": self.stop,
            "response_format": self.response_format,
        }


@attrs.define
class Outcome:
    """What one request produced (for billing, metrics and the non-stream body)."""

    model: str
    text: list[str] = attrs.field(factory=list)
    #: tool-call arguments as they came (counted as output when usage must be estimated)
    tool_text: list[str] = attrs.field(factory=list)
    finish: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Any = None
    complete: bool = False


#: ModelError kind -> HTTP status the gateway answers with
_STATUS = {
    "invalid_request": 400,
    "not_found": 404,
    "rate_limit": 429,
    "limit_exceeded": 400,
    "auth": 502,  # the provider refused the gateway's key: not the client's fault
    "network": 502,
    "parse": 502,
    "provider_down": 503,
    "timeout": 504,
    "internal": 500,
}


def error_status(kind: str, code: str) -> int:
    """The HTTP status for an error of ``kind`` (a local rate or concurrency limit is a 429)."""
    if code in ("LOCAL_RATE_LIMIT", "LOCAL_CONCURRENCY", "TPM_TOO_SMALL"):
        return 429
    return _STATUS.get(kind, 500)



def open_body(body: Any, known: set[str]) -> tuple[str, list[Any]]:
    """The checks every request body starts with: an object, known fields only; its model and messages."""
    if not isinstance(body, dict):
        raise BodyError(None, "the body must be a JSON object")
    for name in body:
        if name not in known:
            raise BodyError(name, "not supported by this gateway")
    model = need(body, "model", str, "a model name", required=True)
    return model, need(body, "messages", list, "a list of messages", required=True)


def need(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str, *, required: bool = False) -> Any:
    """``body[name]`` checked against ``kind`` (``bool`` is never a number)."""
    if name not in body or body[name] is None:
        if required:
            raise BodyError(name, "required field is missing")
        return None
    value = body[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise BodyError(name, f"expected {what}")
    if not isinstance(value, kind):
        raise BodyError(name, f"expected {what}")
    return value


def positive_int(body: dict[str, Any], name: str) -> int | None:
    value = need(body, name, int, "a whole number")
    if value is not None and value < 1:
        raise BodyError(name, "must be at least 1")
    return value  # type: ignore[no-any-return]


def stop_list(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise BodyError(name, "expected a string or a list of strings")
