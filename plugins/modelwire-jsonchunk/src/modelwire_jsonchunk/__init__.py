"""JSON streams for modelwire: NDJSON / JSON Lines, and plain JSON bodies.

The stream is read as a sequence of JSON values separated by JSON whitespace
(space, tab, CR, LF), one frame per value: ``Frame(data=<decoded value>)``.

* NDJSON / JSON Lines: one value per line; LF or CRLF line ends; blank lines
  skipped; a last line without a line end is taken at ``close()``.
* A JSON document spanning several lines (a pretty-printed
  ``application/json`` body, or pretty-printed documents one after another)
  is accepted too. Only a line that does not hold complete JSON values costs
  extra: its text is kept, and parsed again (at line ends, with a doubling
  schedule, so the total work stays linear) until the document completes.
* Several values on one line (``{"a":1} {"b":2}``) give one frame each.

The stream must be UTF-8; one leading byte order mark is ignored. Errors are
:class:`modelwire.ParseError` with ``line`` (1-based) and ``offset`` (byte
offset in the stream): for invalid JSON, the start of the line where the bad
document starts; for invalid UTF-8, the bad byte. Every decision is taken at a
line end, from the content alone, so the frames (and any error) never depend
on how the bytes were chunked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import modelwire
from modelwire import Frame, ParseError

__all__ = [
    "DEFAULT_MAX_DOCUMENT_SIZE",
    "DEFAULT_MAX_LINE_SIZE",
    "MEDIA_TYPES",
    "JSONChunkParser",
    "register_parsers",
]

#: Content types this parser claims for auto-detection.
MEDIA_TYPES = ("application/x-ndjson", "application/jsonl", "application/json")

#: Longest line accepted, in bytes without its line end. Non-streaming JSON
#: bodies are often one line, so this is generous (16 MiB).
DEFAULT_MAX_LINE_SIZE = 16 * 1024 * 1024

#: Largest JSON document spanning several lines, in bytes from the start of
#: its first line through its last line.
DEFAULT_MAX_DOCUMENT_SIZE = 16 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_decoder = json.JSONDecoder()
# The C scanner behind json.loads, without json.loads' per-call overhead:
# ``scan_once(text, index) -> (value, end)``; StopIteration when no value starts there.
_scan_once: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]
_raw_decode = _decoder.raw_decode
_WS = re.compile(r"[ \t\r\n]*")
_JSON_WS = " \t\r"  # whitespace inside one line


def _skip_ws(text: str, index: int) -> int:
    """The index of the first non-whitespace character at or after ``index``."""
    match = _WS.match(text, index)
    assert match is not None  # a starred pattern always matches
    return match.end()


def _size_option(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


class _LineStarts:
    """Absolute byte offsets of the line starts in one batch of complete lines.

    Walks forward only (lookups come in increasing order), so a batch costs
    O(bytes) however many lookups it takes; used off the hot path only.
    """

    __slots__ = ("_base", "_buf", "_index", "_pos")

    def __init__(self, buf: bytes, base: int) -> None:
        self._buf = buf
        self._base = base
        self._index = 0
        self._pos = 0

    def __call__(self, index: int) -> int:
        if index < self._index:
            self._index = self._pos = 0
        while self._index < index:
            self._pos = self._buf.index(b"\n", self._pos) + 1
            self._index += 1
        return self._base + self._pos


class JSONChunkParser:
    """An incremental JSON-stream parser (see the module docstring).

    ``max_line_size`` bounds one line and ``max_document_size`` one document
    spanning several lines (bytes); beyond either the parser raises
    :class:`modelwire.ParseError` instead of buffering without bound.

    Frames completed before bad input are returned first; the ParseError is
    then raised by the next call (``feed`` or ``close``), and by every call
    after it, so what a caller sees does not depend on the chunking.
    """

    __slots__ = (
        "_doc",
        "_doc_line",
        "_doc_line_start",
        "_doc_next_try",
        "_doc_start",
        "_error",
        "_fed",
        "_head",
        "_line",
        "_max_doc",
        "_max_line",
        "_tail",
        "_tail_size",
    )

    def __init__(
        self,
        *,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
        max_document_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
    ) -> None:
        self._max_line = _size_option("max_line_size", max_line_size)
        self._max_doc = _size_option("max_document_size", max_document_size)
        self._tail: list[bytes] = []  # bytes of the unfinished last line
        self._tail_size = 0
        self._head: bytes | None = b""  # stream start, until the BOM is decided
        self._fed = 0  # bytes fed so far
        self._line = 1  # number of the unfinished line
        self._error: ParseError | None = None
        # An unfinished document: its lines so far (the first one from where
        # the document starts), the stream offset of that start, the number
        # and stream offset of the line it is on.
        self._doc: list[str] | None = None
        self._doc_start = 0
        self._doc_line = 0
        self._doc_line_start = 0
        self._doc_next_try = 0  # parse the document again once it is this big

    def feed(self, data: bytes) -> list[Frame]:
        """Take the next bytes of the stream; return the values they completed."""
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
        return self._feed(data)

    def close(self) -> list[Frame]:
        """End of stream: take a last line without a line end, finish a document."""
        if self._error is not None:
            raise self._error
        if self._head:  # fewer than 3 bytes, all a BOM prefix: not a BOM after all
            self._tail.append(self._head)
            self._tail_size = len(self._head)
        self._head = None
        frames: list[Frame] = []
        if self._tail:
            # A virtual line end completes the last line (it counts as one
            # byte fed, after every real one, so offsets are unaffected).
            self._fed += 1
            frames = self._feed(b"\n")
        if self._doc is not None and self._error is None:
            self._parse_doc(frames, self._fed, final=True)
        if self._error is not None:
            raise self._close_error(self._error, frames)
        return frames

    # -- lines -----------------------------------------------------------------
    def _feed(self, data: bytes) -> list[Frame]:
        tail = self._tail
        nl = data.rfind(b"\n")
        if nl < 0:
            tail.append(data)
            self._tail_size += len(data)
            if self._tail_size > self._max_line:
                return self._fail(self._long_line(self._line, self._fed - self._tail_size), [])
            return []
        if tail:
            nl += self._tail_size
            tail.append(data)
            buf = b"".join(tail)
            tail.clear()
        else:
            buf = data
        base = self._fed - len(buf)  # stream offset of buf[0]
        rest = buf[nl + 1 :]
        if rest:
            tail.append(rest)
        self._tail_size = len(rest)
        complete = buf[: nl + 1]
        error: ParseError | None = None
        if nl > self._max_line:  # some line may be too long: find the first
            limit = self._max_line
            for index, line_bytes in enumerate(complete.split(b"\n")):
                if len(line_bytes) > limit:
                    starts = _LineStarts(complete, base)
                    error = self._long_line(self._line + index, starts(index))
                    complete = complete[: starts(index) - base]
                    break
        try:
            text = complete.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = exc.start
            error = ParseError(
                f"invalid UTF-8 in JSON stream: {exc.reason}",
                code="JSON_INVALID_UTF8",
                offset=base + bad,
                line=self._line + complete.count(b"\n", 0, bad),
            )
            complete = complete[: complete.rfind(b"\n", 0, bad) + 1]
            text = complete.decode("utf-8")
        lines = text.split("\n")
        lines.pop()  # what follows the last line end: nothing
        frames: list[Frame] = []
        if lines:
            frames = self._lines(lines, _LineStarts(complete, base))
        if self._error is not None:  # invalid JSON, before any error found above
            return self._fail(self._error, frames)
        self._line += len(lines)
        if error is None and self._tail_size > self._max_line:
            error = self._long_line(self._line, self._fed - self._tail_size)
        if error is not None:
            return self._fail(error, frames)
        return frames

    def _lines(self, lines: list[str], starts: _LineStarts) -> list[Frame]:
        """Decode complete lines (the hot loop: one value per line)."""
        frames: list[Frame] = []
        append = frames.append
        scan = _scan_once
        index = 0
        count = len(lines)
        while index < count:
            if self._doc is None:
                for line in lines[index:] if index else lines:
                    if line:
                        try:
                            value, end = scan(line, 0)
                        except (StopIteration, ValueError, RecursionError):
                            if line.strip(_JSON_WS):
                                break  # not one value: the slow path decides
                            continue  # blank
                        if end == len(line) or not line[end:].strip(_JSON_WS):
                            append(Frame(value))
                            continue
                        break
                else:
                    return frames
                # An equal line before this one would have failed the same way.
                index = lines.index(line, index)
                self._open_doc(line, self._line + index, starts(index))
            else:
                line = lines[index]
                assert self._doc is not None
                self._doc.append(line)
            index += 1
            end = starts(index)
            if end - self._doc_start >= self._doc_next_try:
                self._parse_doc(frames, end, final=False)
                if self._error is not None:
                    return frames
        return frames

    # -- documents over several lines ------------------------------------------
    def _open_doc(self, text: str, line: int, offset: int) -> None:
        self._doc = [text]
        self._doc_start = offset
        self._doc_line = line
        self._doc_line_start = offset
        self._doc_next_try = 0  # parse it at once

    def _parse_doc(self, frames: list[Frame], end: int, *, final: bool) -> None:
        """Parse the unfinished document (which ends at stream offset ``end``):
        emit the values it completes and keep the rest, or fail if the rest can
        never become valid JSON (or, when ``final``, if anything is left)."""
        assert self._doc is not None
        text = "\n".join(self._doc)
        size = len(text)
        index = _skip_ws(text, 0)
        while index < size:
            try:
                value, stop = _raw_decode(text, index)
            except json.JSONDecodeError as exc:
                if exc.pos < size:
                    self._bad_json(text, index, exc.msg, exc.pos)
                    return
                if final:
                    self._bad_json(text, index, exc.msg, None)
                    return
                break  # ran out of text: the document continues on the next line
            except (ValueError, RecursionError) as exc:  # too deep, too many digits
                self._bad_json(text, index, str(exc), index)
                return
            frames.append(Frame(value))
            index = _skip_ws(text, stop)
        if index >= size:
            self._doc = None
            return
        if index:  # drop the values parsed: the document now starts at ``index``
            line_start = text.rfind("\n", 0, index) + 1
            if line_start:
                self._doc_line += text.count("\n", 0, line_start)
                self._doc_line_start = self._doc_start + len(text[:line_start].encode())
            self._doc_start += len(text[:index].encode())
            self._doc = [text[index:]]
        pending = end - self._doc_start
        if pending > self._max_doc:
            self._error = ParseError(
                f"JSON document starting on line {self._doc_line} is longer than "
                f"max_document_size ({self._max_doc} bytes)",
                code="JSON_DOCUMENT_TOO_BIG",
                offset=self._doc_line_start,
                line=self._doc_line,
            )
            return
        # Parse again once the text doubled: linear total work for any document.
        self._doc_next_try = min(max(2 * pending, 64), self._max_doc + 1)

    def _bad_json(self, text: str, index: int, message: str, pos: int | None) -> None:
        """Fail for the value starting at ``text[index]``: the error is at
        ``pos``, or (``None``) the stream ended before the value did."""
        line_start = text.rfind("\n", 0, index) + 1
        if line_start:
            line = self._doc_line + text.count("\n", 0, line_start)
            offset = self._doc_start + len(text[:line_start].encode())
        else:
            line = self._doc_line
            offset = self._doc_line_start
        if pos is None:
            self._error = ParseError(
                f"JSON document starting on line {line} is incomplete at the end of the "
                f"stream: {message}",
                code="JSON_INCOMPLETE",
                offset=offset,
                line=line,
            )
            return
        at = self._doc_line + text.count("\n", 0, pos)
        where = f"on line {at}" if at == line else f"on line {at} (document from line {line})"
        self._error = ParseError(
            f"invalid JSON {where}: {message}", code="JSON_INVALID", offset=offset, line=line
        )

    # -- errors ------------------------------------------------------------------
    def _long_line(self, line: int, offset: int) -> ParseError:
        return ParseError(
            f"JSON line is longer than max_line_size ({self._max_line} bytes)",
            code="JSON_LINE_TOO_LONG",
            offset=offset,
            line=line,
        )

    def _fail(self, error: ParseError, frames: list[Frame]) -> list[Frame]:
        self._error = error
        if frames:
            return frames
        raise error

    def _close_error(self, error: ParseError, frames: list[Frame]) -> ParseError:
        # close() has no next call to defer to: the frames ride on the error.
        if frames:
            error = ParseError(
                error.message, code=error.code, offset=error.offset, line=error.line, frames=frames
            )
        self._error = error
        return error


@modelwire.hookimpl
def register_parsers(register: Any) -> None:
    register("jsonchunk", JSONChunkParser, media_types=list(MEDIA_TYPES))
