"""Tables that pin usage and cost after the cache-write, reasoning and currency fields (mutmut kills).

Real objects only: the real SSE parser and manifest rules; a scripted parser
(a plugin, bytes in, frames out) stands in where a format must deliver its
frames only at EOF or fail there. See docs/testing.md, "Mutation testing".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest

import modelwire
from modelwire._events import ReasoningDelta, TextDelta, Usage
from modelwire._frames import Frame
from modelwire._manifest.model import Pricing
from modelwire._plugins.tokenizers import ApproxTokenizer
from modelwire._runtime.exchange import Exchange, Tally
from modelwire._runtime.mapping import compile_rules
from modelwire._runtime.planning import plan
from modelwire._runtime.usage import Totals, cost, settle

# --- cost with cache reads and writes ----------------------------------------------------------

FULL = Pricing(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5, cache_write_per_mtok=2.5)
READ_ONLY = Pricing(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
WRITE_ONLY = Pricing(input_per_mtok=2.0, output_per_mtok=8.0, cache_write_per_mtok=4.0)
PLAIN = Pricing(input_per_mtok=2.0, output_per_mtok=8.0)

COST_CASES = [
    # pricing, input, output, cache read, cache write, cost (arithmetic in input units x price)
    (FULL, 1000, 500, 400, 100, Decimal("0.00545")),  # 500*2 + 400*0.5 + 100*2.5 + 500*8
    (FULL, 1000, 500, None, 300, Decimal("0.00615")),  # 700*2 + 300*2.5 + 500*8
    (FULL, 1000, 500, 400, 1000, Decimal("0.0057")),  # write clamped to the 600 left: 400*0.5 + 600*2.5 + 4000
    (FULL, 1000, 500, 1000, 50, Decimal("0.0045")),  # reads take the whole prompt: nothing left to write
    (FULL, 1000, 500, None, 1000, Decimal("0.0065")),  # 1000*2.5 + 4000
    (FULL, 1000, 500, -5, -5, Decimal("0.006")),  # negative counts are 0
    (FULL, 1000, 500, -5, 100, Decimal("0.00605")),  # 900*2 + 100*2.5 + 4000
    (FULL, -10, 500, 3, 3, Decimal("0.004")),  # a negative prompt is 0: no cache part either
    (FULL, None, 500, 3, 3, Decimal("0.004")),
    (FULL, 1000, None, 400, 100, Decimal("0.00145")),
    (READ_ONLY, 1000, 500, 400, 100, Decimal("0.0054")),  # no write price: the input price
    (WRITE_ONLY, 1000, 500, 400, 100, Decimal("0.0062")),  # 500*2 + 400*2 (no read price) + 100*4 + 4000
    (PLAIN, 1000, 500, 400, 100, Decimal("0.006")),
    (Pricing(input_per_mtok=0.1, output_per_mtok=0.3, cache_write_per_mtok=0.7), 10, 0, 0, 3, Decimal("0.0000028")),
]


@pytest.mark.parametrize(("pricing", "inp", "out", "cached", "write", "expected"), COST_CASES)
def test_cost_with_cache_write(
    pricing: Pricing, inp: int | None, out: int | None, cached: int | None, write: int | None, expected: Decimal
) -> None:
    got = cost(pricing, inp, out, cached, write)
    assert got == expected
    assert isinstance(got, Decimal)


def test_cost_cache_write_defaults_to_none() -> None:
    assert cost(FULL, 1000, 500, 400) == Decimal("0.0054")


# --- Totals: counts and per-currency costs ------------------------------------------------------


def test_totals_start_empty() -> None:
    t = Totals()
    assert (t.calls, t.input_tokens, t.output_tokens, t.fallbacks) == (0, 0, 0, 0)
    assert (t.cached_input_tokens, t.cache_write_tokens, t.reasoning_tokens) == (0, 0, 0)
    assert (t.costs, t.cost) == ({}, Decimal(0))
    assert isinstance(t.cost, Decimal)


TOTALS_STEPS = [
    # usage added, then (calls, input, output, cache read, cache write, reasoning), costs
    (Usage(10, 5), (1, 10, 5, 0, 0, 0), {}),
    (Usage(None, None, cached_input_tokens=4, cache_write_tokens=3, reasoning_tokens=2),
     (2, 10, 5, 4, 3, 2), {}),
    (Usage(1, 1, Decimal("0.5"), cached_input_tokens=1, cache_write_tokens=1, reasoning_tokens=1),
     (3, 11, 6, 5, 4, 3), {"USD": Decimal("0.5")}),  # no currency: USD
    (Usage(1, 1, Decimal("0.25"), currency="USD"), (4, 12, 7, 5, 4, 3), {"USD": Decimal("0.75")}),
    (Usage(1, 1, None, currency="EUR"), (5, 13, 8, 5, 4, 3), {"USD": Decimal("0.75")}),  # unpriced: no entry
]


def test_totals_add_every_field() -> None:
    t = Totals()
    for usage, counts, costs in TOTALS_STEPS:
        t.add(usage)
        assert (t.calls, t.input_tokens, t.output_tokens, t.cached_input_tokens, t.cache_write_tokens,
                t.reasoning_tokens) == counts
        assert t.costs == costs
    assert t.cost == Decimal("0.75")


def test_totals_keep_one_total_per_currency() -> None:
    t = Totals()
    t.add(Usage(1, 1, Decimal("0.5"), currency="EUR"))
    assert (t.costs, t.cost) == ({"EUR": Decimal("0.5")}, Decimal("0.5"))
    t.add(Usage(1, 1, Decimal("0.25"), currency="EUR"))
    assert t.cost == Decimal("0.75")
    t.add(Usage(1, 1, Decimal("2"), currency="USD"))
    t.add(Usage(1, 1, Decimal("1"), currency="JPY"))
    assert t.costs == {"EUR": Decimal("0.75"), "USD": Decimal("2"), "JPY": Decimal("1")}
    with pytest.raises(modelwire.InvalidRequestError) as info:
        _ = t.cost
    assert info.value.message == (
        "calls were priced in EUR, JPY, USD; totals never add two currencies (read Totals.costs)"
    )
    assert info.value.code == "MIXED_CURRENCIES"


# --- settle: every field reaches the Usage ------------------------------------------------------

CATALOG = modelwire.load_manifests("builtin:*", env={})
GPT = plan(CATALOG, "gpt-4.1", "generate")
EUR = Pricing(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5, cache_write_per_mtok=2.5,
              currency="EUR")


def tally_of(*events: Any) -> Tally:
    t = Tally()
    t.take(list(events))
    return t


SETTLE_CASES = [
    # tally, pricing, expected Usage
    (tally_of(Usage(1000, 500, cached_input_tokens=400, cache_write_tokens=100, reasoning_tokens=30)), EUR,
     Usage(1000, 500, Decimal("0.00545"), cached_input_tokens=400, cache_write_tokens=100, reasoning_tokens=30,
           currency="EUR")),
    (tally_of(Usage(1000, 500, cache_write_tokens=100)), FULL,
     Usage(1000, 500, Decimal("0.00605"), cache_write_tokens=100, currency="USD")),
    (tally_of(Usage(1000, 500, cache_write_tokens=100, reasoning_tokens=7)), None,
     Usage(1000, 500, None, cache_write_tokens=100, reasoning_tokens=7, currency=None)),
]


@pytest.mark.parametrize(("tally", "pricing", "expected"), SETTLE_CASES)
def test_settle_every_field(tally: Tally, pricing: Pricing | None, expected: Usage) -> None:
    got = settle(tally, attrs.evolve(GPT.spec, pricing=pricing), lambda: 99, ApproxTokenizer())
    assert got == expected
    assert got is not None
    assert (got.cache_write_tokens, got.reasoning_tokens, got.currency, got.estimated) == (
        expected.cache_write_tokens, expected.reasoning_tokens, expected.currency, False,
    )


def test_settle_estimates_reasoning_text_too() -> None:
    t = tally_of(ReasoningDelta("think"), TextDelta("say"))
    got = settle(t, attrs.evolve(GPT.spec, pricing=None), lambda: 5, ApproxTokenizer())
    assert got == Usage(5, ApproxTokenizer().count("thinksay"), None, estimated=True)


# --- Tally: cache write, reasoning, reasoning text ----------------------------------------------

TAKE_CASES = [
    # events, (cache write, reasoning), produced after
    ([Usage(cache_write_tokens=3, reasoning_tokens=4)], (3, 4), []),
    ([Usage(cache_write_tokens=3, reasoning_tokens=4), Usage(cache_write_tokens=5)], (5, 4), []),
    ([Usage(cache_write_tokens=3, reasoning_tokens=4), Usage(reasoning_tokens=0)], (3, 0), []),
    ([Usage(cache_write_tokens=3), Usage(cache_write_tokens=0, reasoning_tokens=None)], (0, None), []),
    ([ReasoningDelta("a"), TextDelta("b"), ReasoningDelta("c")], (None, None), ["a", "b", "c"]),
    ([ReasoningDelta("a"), Usage(1, 1), ReasoningDelta("c")], (None, None), []),  # reported: no estimate kept
    ([ReasoningDelta("a"), Usage(reasoning_tokens=9), ReasoningDelta("c")], (None, 9), ["a", "c"]),
]


@pytest.mark.parametrize(("events", "fields", "produced"), TAKE_CASES)
def test_tally_take_cache_write_and_reasoning(
    events: list[Any], fields: tuple[Any, ...], produced: list[str]
) -> None:
    t = Tally()
    assert (t.cache_write, t.reasoning) == (None, None)
    out = t.take(events)
    assert (t.cache_write, t.reasoning) == fields
    assert t.produced == produced
    assert out == [e for e in events if not isinstance(e, Usage)]


# --- Exchange.close: a body whose frames come only at EOF ---------------------------------------

OPENAI = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
FRAMES = modelwire.get_parser(GPT.operator.parser or "").feed(OPENAI)
AFTER_END = [Frame('{"choices":[{"index":0,"delta":{"content":"late"}}]}')]


class AtEOF:
    """A parser that keeps its frames until EOF (as one JSON document does), or fails there."""

    def __init__(self, frames: list[Frame], error: Exception | None = None, fed: list[Frame] | None = None) -> None:
        self.frames, self.error, self.fed = frames, error, fed or []

    def feed(self, data: bytes) -> list[Frame]:
        return self.fed

    def close(self) -> list[Frame]:
        if self.error is not None:
            raise self.error
        return self.frames


def at_eof(frames: list[Frame], error: Exception | None = None, fed: list[Frame] | None = None, **kw: Any) -> Exchange:
    return Exchange(AtEOF(frames, error, fed), compile_rules(GPT.operator), GPT.context(), **kw)


N_EVENTS = len(at_eof(FRAMES).close())


@pytest.mark.parametrize(
    ("frames", "budget", "too_large"),
    [
        (FRAMES, None, False),
        (FRAMES, N_EVENTS, False),
        (FRAMES, N_EVENTS + 1, False),
        (FRAMES, N_EVENTS - 1, True),
        (FRAMES + AFTER_END, N_EVENTS, False),  # frames after the end marker are not read
    ],
)
def test_exchange_close_counts_events_at_eof(frames: list[Frame], budget: int | None, too_large: bool) -> None:
    ex = at_eof(frames, max_events=budget)
    assert ex.feed(OPENAI) == []
    out = ex.close()
    assert [type(e).__name__ for e in out] == ["TextDelta", "TextDelta", "Finish"]
    assert ex.stopped
    assert ex.emitted == N_EVENTS == 3
    assert (ex.tally.input_tokens, ex.tally.output_tokens) == (3, 2)
    if not too_large:
        assert ex.error is None
        return
    with pytest.raises(modelwire.LimitExceededError) as info:
        ex.raise_error()
    assert info.value.message == f"the response passed its budget of {budget} events; stopped reading"
    assert info.value.code == "STREAM_TOO_LARGE"
    assert (info.value.model, info.value.provider) == ("gpt-4.1", GPT.provider_name)


def test_exchange_close_keeps_the_parser_error() -> None:
    torn = modelwire.ParseError("the stream ended inside a JSON value", code="TORN")
    ex = at_eof(FRAMES, error=torn, max_events=0)
    assert ex.close() == []  # no end marker check: the parse error says more
    assert ex.error is torn
    assert ex.emitted == 0
    with pytest.raises(modelwire.ParseError) as info:
        ex.raise_error()
    assert info.value is torn


def test_exchange_close_after_the_end_marker_reads_nothing() -> None:
    ex = at_eof(AFTER_END, fed=FRAMES, max_events=N_EVENTS)
    assert len(ex.feed(OPENAI)) == N_EVENTS and ex.stopped
    assert ex.close() == []
    assert (ex.emitted, ex.error) == (N_EVENTS, None)


@pytest.mark.parametrize(("budget", "too_large"), [(3, False), (2, True)])
def test_exchange_counts_events_of_feed_and_close_together(budget: int, too_large: bool) -> None:
    ex = at_eof(FRAMES[2:], fed=FRAMES[:2], max_events=budget)  # two text deltas, then the rest at EOF
    assert len(ex.feed(OPENAI)) == 2 and ex.error is None
    assert len(ex.close()) == 1
    assert ex.emitted == 3
    assert (ex.error is not None) is too_large


# --- cache writes kept for an hour ---------------------------------------------------------------

HOUR = Pricing(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5, cache_write_per_mtok=2.5,
               cache_write_1h_per_mtok=4.0)

LONG_CASES = [
    # pricing, input, cache read, cache write, of it for an hour, cost (no output)
    (HOUR, 1000, 400, 300, 100, Decimal("0.0017")),  # 300*2 + 400*0.5 + 200*2.5 + 100*4
    (HOUR, 1000, 400, 300, 0, Decimal("0.00155")),  # 300*2 + 400*0.5 + 300*2.5
    (HOUR, 1000, 400, 300, None, Decimal("0.00155")),
    (HOUR, 1000, 400, 300, 300, Decimal("0.002")),  # every write for an hour: 300*4
    (HOUR, 1000, 400, 300, 900, Decimal("0.002")),  # clamped to the writes
    (HOUR, 1000, 400, 300, -7, Decimal("0.00155")),  # negative: 0
    (HOUR, 1000, 400, 900, 900, Decimal("0.0026")),  # writes clamped to the 600 left, then the hour too
    (FULL, 1000, 400, 300, 100, Decimal("0.00155")),  # no hour price: the write price
    (PLAIN, 1000, 400, 300, 100, Decimal("0.002")),  # no cache prices at all: the input price
    (attrs.evolve(PLAIN, cache_write_1h_per_mtok=3.0), 1000, 0, 300, 100, Decimal("0.0021")),  # 900*2 + 100*3
]


@pytest.mark.parametrize(("pricing", "inp", "cached", "write", "long", "expected"), LONG_CASES)
def test_cost_of_cache_writes_for_an_hour(
    pricing: Pricing, inp: int, cached: int, write: int, long: int | None, expected: Decimal
) -> None:
    assert cost(pricing, inp, 0, cached, write, long) == expected


def test_hour_writes_go_from_the_tally_to_the_usage_and_its_dict() -> None:
    t = tally_of(Usage(1000, 0, cached_input_tokens=400, cache_write_tokens=300, cache_write_1h_tokens=100),
                 Usage(cache_write_tokens=300))  # a later event without the split keeps it
    assert t.cache_write_1h == 100
    got = settle(t, attrs.evolve(GPT.spec, pricing=HOUR), lambda: 99, ApproxTokenizer())
    assert got is not None
    assert (got.cache_write_1h_tokens, got.cost) == (100, Decimal("0.0017"))
    assert got.to_dict()["cache_write_1h_tokens"] == 100
    assert "cache_write_1h_tokens" not in Usage(1, 1).to_dict()


def test_a_usage_rule_reads_hour_writes_alone() -> None:
    from modelwire._manifest.model import Operator
    from modelwire._manifest.structure import converter
    from modelwire._runtime.mapping import EventMapper

    op = converter().structure({"path": "/x", "events": [{"emit": {"type": "usage", "cache_write_1h_tokens": "h"}}]},
                               Operator)
    mapper = EventMapper(compile_rules(op), {"model": "m", "provider": "p", "endpoint": "http://x/y"})
    assert mapper.feed(Frame('{"h": 7}')) == [Usage(cache_write_1h_tokens=7)]
    assert mapper.feed(Frame('{"x": 1}')) == []
