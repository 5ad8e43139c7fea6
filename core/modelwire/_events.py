"""Unified events: what every stream turns into, whatever the provider.

Small frozen value types under one base (as h11's events). Text and tool
calls arrive as deltas; :class:`Response` is their sum.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs

__all__ = [
    "Data",
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
    """Token counts (provider-reported, else counted: ``estimated``) and the cost.

    ``cost`` is a Decimal in the pricing's currency (None without pricing);
    ``cached_input_tokens`` is the part of the input the provider served from
    its prompt cache (priced at ``cached_input_per_mtok``).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Decimal | None = None
    cached_input_tokens: int | None = None
    estimated: bool = False
    type = "usage"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "usage",
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": float(self.cost) if self.cost is not None else None,
        }
        if self.cached_input_tokens:
            out["cached_input_tokens"] = self.cached_input_tokens
        if self.estimated:
            out["estimated"] = True
        return out


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
    #: the new model continues the partial answer (assistant prefix) rather than restarting
    continued: bool = False
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


@attrs.frozen(slots=True)
class Data(Event):
    """A JSON value from an operator with no event of its own (rerank scores, moderation flags)."""

    value: Any
    type = "data"


@attrs.frozen
class ToolCall:
    """A complete tool call, assembled from its deltas."""

    id: str | None
    name: str | None
    arguments: str

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON (``{}`` when empty)."""
        return json.loads(self.arguments) if self.arguments else {}
