"""Usage semantics, currencies, the ``remember``/``recall`` rules and reasoning
sent back (issue 14): tables of cases, real loopback HTTP where a request is
involved, hypothesis over chunk boundaries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_real_streams import ANTHROPIC_CACHED, ANTHROPIC_WEB_SEARCH, GEMINI_THINKING, MISTRAL_PARTS

import modelwire
from modelwire import ReasoningDelta, Usage
from modelwire._frames import Frame
from modelwire._manifest.catalog import load_manifests
from modelwire._manifest.model import Pricing
from modelwire._runtime.exchange import Exchange
from modelwire._runtime.mapping import MAX_SLOT_TEXT, MAX_SLOTS, EventMapper, compile_rules
from modelwire._runtime.planning import plan
from modelwire._runtime.usage import Totals, cost
from modelwire.testing import ReplayServer, Script

pytestmark = pytest.mark.timeout(60)

P = Pricing(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3, cache_write_per_mtok=3.75)


@pytest.mark.parametrize(
    ("pricing", "inp", "out", "read", "write", "expected"),
    [
        # cost = uncached x input + read x read price + write x write price + output x output
        (P, 1_000_000, 0, 0, 0, "3"),
        (P, 1_000_000, 0, 1_000_000, 0, "0.3"),
        (P, 1_000_000, 0, 0, 1_000_000, "3.75"),
        (P, 1_000_000, 1_000_000, 400_000, 100_000, "1.5 + 0.12 + 0.375 + 15"),
        (P, 10, 0, 50, 50, "0.000003"),  # reads clamped to the prompt: never billed twice
        (P, 10, 0, 4, 50, "0.0000012 + 0.0000225"),  # writes clamped to what reads left
        (Pricing(input_per_mtok=2.0, output_per_mtok=8.0), 1_000_000, 0, 500_000, 500_000, "2"),  # no cache prices
        (None, 10, 10, 0, 0, None),
    ],
)
def test_cost(pricing: Pricing | None, inp: int, out: int, read: int, write: int, expected: str | None) -> None:
    want = None if expected is None else sum(Decimal(p) for p in expected.split(" + "))
    assert cost(pricing, inp, out, read, write) == want


def test_totals_keep_one_total_per_currency() -> None:
    t = Totals()
    assert t.cost == Decimal(0) and t.costs == {}
    t.add(Usage(10, 5, Decimal("0.5"), currency="USD", cached_input_tokens=4, cache_write_tokens=2,
                reasoning_tokens=3))
    t.add(Usage(1, 1, Decimal("0.25"), currency="USD"))
    assert t.cost == Decimal("0.75")
    assert (t.input_tokens, t.output_tokens, t.cached_input_tokens, t.cache_write_tokens, t.reasoning_tokens) == (
        11, 6, 4, 2, 3)
    t.add(Usage(1, 1, Decimal("7"), currency="EUR"))
    assert t.costs == {"USD": Decimal("0.75"), "EUR": Decimal("7")}
    with pytest.raises(modelwire.InvalidRequestError) as info:
        _ = t.cost
    assert info.value.code == "MIXED_CURRENCIES" and "EUR, USD" in info.value.message


CURRENCIES = """
version: 1
providers:
  p:
    base_url: ${P_BASE_URL}
    operators:
      generate:
        path: /chat/completions
        parser: sse
        request: "{model: model, messages: messages, stream: `true`, stream_options: {include_usage: `true`}}"
        events:
          - {data: "[DONE]", stop: true}
          - {each: "choices[].delta.content", emit: {type: text, text: "@"}}
          - {when: usage, emit: {type: usage, input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens}}
models:
  dollars: {provider: p, pricing: {input_per_mtok: 1.0, output_per_mtok: 1.0}}
  euros: {provider: p, pricing: {input_per_mtok: 1.0, output_per_mtok: 1.0, currency: EUR}}
