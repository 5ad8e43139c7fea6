"""Usage and cost: provider-reported usage, else a tokenizer's count; exact cost from pricing.

Cost is a :class:`~decimal.Decimal` in the pricing's currency, from prices per
million tokens; cached input is billed at ``cached_input_per_mtok`` when the
manifest names it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from .._events import Usage
from .._manifest.model import Model, Pricing
from .exchange import Tally

__all__ = ["Totals", "cost", "settle", "tokenizer_name"]

_MILLION = Decimal(1_000_000)


@attrs.define
class Totals:
    """Running usage of one runtime (every call, every model)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    fallbacks: int = 0

    def add(self, usage: Usage) -> None:
        self.calls += 1
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        if usage.cost is not None:
            self.cost += usage.cost


def cost(pricing: Pricing | None, inp: int | None, out: int | None, cached: int | None = None) -> Decimal | None:
    """Cost in the pricing's currency, exact (Decimal), from per-million prices."""
    if pricing is None:
        return None
    cached = min(cached or 0, inp or 0)
    cached_price = pricing.cached_input_per_mtok if pricing.cached_input_per_mtok is not None else pricing.input_per_mtok
    return (
        Decimal((inp or 0) - cached) * Decimal(str(pricing.input_per_mtok))
        + Decimal(cached) * Decimal(str(cached_price))
        + Decimal(out or 0) * Decimal(str(pricing.output_per_mtok))
    ) / _MILLION


def tokenizer_name(tokenizer: Any, spec: Model) -> str:
    return str(getattr(tokenizer, "name", None) or spec.tokenizer or "approx")


def settle(
    tally: Tally, spec: Model, prompt_tokens: Callable[[], int] | None, tokenizer: Any
) -> Usage | None:
    """The exchange's final :class:`Usage`: as reported, else estimated (and said so), else None."""
    usage_in, usage_out, usage_cached = tally.input_tokens, tally.output_tokens, tally.cached
    estimated = False
    if usage_in is None and usage_out is None and tokenizer is not None and prompt_tokens is not None:
        # No provider-reported usage: count, and say so.
        usage_in, usage_out, estimated = prompt_tokens(), tokenizer.count("".join(tally.produced)), True
    if usage_in is None and usage_out is None:
        return None
    return Usage(
        usage_in, usage_out, cost(spec.pricing, usage_in, usage_out, usage_cached),
        cached_input_tokens=usage_cached, estimated=estimated,
    )
