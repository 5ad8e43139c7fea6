"""Manifest rules compiled into the per-frame mapper (frames -> events) and the
error mapper (HTTP error responses -> typed errors). Pure: no I/O.

The mapper is the hot loop. Each rule is turned once into a few closures; a
frame's JSON is decoded at most once and only if some rule needs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jmespath.exceptions

from ._errors import ModelError, ParseError, error_class
from ._events import Done, Embedding, Event, Finish, TextDelta, ToolCallDelta, Usage
from ._expr import compile_expr, is_true
from ._frames import Frame
from ._manifest import ErrorRaise, ErrorRule, EventRule, Operator

__all__ = ["ErrorMapper", "EventMapper", "compile_rules"]

_UNSET: Any = object()
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner
_WS = " \t\n\r"
AUTO_INDEX = -1  # emit without `index`: each delta carrying an id or name starts a new call
Builder = Callable[[Any], "Event | None"]


def _opt(text: str | None) -> Callable[[Any], Any] | None:
    return None if text is None else compile_expr(text).fn


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return None


def _builder(emit: dict[str, Any]) -> Builder:
    """One closure per emit type; ``@`` fields skip the expression call."""
    kind = emit["type"]
    fields = {k: compile_expr(v).fn for k, v in emit.items() if k != "type" and isinstance(v, str)}
    texts = {k: v for k, v in emit.items() if k != "type"}
    get = fields.get

    if kind == "text":
        text = get("text")
        if text is None or texts.get("text") == "@":

            def text_at(value: Any) -> Event | None:
                return TextDelta(value) if type(value) is str and value else None

            return text_at

        def text_expr(value: Any) -> Event | None:
            t = text(value)  # type: ignore[misc]
            return TextDelta(t) if type(t) is str and t else None

        return text_expr

    if kind == "tool_call":
        idx, id_, name, args = get("index"), get("id"), get("name"), get("arguments")

        def tool_call(value: Any) -> Event | None:
            arguments = args(value) if args else None
            if arguments is not None and not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
            return ToolCallDelta(
                index=(_int_or_none(idx(value)) or 0) if idx else AUTO_INDEX,
                id=id_(value) if id_ else None,
                name=name(value) if name else None,
                arguments=arguments,
            )

        return tool_call

    if kind == "usage":
        inp, out, cached = get("input_tokens"), get("output_tokens"), get("cached_input_tokens")

        def usage(value: Any) -> Event | None:
            i = _int_or_none(inp(value)) if inp else None
            o = _int_or_none(out(value)) if out else None
            c = _int_or_none(cached(value)) if cached else None
            if i is None and o is None and c is None:
                return None
            return Usage(input_tokens=i, output_tokens=o, cached_input_tokens=c)

        return usage

    if kind == "finish":
        reason = get("reason")

        def finish(value: Any) -> Event | None:
            r = reason(value) if reason else value
            return Finish(str(r)) if r is not None and r != "" else None

        return finish

    if kind == "embedding":
        idx, vec = get("index"), get("vector")

        def embedding(value: Any) -> Event | None:
            vector = vec(value) if vec else value
            if not isinstance(vector, list):
                return None
            return Embedding(index=_int_or_none(idx(value)) or 0 if idx else 0, vector=vector)

        return embedding

    return lambda value: Done()  # "done"


class _Rule:
    __slots__ = ("builder", "data", "each", "error", "event", "needs_payload", "stop", "when")

    def __init__(self, rule: EventRule) -> None:
        self.event = rule.event
        self.data = rule.data
        self.when = _opt(rule.stop_when or rule.when)
        self.each = _opt(rule.each)
        self.builder = _builder(rule.emit) if rule.emit is not None else None
        self.error = rule.error
        self.stop = rule.stop or rule.stop_when is not None
        self.needs_payload = rule.data is None and not rule.raw and (
            self.when is not None or self.each is not None or self.builder is not None
            or self.error is not None
        )


def compile_rules(op: Operator) -> list[_Rule]:
    """Compile an operator's event rules once (at runtime construction)."""
    return [_Rule(r) for r in op.events]


def _raise_from(spec: ErrorRaise, payload: Any, context: dict[str, Any]) -> ModelError:
    code = compile_expr(spec.code)(payload) if spec.code else None
    message = compile_expr(spec.message)(payload) if spec.message else None
    kind = spec.kinds.get(str(code), spec.kind) if code is not None else spec.kind
    text = str(message) if message is not None else f"provider error in stream: {payload!r:.200}"
    return error_class(kind)(text, code=str(code) if code is not None else None, **context)


