"""The exchange: one response's bytes in, unified events out. Sans-IO (as h11).

An :class:`Exchange` owns one parser (a plugin: bytes -> frames), the event
mapper (manifest rules: frame -> events), the end-marker check and the usage
tally. It never touches a socket: the transport feeds it chunks as they
arrive and calls :meth:`Exchange.close` at EOF, so tests and benchmarks drive
it with plain bytes, split anywhere.
"""

from __future__ import annotations

from typing import Any

from .._errors import LimitExceededError, ModelError, NetworkError
from .._events import Done, Event, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from .._frames import Parser
from .mapping import EventMapper, Rule

__all__ = ["Exchange", "Tally"]


class Tally:
    """What one exchange's events add up to: usage reported so far (last value
    wins per field) and the produced text, to estimate usage when none came.

    Produced text is kept only while no usage was reported: once a provider
    reports usage the estimate is not needed, so memory stays flat on a long
    stream whose caller discards events.
    """

    __slots__ = ("cache_write", "cache_write_1h", "cached", "input_tokens", "output_tokens", "produced", "reasoning")

    def __init__(self) -> None:
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cached: int | None = None
        self.cache_write: int | None = None
        self.cache_write_1h: int | None = None
        self.reasoning: int | None = None
        self.produced: list[str] = []  # text, reasoning and tool arguments

    @property
    def reported(self) -> bool:
        """The provider reported some usage."""
        return self.input_tokens is not None or self.output_tokens is not None

    def take(self, events: list[Event]) -> list[Event]:
        """The events to pass on: Usage is merged here (sent once, at the end), Done dropped."""
        out: list[Event] = []
        keep = None if self.reported else self.produced  # what to count the output from, until usage came
        for ev in events:
            kind = type(ev)
            if kind is TextDelta:
                if keep is not None:
                    keep.append(ev.text)  # type: ignore[attr-defined]
            elif kind is Usage:
                assert isinstance(ev, Usage)
                if ev.input_tokens is not None:
                    self.input_tokens = ev.input_tokens
                if ev.output_tokens is not None:
                    self.output_tokens = ev.output_tokens
                if ev.cached_input_tokens is not None:
                    self.cached = ev.cached_input_tokens
                if ev.cache_write_tokens is not None:
                    self.cache_write = ev.cache_write_tokens
                if ev.cache_write_1h_tokens is not None:
                    self.cache_write_1h = ev.cache_write_1h_tokens
                if ev.reasoning_tokens is not None:
                    self.reasoning = ev.reasoning_tokens
                if self.reported:
                    self.produced.clear()
                    keep = None
                continue
            elif kind is ToolCallDelta:
                assert isinstance(ev, ToolCallDelta)
                if ev.arguments and keep is not None:
                    keep.append(ev.arguments)
            elif kind is ReasoningDelta:
                if keep is not None:
                    keep.append(ev.text)  # type: ignore[attr-defined]
            elif kind is Done:
                continue
            out.append(ev)
        return out


class Exchange:
    """Bytes of one response in, unified events out; :attr:`stopped` once the end marker came."""

    __slots__ = (
        "content_type", "context", "emitted", "error", "mapper", "max_bytes", "max_events", "parser", "received",
        "tally",
    )

    def __init__(
        self,
        parser: Parser,
        rules: list[Rule],
        context: dict[str, Any],
        *,
        max_bytes: int | None = None,
        max_events: int | None = None,
        content_type: str = "",
    ) -> None:
        self.parser = parser
        self.mapper = EventMapper(rules, context)
        self.tally = Tally()
        self.context = context
        #: bounds of this response (the provider's ``budget:``); None: unbounded
        self.max_bytes = max_bytes
        self.max_events = max_events
        #: bytes fed and events produced so far
        self.received = 0
        self.emitted = 0
        #: the response's Content-Type, named when the stream ends early
        self.content_type = content_type
        #: a failure met in the middle of a chunk, raised by :meth:`raise_error`
        #: once the events before it were passed on (text before an in-stream
        #: error still reaches the caller, as it would have byte by byte)
        self.error: ModelError | None = None

    def raise_error(self) -> None:
        """Raise the failure :meth:`feed` or :meth:`close` met, if any (call after passing their events on)."""
        if self.error is not None:
            raise self.error

    @property
    def stopped(self) -> bool:
        """The end marker came: later bytes mean nothing (read them only to free the connection)."""
        return self.mapper.stopped

    def feed(self, data: bytes) -> list[Event]:
        """Events for a chunk of the body (Usage is held back in :attr:`tally`; Done is dropped).

        A parse or in-stream error inside the chunk ends the list early and is
        kept in :attr:`error`: pass the events on, then call :meth:`raise_error`.
        """
        self.received += len(data)
        if self.max_bytes is not None and self.received > self.max_bytes:
            raise LimitExceededError(
                f"the response passed its budget of {self.max_bytes} bytes; stopped reading",
                code="STREAM_TOO_LARGE", **self.context,
            )
        out: list[Event] = []
        mapper, take = self.mapper, self.tally.take
        try:
            for frame in self.parser.feed(data):
                out.extend(take(mapper.feed(frame)))
                if mapper.stopped:
                    break
        except ModelError as exc:
            self.error = exc
            return out
        self.emitted += len(out)
        if self.max_events is not None and self.emitted > self.max_events:
            self.error = LimitExceededError(
                f"the response passed its budget of {self.max_events} events; stopped reading",
                code="STREAM_TOO_LARGE", **self.context,
            )
        return out

    def close(self) -> list[Event]:
        """EOF: the parser's last frames; a stream that needs an end marker and lacks it is truncated."""
        out: list[Event] = []
        mapper = self.mapper
        if not mapper.stopped:
            try:
                for frame in self.parser.close():
                    out.extend(self.tally.take(mapper.feed(frame)))
                    if mapper.stopped:
                        break
            except ModelError as exc:
                self.error = exc
                return out
            # A body parsed only at EOF (one JSON document) counts against the budget too.
            self.emitted += len(out)
            if self.max_events is not None and self.emitted > self.max_events:
                self.error = LimitExceededError(
                    f"the response passed its budget of {self.max_events} events; stopped reading",
                    code="STREAM_TOO_LARGE", **self.context,
                )
        if mapper.has_end_marker and not mapper.stopped:
            what = "an empty body" if self.received == 0 else f"{self.received} bytes"
            if self.content_type:
                what += f" of {self.content_type.split(';')[0].strip()}"
            raise NetworkError(
                f"the stream ended before its end marker (after {what}); the answer is incomplete",
                code="STREAM_TRUNCATED", **self.context,
            )
        return out
