"""Frames: what a parser plugin hands to the event mapper."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = ["Frame", "Parser", "ParserFactory", "json_depth_ok"]


class Frame(NamedTuple):
    """One unit of a stream.

    ``data`` is the payload: a ``str`` for SSE and text, the decoded JSON value
    for JSON chunks. ``event``, ``id`` and ``retry`` are SSE's fields and stay
    ``None`` for formats that have none.

    A named tuple, not a class: parsers build one per frame on the hot path,
    and a tuple is immutable and about twice as cheap to create.
    """

    data: Any
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape that ``modelwire frames`` prints."""
        return {"event": self.event, "data": self.data, "id": self.id, "retry": self.retry}


@runtime_checkable
class Parser(Protocol):
    """An incremental, sans-IO parser: bytes in, frames out.

    Output must not depend on how the bytes were chunked. ``close()`` marks the
    end of the stream and returns what is still pending (or raises ParseError
    if the stream ended inside something that cannot be completed).
    """

    def feed(self, data: bytes) -> list[Frame]: ...

    def close(self) -> list[Frame]: ...


class ParserFactory(Protocol):
    """Builds a fresh parser; keyword options come from the manifest."""

    def __call__(self, **options: Any) -> Parser: ...


def json_depth_ok(value: Any, limit: int) -> bool:
    """True when arrays/objects nest at most ``limit`` deep (iterative: no recursion).

    For JSON bodies that servers (the agent server, the gateway) accept from
    clients: checked before anything walks them recursively.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True