class EventMapper:
    """Feed frames, get unified events. ``stopped`` says the end marker came."""

    __slots__ = ("_calls", "context", "has_end_marker", "rules", "stopped")

    def __init__(self, rules: list[_Rule], context: dict[str, Any]) -> None:
        self.rules = rules
        self.context = context
        self.stopped = False
        self.has_end_marker = any(r.stop for r in rules)
        self._calls = -1

    def _auto(self, ev: ToolCallDelta) -> ToolCallDelta:
        if ev.id is not None or ev.name is not None or self._calls < 0:
            self._calls += 1
        return ToolCallDelta(self._calls, ev.id, ev.name, ev.arguments)

    def _decode(self, data: Any) -> Any:
        if type(data) is not str:
            return data
        try:
            value, end = _scan(data, 0)
            if end == len(data) or not data[end:].strip(_WS):
                return value
            return json.loads(data)  # trailing garbage: let json say where
        except StopIteration:
            pass  # leading whitespace or not JSON: json.loads decides
        except ValueError:
            pass
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ParseError(
                f"expected JSON in a stream frame, got {data[:80]!r}", code="FRAME_NOT_JSON",
                **self.context,
            ) from exc

    def feed(self, frame: Frame) -> list[Event]:
        if self.stopped:  # past the end marker nothing counts
            return []
        out: list[Event] = []
        data = frame.data
        payload = _UNSET
        try:
            for rule in self.rules:
                if rule.event is not None and frame.event != rule.event:
                    continue
                if rule.data is not None:
                    if data != rule.data:
                        continue
                    value = data
                elif rule.needs_payload:
                    if payload is _UNSET:
                        payload = self._decode(data)
                    value = payload
                else:
                    value = data
                if rule.when is not None and not is_true(rule.when(value)):
                    continue
                if rule.error is not None:
                    raise _raise_from(rule.error, value, self.context)
                builder = rule.builder
                if builder is not None:
                    if rule.each is not None:
                        items = rule.each(value)
                        if type(items) is list:
                            for item in items:
                                ev = builder(item)
                                if ev is not None:
                                    if type(ev) is ToolCallDelta and ev.index < 0:
                                        ev = self._auto(ev)
                                    out.append(ev)
                    else:
                        ev = builder(value)
                        if ev is not None:
                            if type(ev) is ToolCallDelta and ev.index < 0:
                                ev = self._auto(ev)
                            out.append(ev)
                if rule.stop:
                    self.stopped = True
                    break
        except jmespath.exceptions.JMESPathError as exc:
            raise ParseError(f"event rule failed on a frame: {exc}", code="RULE_FAILED", **self.context) from exc
        return out


def _status_matches(spec: int | list[int] | str | None, status: int) -> bool:
    if spec is None:
        return True
    if isinstance(spec, int):
        return status == spec
    if isinstance(spec, list):
        return status in spec
    return str(status)[0] == spec[0]


_DEFAULT_KINDS = {400: "invalid_request", 401: "auth", 403: "auth", 404: "not_found",
                  408: "timeout", 409: "invalid_request", 413: "limit_exceeded",
                  422: "invalid_request", 429: "rate_limit"}


class ErrorMapper:
    """HTTP error response -> typed error, by the operator's ``errors:`` rules,
    then by plain HTTP meaning (429 rate_limit, 5xx provider_down, ...)."""

    def __init__(self, rules: list[ErrorRule]) -> None:
        self.rules = [
            (r, _opt(r.when), _opt(r.code), _opt(r.message)) for r in rules
        ]

    def error(self, status: int, body: bytes, context: dict[str, Any], retry_after: float | None) -> ModelError:
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        text = body[:300].decode("utf-8", "replace").strip()
        for rule, when, code, message in self.rules:
            if not _status_matches(rule.status, status):
                continue
            try:
                if when is not None and not is_true(when(payload)):
                    continue
                c = code(payload) if code else None
                m = message(payload) if message else None
            except jmespath.exceptions.JMESPathError:
                continue
            return error_class(rule.kind)(
                str(m) if m is not None else f"HTTP {status}: {text}",
                code=str(c) if c is not None else f"HTTP_{status}",
                status=status, retry_after=retry_after, **context,
            )
        kind = _DEFAULT_KINDS.get(status) or ("provider_down" if status >= 500 else "invalid_request")
        return error_class(kind)(
            f"HTTP {status}: {text}" if text else f"HTTP {status}",
            code=f"HTTP_{status}", status=status, retry_after=retry_after, **context,
        )
