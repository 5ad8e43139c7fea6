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
    "Citation",
    "Data",
    "Done",
    "Embedding",
    "Event",
    "Fallback",
    "Finish",
    "Reasoning",
    "ReasoningDelta",
    "ServerToolCall",
    "ServerToolResult",
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
    ``signature`` is an opaque token a provider binds to the call (Gemini's
    ``thoughtSignature``) and wants back unchanged with it in the next turn.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    signature: str | None = None
    type = "tool_call"


@attrs.frozen(slots=True)
class ReasoningDelta(Event):
    """A piece of the model's reasoning ("thinking"), kept apart from the answer.

    Pieces with one ``index`` add up to one reasoning block. ``signature``
    (Anthropic) and ``redacted`` (an encrypted block the provider will not
    show) must be sent back unchanged in a later turn, so they are kept.
    """

    text: str = ""
    index: int = 0
    signature: str | None = None
    redacted: str | None = None
    type = "reasoning"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "reasoning", "index": self.index, "text": self.text}
        if self.signature is not None:
            out["signature"] = self.signature
        if self.redacted is not None:
            out["redacted"] = self.redacted
        return out


@attrs.frozen(slots=True)
class ServerToolCall(Event):
    """A tool the provider runs itself (web search, code execution, an MCP
    connector): reported for the record, never a call for the client to run.

    Pieces with one ``index`` add up, as for :class:`ToolCallDelta`.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    type = "server_tool_call"


@attrs.frozen(slots=True)
class ServerToolResult(Event):
    """What a server-side tool returned (``content`` as the provider sent it, JSON)."""

    tool_call_id: str | None = None
    kind: str | None = None
    content: Any = None
    type = "server_tool_result"


@attrs.frozen(slots=True)
class Citation(Event):
    """A source the answer cites (a web page, a document passage)."""

    url: str | None = None
    title: str | None = None
    cited_text: str | None = None
    type = "citation"


@attrs.frozen(slots=True)
class Usage(Event):
    """Token counts (provider-reported, else counted: ``estimated``) and the cost.

    ``input_tokens`` is the whole prompt, cache reads and writes included;
    ``cached_input_tokens`` (cache read) and ``cache_write_tokens`` are the
    parts of it the provider read from, or wrote to, its prompt cache;
    ``cache_write_1h_tokens`` the part of the writes kept for an hour
    (priced apart where a longer cache costs more).
    ``output_tokens`` is the whole output, reasoning included;
    ``reasoning_tokens`` the part spent thinking. ``cost`` is a Decimal in
    ``currency`` (None without pricing).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Decimal | None = None
    cached_input_tokens: int | None = None
    estimated: bool = False
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    currency: str | None = None
    cache_write_1h_tokens: int | None = None
    type = "usage"

    def to_dict(self) -> dict[str, Any]:
        """JSON shape; ``cost`` is a decimal string (a float would round money)."""
        out: dict[str, Any] = {
            "type": "usage",
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": format(self.cost, "f") if self.cost is not None else None,
        }
        if self.cost is not None and self.currency is not None:
            out["currency"] = self.currency
        if self.cached_input_tokens:
            out["cached_input_tokens"] = self.cached_input_tokens
        if self.cache_write_tokens:
            out["cache_write_tokens"] = self.cache_write_tokens
        if self.cache_write_1h_tokens:
            out["cache_write_1h_tokens"] = self.cache_write_1h_tokens
        if self.reasoning_tokens:
            out["reasoning_tokens"] = self.reasoning_tokens
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
class Reasoning:
    """A whole reasoning block, assembled from its deltas (see :class:`ReasoningDelta`)."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None

    def to_message_part(self) -> dict[str, Any]:
        """The block as an assistant message's ``reasoning`` item (sent back on the next turn)."""
        if self.redacted is not None:
            return {"redacted": self.redacted}
        return {"text": self.text, "signature": self.signature}


@attrs.frozen
class ToolCall:
    """A complete tool call, assembled from its deltas (``signature``: see :class:`ToolCallDelta`)."""

    id: str | None
    name: str | None
    arguments: str
    signature: str | None = None

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON (``{}`` when empty)."""
        return json.loads(self.arguments) if self.arguments else {}
