"""Operators beyond generate: embed and any operator a manifest declares (rerank, moderation, ...).

They take the same path as ``generate`` (planner, fallback chain and policy,
limits, metrics, usage and cost); only the request and the result differ.
The request is the caller's inputs as they are, plus ``model`` and
``stream``: the operator's ``request:`` expression reads them. The result is
the events the operator's rules emitted, summed into an :class:`OperatorResult`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from .._errors import InvalidRequestError, LimitExceededError, ParseError
from .._events import Data, Done, Embedding, Event, Fallback, TextDelta, Usage
from .planning import CallPlan

__all__ = ["RESERVED_INPUTS", "OperatorResult", "check_inputs", "expect_embeddings", "input_messages", "operator_request"]

#: unified-request fields an operator's inputs cannot set
RESERVED_INPUTS = frozenset({"model", "stream", "max_tokens_limit"})


@attrs.frozen
class OperatorResult:
    """What one operator call returned: its events, summed.

    ``data`` holds the values of the ``data`` events in order (a manifest
    emits one per rerank result, say); ``value`` is the value of the single
    ``data`` event when the manifest emits exactly one.
    """

    model: str
    operator: str
    events: tuple[Event, ...]
    models: tuple[str, ...] = ()

    @property
    def data(self) -> list[Any]:
        return [ev.value for ev in self.events if type(ev) is Data]

    @property
    def value(self) -> Any:
        data = self.data
        if len(data) != 1:
            raise ParseError(
                f"the {self.operator!r} operator emitted {len(data)} data events, not one: read .data",
                code="NOT_ONE_VALUE", model=self.model,
            )
        return data[0]

    @property
    def text(self) -> str:
        return "".join(ev.text for ev in self.events if type(ev) is TextDelta)

    @property
    def vectors(self) -> list[list[float]]:
        """The embeddings, in index order."""
        found = {ev.index: ev.vector for ev in self.events if type(ev) is Embedding}
        return [found[i] for i in sorted(found)]

    @property
    def usage(self) -> Usage | None:
        found = [ev for ev in self.events if type(ev) is Usage]
        return found[-1] if found else None

    @property
    def cost(self) -> Decimal | None:
        usage = self.usage
        return usage.cost if usage is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape, as ``modelwire call --operator`` prints it."""
        usage = self.usage
        return {
            "model": self.model,
            "operator": self.operator,
            "data": self.data,
            **({"text": self.text} if self.text else {}),
            **({"vectors": self.vectors} if any(type(ev) is Embedding for ev in self.events) else {}),
            "usage": usage.to_dict() if usage is not None else None,
            "models": list(self.models),
        }


def collect(model: str, operator: str, events: Sequence[Event]) -> OperatorResult:
    """The events of the attempt that answered (what came before a Fallback is dropped)."""
    path = [model]
    kept: list[Event] = []
    for ev in events:
        if type(ev) is Fallback:
            path.append(ev.to_model)
            kept.clear()
        kept.append(ev)
    return OperatorResult(path[-1], operator, tuple(kept), tuple(path))


def operator_request(plan_: CallPlan, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The unified request of an operator call: the inputs, plus the model id and ``stream``."""
    clash = sorted(RESERVED_INPUTS.intersection(inputs))
    if clash:
        raise InvalidRequestError(
            f"inputs cannot set {', '.join(clash)}: the runtime fills them", code="BAD_INPUT", **plan_.context()
        )
    for key, value in inputs.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidRequestError(
                f"input {key!r} cannot be sent as JSON: {exc}", code="BAD_INPUT", **plan_.context()
            ) from None
    return {**inputs, "model": plan_.model_id, "stream": plan_.operator.stream}


def input_messages(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The inputs' text as one user message, so limits and usage estimates can count it."""
    texts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif value is not None and not isinstance(value, bool):
            texts.append(json.dumps(value, default=str))

    walk(dict(inputs))
    return [{"role": "user", "content": "\n".join(texts)}] if texts else []


def check_inputs(counts: Sequence[int], window: int | None, tokenizer: str, context: dict[str, Any]) -> None:
    """Each embedding input must fit the model's context window (it applies per input, not per batch)."""
    if window is None:
        return
    for i, n in enumerate(counts):
        if n > window:
            raise LimitExceededError(
                f"input[{i}] of ~{n} tokens (by {tokenizer}) exceeds the context window of {window}",
                code="CONTEXT_WINDOW_EXCEEDED", **context,
            )


async def expect_embeddings(
    events: AsyncGenerator[Event, None], count: int, context: dict[str, Any]
) -> AsyncGenerator[Event, None]:
    """Pass events on; at ``Done``, fail (inside the attempt, so the policy sees it) unless every input got a vector."""
    seen: set[int] = set()
    try:
        async for ev in events:
            if type(ev) is Embedding:
                seen.add(ev.index)
            elif type(ev) is Done and seen != set(range(count)):
                raise ParseError(
                    f"expected {count} embeddings, got {len(seen)}", code="EMBEDDINGS_MISSING", **context
                )
            yield ev
    finally:
        await events.aclose()
