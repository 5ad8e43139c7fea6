"""Plain text for modelwire: UTF-8 bytes in, text frames out.

Each ``feed()`` returns at most one ``Frame(data=<str>)`` holding the text its
bytes completed (none when they completed no character). A character split
across chunks is decoded once its last byte arrives, so the text is the same
for any chunking; where the frame boundaries fall is the chunking's, only the
concatenation of all frames is fixed.

``errors="strict"`` (the default) raises :class:`modelwire.ParseError` for
invalid UTF-8, with ``offset`` the stream offset of the bad byte and ``line``
its 1-based line; a stream that ends inside a character fails at ``close()``.
``errors="replace"`` puts U+FFFD in their place instead.

The parser never buffers more than one incomplete character (at most three
bytes), so it takes no size limit. The text is kept verbatim: a byte order
mark is not stripped, line ends are not translated.
"""

from __future__ import annotations

import codecs
from typing import Any

import modelwire
from modelwire import Frame, ParseError

__all__ = ["ERRORS", "MEDIA_TYPES", "TextParser", "register_parsers"]

#: Content types this parser claims for auto-detection (any text the more
#: specific parsers do not claim, e.g. ``text/plain``).
MEDIA_TYPES = ("text/*",)

#: The accepted values of the ``errors`` option.
ERRORS = ("strict", "replace")


class TextParser:
    """An incremental UTF-8 text parser (see the module docstring).

    Text completed before invalid bytes is returned first; the ParseError is
    then raised by the next call (``feed`` or ``close``), and by every call
    after it, so the text a caller sees does not depend on the chunking.
    """

    __slots__ = ("_decode", "_decoder", "_error", "_fed", "_newlines")

    def __init__(self, *, errors: str = "strict") -> None:
        if errors not in ERRORS:
            raise ValueError(f"errors must be one of {', '.join(ERRORS)}; got {errors!r}")
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors)
        self._decode = self._decoder.decode
        self._fed = 0  # bytes fed so far
        self._newlines = 0  # LF bytes fed so far, for the line of an error
        self._error: ParseError | None = None

    @property
    def errors(self) -> str:
        """How invalid UTF-8 is handled: ``"strict"`` or ``"replace"``."""
        return str(self._decoder.errors)

    def feed(self, data: bytes) -> list[Frame]:
        """Take the next bytes; return the text they completed, as one frame."""
        if self._error is not None:
            raise self._error
        try:
            text = self._decode(data)
        except UnicodeDecodeError as exc:
            return self._fail(exc, data)
        self._fed += len(data)
        self._newlines += data.count(b"\n")
        return [Frame(text)] if text else []

    def close(self) -> list[Frame]:
        """End of stream: in strict mode, an unfinished character is an error."""
        if self._error is not None:
            raise self._error
        try:
            text = self._decode(b"", True)
        except UnicodeDecodeError as exc:
            return self._fail(exc, b"")  # raises: only an unfinished character was left
        return [Frame(text)] if text else []

    def _fail(self, exc: UnicodeDecodeError, data: bytes) -> list[Frame]:
        # The decoder raised before taking ``data``: its buffer still holds the
        # bytes of an unfinished character fed earlier, and ``exc`` indexes
        # into buffer + data.
        buffered: bytes = self._decoder.getstate()[0]
        good = (buffered + data)[: exc.start].decode("utf-8")
        self._error = ParseError(
            f"invalid UTF-8 in text stream: {exc.reason}",
            code="TEXT_INVALID_UTF8",
            offset=self._fed - len(buffered) + exc.start,
            line=self._newlines + good.count("\n") + 1,
        )
        self._fed += len(data)
        if good:
            return [Frame(good)]
        raise self._error


@modelwire.hookimpl
def register_parsers(register: Any) -> None:
    register("text", TextParser, media_types=list(MEDIA_TYPES))
