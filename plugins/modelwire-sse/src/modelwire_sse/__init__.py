"""Server-sent events for modelwire: ``text/event-stream`` bytes in, frames out.

The parser follows the WHATWG HTML rules for parsing and interpreting an event
stream (https://html.spec.whatwg.org/multipage/server-sent-events.html):

* the stream is UTF-8; invalid bytes become U+FFFD and one leading BOM is
  stripped, even when it arrives split over several chunks;
* lines end in CRLF, LF or CR (a CRLF split across two chunks is one line end);
* a blank line dispatches the event: ``data`` lines joined with ``"\\n"``, type
  ``event`` or ``"message"``; a block without ``data`` dispatches nothing;
* ``id`` sets the last event id (persisting across events; ignored if it holds
  NULL; an empty value resets it to ``""``); ``retry`` sets the reconnection
  time when it is all ASCII digits; comments and unknown fields are ignored;
* an event not ended by a blank line when the stream ends is discarded.

Each dispatched event is ``Frame(data, event, id, retry)`` where ``id`` is the
last event id in effect (``None`` until the stream sets one) and ``retry`` the
last valid reconnection time in milliseconds (``None`` until set).

The parser is sans-IO and incremental: feed it bytes as they arrive, in any
chunking, and the frames are the same.
"""

from __future__ import annotations

import re
from typing import Any

import modelwire
from modelwire import Frame, ParseError

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_LINE_SIZE",
    "MEDIA_TYPES",
    "SSEParser",
    "register_parsers",
]

#: Content types this parser claims for auto-detection.
MEDIA_TYPES = ("text/event-stream",)

#: Longest line accepted, in bytes without its line end (16 MiB: base64 images
#: such as streamed partial image generations arrive as single data lines).
DEFAULT_MAX_LINE_SIZE = 16 * 1024 * 1024

#: Largest event data accepted, in bytes (the data lines joined with LF).
DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_EOL = re.compile(rb"\r\n?|\n")


