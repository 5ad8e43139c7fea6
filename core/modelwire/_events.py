"""Unified events: what every stream turns into, whatever the provider.

Small frozen value types under one base (as h11's events). Text and tool
calls arrive as deltas; :class:`Response` is their sum.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

__all__ = [
    "Done",
    "Embedding",
    "Event",
    "Fallback",
    "Finish",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
]


class Event:
    """Base of all stream events."""

    __slots__ = ()
    type: str = "event"

    def to_dict(self) -> dict[str, Any]:
        """JSON shape, as ``modelwire call --json`` prints it."""
        return {"type": self.type, **attrs.asdict(self)}  # type: ignore[arg-type]


@attrs.frozen(slots=True)
class TextDelta(Event):
    """A piece of the answer's text."""

    text: str
    type = "text"


@attrs.frozen(slots=True)
class ToolCallDelta(Event):
    """A piece of a tool call; pieces with one ``index`` add up to one call.

    ``id`` and ``name`` usually come once, ``arguments`` (a JSON text) in pieces.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    type = "tool_call"


@attrs.frozen(slots=True)
class Usage(Event):
    """Token counts (provider-reported, else counted) and the cost from pricing."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    type = "usage"


@attrs.frozen(slots=True)
class Finish(Event):
    """Why the model stopped (``stop``, ``length``, ``tool_calls`` ... as the provider says)."""

    reason: str | None = None
    type = "finish"


@attrs.frozen(slots=True)
class Fallback(Event):
    """Another model takes over from here; text before it came from ``from_model``."""

    from_model: str
    to_model: str
    reason: str
    type = "fallback"


@attrs.frozen(slots=True)
class Done(Event):
    """The stream ended with its end marker: the answer is complete."""

    type = "done"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "done"}


@attrs.frozen(slots=True)
class Embedding(Event):
    """One input's vector (from an embed operator)."""

    index: int
    vector: list[float]
    type = "embedding"


@attrs.frozen
class ToolCall:
    """A complete tool call, assembled from its deltas."""

    id: str | None
    name: str | None
    arguments: str

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON (``{}`` when empty)."""
        return json.loads(self.arguments) if self.arguments else {}
