"""Usage and cost: provider-reported usage, else a tokenizer's count; exact cost from pricing.

Cost is a :class:`~decimal.Decimal` in the pricing's currency, from prices per
million tokens. ``input_tokens`` is the whole prompt, so::

    cost = (input - cache_read - cache_write) x input price
         + cache_read x cached_input price + cache_write x cache_write price
         + output x output price            (output includes reasoning)

A cache price the manifest does not name is the input price.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from .._errors import InvalidRequestError
from .._events import Usage
from .._manifest.model import Model, Pricing
from .exchange import Tally

__all__ = ["Totals", "cost", "settle", "tokenizer_name"]

_MILLION = Decimal(1_000_000)


@attrs.define
class Totals:
    """Running usage of one runtime (every call, every model).

    Costs are kept per currency (:attr:`costs`) and never added across
    currencies: :attr:`cost` is the one currency's total and raises
    :class:`~modelwire.InvalidRequestError` (``MIXED_CURRENCIES``) once
    calls were priced in two.
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    costs: dict[str, Decimal] = attrs.field(factory=dict)
    fallbacks: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def cost(self) -> Decimal:
        """The total cost, when every priced call used one currency (0 before any)."""
        if len(self.costs) > 1:
            raise InvalidRequestError(
                f"calls were priced in {', '.join(sorted(self.costs))}; totals never add two currencies "
                "(read Totals.costs)", code="MIXED_CURRENCIES",
            )
        return next(iter(self.costs.values()), Decimal(0))

    def add(self, usage: Usage) -> None:
        self.calls += 1
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.cached_input_tokens += usage.cached_input_tokens or 0
        self.cache_write_tokens += usage.cache_write_tokens or 0
        self.reasoning_tokens += usage.reasoning_tokens or 0
        if usage.cost is not None:
            currency = usage.currency or "USD"
            self.costs[currency] = self.costs.get(currency, Decimal(0)) + usage.cost


def _price(value: float | None, default: float) -> Decimal:
    return Decimal(str(default if value is None else value))


def cost(
    pricing: Pricing | None,
    inp: int | None,
    out: int | None,
    cached: int | None = None,
    cache_write: int | None = None,
    cache_write_1h: int | None = None,
) -> Decimal | None:
    """Cost in the pricing's currency, exact (Decimal), from per-million prices.

    ``inp`` is the whole prompt; ``cached`` (cache read) and ``cache_write``
    are parts of it, and ``cache_write_1h`` a part of ``cache_write``, each
    clamped so that no token is billed twice.
    """
    if pricing is None:
        return None
    whole = max(inp or 0, 0)
    cached = min(max(cached or 0, 0), whole)
    cache_write = min(max(cache_write or 0, 0), whole - cached)
    long_write = min(max(cache_write_1h or 0, 0), cache_write)
    write_price = _price(pricing.cache_write_per_mtok, pricing.input_per_mtok)
    long_price = write_price if pricing.cache_write_1h_per_mtok is None else Decimal(str(pricing.cache_write_1h_per_mtok))
    return (
        Decimal(whole - cached - cache_write) * _price(pricing.input_per_mtok, 0.0)
        + Decimal(cached) * _price(pricing.cached_input_per_mtok, pricing.input_per_mtok)
        + Decimal(cache_write - long_write) * write_price
        + Decimal(long_write) * long_price
        + Decimal(out or 0) * _price(pricing.output_per_mtok, 0.0)
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
    pricing = spec.pricing
    return Usage(
        usage_in, usage_out, cost(pricing, usage_in, usage_out, usage_cached, tally.cache_write, tally.cache_write_1h),
        cached_input_tokens=usage_cached, estimated=estimated, cache_write_tokens=tally.cache_write,
        reasoning_tokens=tally.reasoning, currency=pricing.currency if pricing is not None else None,
        cache_write_1h_tokens=tally.cache_write_1h,
    )