"""


def test_runtime_totals_never_add_two_currencies(tmp_path: Any) -> None:
    (tmp_path / "m.yaml").write_text(CURRENCIES)
    with ReplayServer(seed=3) as server, modelwire.SyncRuntime.from_manifests(
        str(tmp_path / "m.yaml"), env={"P_BASE_URL": server.url_for("openai")}
    ) as rt:
        server.push(Script(text="a", usage=(1_000_000, 0)), Script(text="b", usage=(2_000_000, 0)))
        a, b = rt.generate("dollars", "x"), rt.generate("euros", "x")
        assert (a.usage.currency, b.usage.currency) == ("USD", "EUR")  # type: ignore[union-attr]
        assert Decimal(a.usage.to_dict()["cost"]) == 1 and b.usage.to_dict()["currency"] == "EUR"  # type: ignore[union-attr]
        assert rt.runtime.totals.costs == {"USD": Decimal(1), "EUR": Decimal(2)}
        with pytest.raises(modelwire.InvalidRequestError):
            _ = rt.runtime.totals.cost


def test_usage_json_shape() -> None:
    u = Usage(18762, 503, Decimal("0.0135057"), cached_input_tokens=18639, cache_write_tokens=120,
              reasoning_tokens=7, currency="USD")
    assert u.to_dict() == {"type": "usage", "input_tokens": 18762, "output_tokens": 503, "cost": "0.0135057",
                           "currency": "USD", "cached_input_tokens": 18639, "cache_write_tokens": 120,
                           "reasoning_tokens": 7}
    assert Usage(1, 1, Decimal("1E-9"), currency="USD").to_dict()["cost"] == "0.000000001"  # never 1E-9
    assert ReasoningDelta("t", 2, signature="sig").to_dict() == {"type": "reasoning", "index": 2, "text": "t",
                                                                 "signature": "sig"}


# -- remember / recall ------------------------------------------------------------
MEMORY = """
version: 1
providers:
  p:
    base_url: http://127.0.0.1:9
    operators:
      generate:
        path: /x
        parser: sse
        events:
          - {when: "kind == 'start'", remember: {key: slot, value: value}}
          - recall: {key: slot, into: kept}
            when: "kind == 'delta'"
            emit: {type: text, text: "join('', [to_json(kept), ':', text])"}
models:
  m: {provider: p}
