"""A parser plugin for tests: one frame per line, upper-cased.

It is small, but keeps the whole parser contract of modelwire (see
docs/plugins.md): incremental and sans-IO, output independent of chunking,
a size limit, and ``ParseError`` with the stream offset of the bad byte.
"""

from __future__ import annotations

from typing import Any

from modelwire import Frame, ParseError, hookimpl

__all__ = ["MEDIA_TYPE", "UpperLines", "register_parsers"]

MEDIA_TYPE = "text/x-upper-lines"

#: Longest line accepted, in bytes without its ``\n``.
DEFAULT_MAX_LINE = 1 << 20


class UpperLines:
    """Split on ``\\n``; each line becomes ``Frame(data=LINE.upper())``.

    Bytes are buffered until a newline, so output never depends on chunking;
    ``close()`` flushes a last line that has no newline. Frames completed
    before an error are returned first; the ParseError is raised by the next
    call and every call after it.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._buffer = b""
        self._offset = 0  # stream offset of self._buffer[0]
        self._max_line = max_line
        self._error: ParseError | None = None

    def _line(self, raw: bytes, offset: int) -> Frame:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(
                f"invalid UTF-8: {exc.reason}", offset=offset + exc.start, code="UPPER_LINES_UTF8"
            ) from None
        return Frame(data=text.upper())

    def _fail(self, error: ParseError, frames: list[Frame]) -> list[Frame]:
        self._error = error
        if frames:
            return frames
        raise error

    def feed(self, data: bytes) -> list[Frame]:
        if self._error is not None:
            raise self._error
        self._buffer += data
        frames: list[Frame] = []
        try:
            while (end := self._buffer.find(b"\n")) >= 0:
                if end > self._max_line:
                    break
                frames.append(self._line(self._buffer[:end], self._offset))
                self._buffer = self._buffer[end + 1 :]
                self._offset += end + 1
        except ParseError as exc:
            return self._fail(exc, frames)
        line = self._buffer.find(b"\n")
        if (line if line >= 0 else len(self._buffer)) > self._max_line:
            return self._fail(
                ParseError(
                    f"line longer than {self._max_line} bytes",
                    offset=self._offset,
                    code="UPPER_LINES_TOO_LONG",
                ),
                frames,
            )
        return frames

    def close(self) -> list[Frame]:
        if self._error is not None:
            raise self._error
        if not self._buffer:
            return []
        raw, self._buffer = self._buffer, b""
        try:
            frame = self._line(raw, self._offset)
        except ParseError as exc:
            self._error = exc
            raise
        self._offset += len(raw)
        return [frame]


@hookimpl
def register_parsers(register: Any) -> None:
    register("upper-lines", UpperLines, media_types=[MEDIA_TYPE])
