"""A plugin that claims a parser name already taken (for modelwire's tests)."""

from __future__ import annotations

from typing import Any

from modelwire import Frame, hookimpl


class LowerLines:
    """One frame per ``\\n``-terminated line, lower-cased."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Frame]:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        return [Frame(data=line.decode().lower()) for line in lines]

    def close(self) -> list[Frame]:
        rest, self._buffer = self._buffer, b""
        return [Frame(data=rest.decode().lower())] if rest else []


@hookimpl
def register_parsers(register: Any) -> None:
    register("upper-lines", LowerLines, media_types=["text/x-upper-lines"])
    register("lower-lines", LowerLines, media_types=["text/x-lower-lines"])