def _size_option(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


class SSEParser:
    """An incremental ``text/event-stream`` parser (see the module docstring).

    ``max_line_size`` bounds one line (bytes, without its line end) and
    ``max_event_size`` the data of one event (bytes, data lines joined with
    LF); beyond either the parser raises :class:`modelwire.ParseError` naming
    the line and the byte offset where that line starts, instead of buffering
    without bound.

    Frames completed before bad input are returned first; the ParseError is
    then raised by the next call (``feed`` or ``close``), and by every call
    after it, so what a caller sees does not depend on the chunking.
    """

    __slots__ = (
        "_data",
        "_data_size",
        "_error",
        "_event",
        "_fed",
        "_head",
        "_id",
        "_line",
        "_max_event",
        "_max_line",
        "_retry",
        "_skip_lf",
        "_tail",
        "_tail_size",
    )

    def __init__(
        self,
        *,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        self._max_line = _size_option("max_line_size", max_line_size)
        self._max_event = _size_option("max_event_size", max_event_size)
        # Input side: bytes of the unfinished last line, and where it starts.
        self._tail: list[bytes] = []
        self._tail_size = 0
        self._head: bytes | None = b""  # stream start, until the BOM is decided
        self._skip_lf = False  # the last chunk ended in CR: drop a leading LF
        self._fed = 0  # bytes fed so far
        self._line = 1  # number of the unfinished line
        self._error: ParseError | None = None
        # Interpretation side: the event being built and the stream state.
        self._data: list[bytes] = []
        self._data_size = 0  # sum of len(value) + 1 over self._data
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last event id in effect (``Last-Event-ID`` for a reconnect)."""
        return self._id

    @property
    def retry(self) -> int | None:
        """The reconnection time in milliseconds, once the stream set one."""
        return self._retry

    def feed(self, data: bytes) -> list[Frame]:
        """Take the next bytes of the stream; return the events they completed."""
        if self._error is not None:
            raise self._error
        if not data:
            return []
        self._fed += len(data)
        if self._head is not None:
            data = self._head + data
            if len(data) < 3 and _BOM.startswith(data):
                self._head = data
                return []
            self._head = None
            if data.startswith(_BOM):
                data = data[3:]
                if not data:
                    return []
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == 10:
                data = data[1:]
                if not data:
                    return []
        raw = data
        if b"\r" in data:
            self._skip_lf = data[-1] == 13
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        tail = self._tail
        if b"\n" not in data:
            tail.append(data)
            self._tail_size += len(data)
            if self._tail_size > self._max_line:
                return self._fail(self._tail_error(), [])
            return []
        # Bytes of the old tail are the same raw and normalized: it holds no CR.
        old = self._tail_size
        if tail:
            tail.append(data)
            buf = b"".join(tail)
            tail.clear()
        else:
            buf = data
        lines = buf.split(b"\n")
        last = lines.pop()
        if last:
            tail.append(last)
        self._tail_size = len(last)
        long_line = -1
        if len(buf) > self._max_line:
            limit = self._max_line
            long_line = next((i for i, line in enumerate(lines) if len(line) > limit), -1)
            if long_line >= 0:
                del lines[long_line:]
        frames, big_event = self._interpret(lines)
        if big_event >= 0 or long_line >= 0:
            bad = big_event if big_event >= 0 else long_line
            what = "event data is longer than max_event_size" if big_event >= 0 else None
            return self._fail(self._line_error(bad, buf[:old] + raw, what), frames)
        self._line += len(lines)
        if self._tail_size > self._max_line:
            return self._fail(self._tail_error(), frames)
        return frames

    def close(self) -> list[Frame]:
        """End of stream: an event not ended by a blank line is discarded."""
        if self._error is not None:
            raise self._error
        return []

    # -- the hot loop ------------------------------------------------------
    def _interpret(self, lines: list[bytes]) -> tuple[list[Frame], int]:
        """Interpret complete lines; returns the frames and the index of a
        data line that made the event too big (or -1)."""
        frames: list[Frame] = []
        append = frames.append
        new = tuple.__new__
        data = self._data
        size = self._data_size
        limit = self._max_event + 1
        event = self._event
        last_id = self._id
        retry = self._retry
        for line in lines:
            if not line:
                if data:
                    # One data line is the common case: skip the join; build the
                    # named tuple with tuple.__new__ (no Python-level __new__ call).
                    raw = data[0] if len(data) == 1 else b"\n".join(data)
                    append(new(Frame, (raw.decode("utf-8", "replace"), event or "message", last_id, retry)))
                    data.clear()
                    size = 0
                event = ""
                continue
            if line[:6] == b"data: ":
                value = line[6:]
            elif line[:5] == b"data:":
                value = line[5:]
            elif line[:7] == b"event: ":  # the other common line: skip the generic split
                event = line[7:].decode("utf-8", "replace")
                continue
            else:
                colon = line.find(b":")
                if colon == 0:
                    continue  # comment
                if colon < 0:
                    name = line
                    value = b""
                else:
                    name = line[:colon]
                    value = line[colon + 1 :]
                    if value[:1] == b" ":
                        value = value[1:]
                if name == b"event":
                    event = value.decode("utf-8", "replace")
                    continue
                if name == b"id":
                    if b"\0" not in value:
                        last_id = value.decode("utf-8", "replace")
                    continue
                if name == b"retry":
                    if value.isdigit():  # bytes.isdigit: ASCII digits only
                        try:
                            retry = int(value.lstrip(b"0") or b"0")
                        except ValueError:  # beyond int's string-conversion limit
                            pass
                    continue
                if name != b"data":
                    continue  # unknown field
            size += len(value) + 1
            if size > limit:
                # The line is at least b"data" long, so split() made it a
                # distinct object: find its index by identity (off the hot path).
                return frames, next(i for i, x in enumerate(lines) if x is line)
            data.append(value)
        self._data = data
        self._data_size = size
        self._event = event
        self._id = last_id
        self._retry = retry
        return frames, -1

    # -- errors --------------------------------------------------------------
    def _fail(self, error: ParseError, frames: list[Frame]) -> list[Frame]:
        self._error = error
        if frames:
            return frames
        raise error

    def _tail_error(self) -> ParseError:
        return ParseError(
            f"SSE line is longer than max_line_size ({self._max_line} bytes)",
            code="SSE_LINE_TOO_LONG",
            offset=self._fed - self._tail_size,
            line=self._line,
        )

    def _line_error(self, index: int, raw: bytes, what: str | None) -> ParseError:
        # ``raw`` is the input that ends at the current end of the stream;
        # find where its line number ``index`` starts.
        start = 0
        if index:
            for n, match in enumerate(_EOL.finditer(raw), 1):
                if n == index:
                    start = match.end()
                    break
        if what is None:
            message = f"SSE line is longer than max_line_size ({self._max_line} bytes)"
            code = "SSE_LINE_TOO_LONG"
        else:
            message = f"SSE {what} ({self._max_event} bytes)"
            code = "SSE_EVENT_TOO_BIG"
        return ParseError(
            message,
            code=code,
            offset=self._fed - len(raw) + start,
            line=self._line + index,
        )


@modelwire.hookimpl
def register_parsers(register: Any) -> None:
    register("sse", SSEParser, media_types=list(MEDIA_TYPES))