"""


def _mapper(tmp_path: Any) -> EventMapper:
    (tmp_path / "m.yaml").write_text(MEMORY)
    p = plan(load_manifests(str(tmp_path / "m.yaml"), env={}), "m", "generate")
    return EventMapper(compile_rules(p.operator), p.context())


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([{"kind": "delta", "slot": 0, "text": "a"}], ["null:a"]),  # never remembered: null
        ([{"kind": "start", "slot": 0, "value": "tool_use"}, {"kind": "delta", "slot": 0, "text": "a"}],
         ['"tool_use":a']),
        ([{"kind": "start", "slot": 0, "value": "x"}, {"kind": "start", "slot": 0, "value": "y"},
          {"kind": "delta", "slot": 0, "text": "b"}, {"kind": "delta", "slot": 1, "text": "c"}],
         ['"y":b', "null:c"]),  # last value wins; slots are apart
        ([{"kind": "start", "slot": "id-1", "value": 5}, {"kind": "delta", "slot": "id-1", "text": "d"}], ["5:d"]),
        # a field named like the recalled one is shadowed by it
        ([{"kind": "delta", "slot": 3, "text": "e", "kept": "forged"}], ["null:e"]),
    ],
)
def test_remember_recall(tmp_path: Any, reference: bool, frames: list[dict[str, Any]], expected: list[str]) -> None:
    m = _mapper(tmp_path)
    feed = m.feed_reference if reference else m.feed
    got = [ev.text for f in frames for ev in feed(Frame(json.dumps(f), None))]  # type: ignore[attr-defined]
    assert got == expected


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([{"kind": "start", "slot": i, "value": "t"} for i in range(MAX_SLOTS + 1)], "STREAM_STATE_LIMIT"),
        ([{"kind": "start", "slot": 0, "value": "x" * (MAX_SLOT_TEXT + 1)}], "STREAM_STATE_LIMIT"),
        ([{"kind": "start", "slot": 0, "value": {"a": 1}}], "STREAM_STATE_INVALID"),
        ([{"kind": "start", "slot": [1], "value": "t"}], "STREAM_STATE_INVALID"),
    ],
)
def test_remember_is_bounded(tmp_path: Any, frames: list[dict[str, Any]], code: str) -> None:
    m = _mapper(tmp_path)
    with pytest.raises(modelwire.ParseError) as info:
        for f in frames:
            m.feed(Frame(json.dumps(f), None))
    assert info.value.code == code
    assert m.context["model"] in str(info.value)


def test_remember_overwrites_within_the_bound(tmp_path: Any) -> None:
    m = _mapper(tmp_path)
    for _ in range(3):
        for i in range(MAX_SLOTS):  # the same slots again and again: no growth, no error
            m.feed(Frame(json.dumps({"kind": "start", "slot": i, "value": "t"}), None))


# -- chunk boundaries ---------------------------------------------------------------
CATALOG = load_manifests("builtin:anthropic", "builtin:gemini", "builtin:openai-compatible",
                         env={"ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"})
BODIES = [("claude-sonnet-4-5", ANTHROPIC_WEB_SEARCH), ("claude-sonnet-4-5", ANTHROPIC_CACHED),
          ("gemini-2.5-flash", GEMINI_THINKING), ("openai-compatible/magistral", MISTRAL_PARTS)]


def _events(model: str, chunks: list[bytes]) -> list[Any]:
    p = plan(CATALOG, model, "generate")
    ex = Exchange(modelwire.get_parser(p.operator.parser or "sse"), compile_rules(p.operator), p.context())
    out = [ev for c in chunks for ev in ex.feed(c)] + ex.close()
    ex.raise_error()
    return [*out, ex.tally.input_tokens, ex.tally.output_tokens, ex.tally.cached, ex.tally.cache_write]


@pytest.mark.parametrize(("model", "body"), BODIES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_events_do_not_depend_on_chunk_boundaries(model: str, body: bytes, data: Any) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=12)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    assert _events(model, chunks) == _events(model, [body])


# -- reasoning sent back (Anthropic requires thinking blocks with their signature) ---
@pytest.fixture(scope="module")
def anthropic_rt() -> Iterator[tuple[ReplayServer, modelwire.SyncRuntime]]:
    with ReplayServer(seed=9) as server, modelwire.SyncRuntime.from_manifests(
        "builtin:anthropic", env={"ANTHROPIC_BASE_URL": server.url_for("anthropic"), "ANTHROPIC_API_KEY": "k"}
    ) as rt:
        yield server, rt


def test_reasoning_is_sent_back_to_anthropic(anthropic_rt: tuple[ReplayServer, modelwire.SyncRuntime]) -> None:
    server, rt = anthropic_rt
    previous = {
        "role": "assistant", "content": "Paris.",
        "reasoning": [{"text": "The capital...", "signature": "EqQBCgIYAhIM"}, {"redacted": "EmwKAhgBEgy3"}],
        "tool_calls": [{"id": "toolu_1", "name": "f", "arguments": "{}"}],
    }
    server.push(Script(text="ok"))
    rt.generate("claude-sonnet-4-5", messages=[{"role": "user", "content": "capital?"}, previous,
                                               {"role": "tool", "tool_call_id": "toolu_1", "content": "1"}])
    sent = server.requests[-1].json["messages"][1]
    assert sent == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "The capital...", "signature": "EqQBCgIYAhIM"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
        {"type": "text", "text": "Paris."},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    ]}


def test_response_message_round_trips(anthropic_rt: tuple[ReplayServer, modelwire.SyncRuntime]) -> None:
    from test_real_streams import reply, sse

    server, rt = anthropic_rt
    body = sse(
        ("message_start", {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant",
                           "content": [], "model": "c", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Hmm, "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "two."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIMsig"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "text_delta", "text": "2"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 30}}),
        ("message_stop", {"type": "message_stop"}),
    )
    server.push(reply(body), Script(text="ok"))
    first = rt.generate("claude-sonnet-4-5", "1+1?")
    assert (first.text, first.reasoning) == ("2", "Hmm, two.")
    rt.generate("claude-sonnet-4-5", messages=[{"role": "user", "content": "1+1?"}, first.message(),
                                               {"role": "user", "content": "sure?"}])
    assert server.requests[-1].json["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Hmm, two.", "signature": "EqQBCgIYAhIMsig"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
        {"type": "text", "text": "2"},
    ]
