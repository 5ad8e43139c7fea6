"""Table-driven tests that pin the money path's exact behaviour (they kill mutmut's survivors).

Real objects only: :class:`modelwire.LocalLimiter` with an injected clock, and
trio's ``MockClock`` (autojump) so waits are observed as virtual time, never slept.
See docs/testing.md, "Mutation testing".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import anyio
import attrs
import pytest
import trio.testing

import modelwire
from modelwire._events import Done, TextDelta, ToolCallDelta, Usage
from modelwire._manifest.model import Pricing
from modelwire._plugins.tokenizers import ApproxTokenizer
from modelwire._runtime.exchange import Exchange, Tally
from modelwire._runtime.limits import CallLimits, acquire, acquire_slot, check_context_window
from modelwire._runtime.mapping import compile_rules
from modelwire._runtime.planning import plan
from modelwire._runtime.usage import Totals, cost, settle, tokenizer_name

CONTEXT = {"provider": "prov", "model": "mod", "endpoint": "https://example.invalid/v1"}
START = 1000.0  # virtual time the tests start at (not 0, so `+` / `-` on the clock differ)


def run_virtual(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``fn`` under trio with a mock clock that jumps over every sleep."""
    return anyio.run(fn, backend="trio", backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)})


class ThreadedLocalLimiter(modelwire.LocalLimiter):
    """The local limiter declared blocking, so :func:`acquire` calls it in a worker thread."""

    blocking = True


def limits(rpm: int | None, tpm: int | None, mode: str = "reject", wait_timeout: float | None = None) -> CallLimits:
    return CallLimits(key="k", rpm=rpm, tpm=tpm, mode=mode, wait_timeout=wait_timeout)


# --- acquire: rejection (both backend kinds, fixed clock) ---------------------------------------

REJECT_CASES = [
    # rpm, tpm, tokens per call, message of the second call's rejection
    (1, None, 10, "local limit reached (rpm=1); capacity frees in 60.00s"),
    (None, 100, 60, "local limit reached (tpm=100); capacity frees in 60.00s"),
    (1, 100, 10, "local limit reached (rpm=1 tpm=100); capacity frees in 60.00s"),
    (5, 100, 60, "local limit reached (rpm=5 tpm=100); capacity frees in 60.00s"),
]


@pytest.mark.parametrize("blocking", [False, True])
@pytest.mark.parametrize(("rpm", "tpm", "tokens", "message"), REJECT_CASES)
def test_acquire_rejects_second_call_naming_the_limits(
    blocking: bool, rpm: int | None, tpm: int | None, tokens: int, message: str
) -> None:
    backend = (ThreadedLocalLimiter if blocking else modelwire.LocalLimiter)(clock=lambda: 500.0)
    lim = limits(rpm, tpm)

    async def main() -> tuple[Any, modelwire.RateLimitError, float]:
        await anyio.sleep(START)
        ticket = await acquire(backend, lim, tokens, CONTEXT)
        with pytest.raises(modelwire.RateLimitError) as info:
            await acquire(backend, lim, tokens, CONTEXT)
        return ticket, info.value, anyio.current_time()

    ticket, err, now = run_virtual(main)
    assert isinstance(ticket, str) and len(ticket) == 32
    assert err.message == message
    assert err.code == "LOCAL_RATE_LIMIT"
    assert err.retry_after == 60.0
    assert (err.provider, err.model, err.endpoint) == (CONTEXT["provider"], CONTEXT["model"], CONTEXT["endpoint"])
    assert now == START  # rejected at once, no wait


TOO_SMALL_CASES = [
    # rpm, tpm, tokens, mode, message
    (None, 10, 11, "reject", "this request can never be admitted (rpm=None, tpm=10, 11 tokens)"),
    (None, 10, 11, "wait", "this request can never be admitted (rpm=None, tpm=10, 11 tokens)"),
    (0, None, 1, "wait", "this request can never be admitted (rpm=0, tpm=None, 1 tokens)"),
    (3, 5, 6, "reject", "this request can never be admitted (rpm=3, tpm=5, 6 tokens)"),
]


@pytest.mark.parametrize("blocking", [False, True])
@pytest.mark.parametrize(("rpm", "tpm", "tokens", "mode", "message"), TOO_SMALL_CASES)
def test_acquire_never_admissible_raises_tpm_too_small(
    blocking: bool, rpm: int | None, tpm: int | None, tokens: int, mode: str, message: str
) -> None:
    backend = (ThreadedLocalLimiter if blocking else modelwire.LocalLimiter)(clock=lambda: 500.0)

    async def main() -> tuple[modelwire.RateLimitError, float]:
        await anyio.sleep(START)
        with pytest.raises(modelwire.RateLimitError) as info:
            await acquire(backend, limits(rpm, tpm, mode, wait_timeout=None), tokens, CONTEXT)
        return info.value, anyio.current_time()

    err, now = run_virtual(main)
    assert err.message == message
    assert err.code == "TPM_TOO_SMALL"
    assert err.retry_after is None
    assert (err.provider, err.model) == ("prov", "mod")
    assert now == START


@pytest.mark.parametrize("blocking", [False, True])
def test_acquire_counts_per_key(blocking: bool) -> None:
    backend = (ThreadedLocalLimiter if blocking else modelwire.LocalLimiter)(clock=lambda: 0.0)

    async def main() -> list[str]:
        got = []
        for key in ("a", "b", "a"):
            try:
                ticket = await acquire(backend, CallLimits(key, 1, None, "reject", None), 1, CONTEXT)
                got.append(f"admitted {len(ticket)}")
            except modelwire.RateLimitError as exc:
                got.append(exc.code)
        return got

    # the key reaches the backend: "b" has its own minute, the second "a" does not
    assert run_virtual(main) == ["admitted 32", "admitted 32", "LOCAL_RATE_LIMIT"]


def test_acquire_exactly_at_tpm_is_admitted() -> None:
    backend = modelwire.LocalLimiter(clock=lambda: 0.0)

    async def main() -> Any:
        return await acquire(backend, limits(None, 10), 10, CONTEXT)

    assert isinstance(run_virtual(main), str)


# --- acquire: waiting (mock clock shared by the limiter and anyio) ------------------------------

WAIT_CASES = [
    # mode, wait_timeout, admitted after (virtual seconds) or None: rejected at once
    ("wait", None, 60.0),
    ("wait", 60.0, 60.0),  # now + wait == deadline: still waits
    ("wait", 120.0, 60.0),
    ("wait", 59.999, None),  # now + wait > deadline: rejected without waiting
    ("wait", 0.0, None),
    ("reject", None, None),
    ("reject", 120.0, None),
]


@pytest.mark.parametrize(("mode", "wait_timeout", "after"), WAIT_CASES)
def test_acquire_waits_up_to_the_timeout(mode: str, wait_timeout: float | None, after: float | None) -> None:
    backend = modelwire.LocalLimiter(clock=anyio.current_time)
    lim = limits(1, None, mode, wait_timeout)

    async def main() -> tuple[Any, float]:
        await anyio.sleep(START)
        await acquire(backend, lim, 1, CONTEXT)
        try:
            ticket = await acquire(backend, lim, 1, CONTEXT)
        except modelwire.RateLimitError as exc:
            assert exc.code == "LOCAL_RATE_LIMIT"
            assert exc.retry_after == 60.0
            ticket = None
        return ticket, anyio.current_time() - START

    ticket, elapsed = run_virtual(main)
    if after is None:
        assert ticket is None
        assert elapsed == 0.0
    else:
        assert isinstance(ticket, str)
        assert elapsed == after


def test_acquire_sleeps_at_least_a_millisecond() -> None:
    """A retry_after below 1 ms sleeps 1 ms (not a busy loop, not longer)."""
    backend = modelwire.LocalLimiter(clock=anyio.current_time)
    lim = limits(1, None, "wait", None)

    async def main() -> float:
        await acquire(backend, lim, 1, CONTEXT)  # admitted at START
        await anyio.sleep(59.9995)  # capacity frees in 0.0005 s
        await acquire(backend, lim, 1, CONTEXT)
        return anyio.current_time()

    async def outer() -> float:
        await anyio.sleep(START)
        start = anyio.current_time()
        return await main() - start

    assert run_virtual(outer) == pytest.approx(60.0005, abs=1e-6)


def test_acquire_waits_for_tokens_to_leave_the_window() -> None:
    backend = modelwire.LocalLimiter(clock=anyio.current_time)
    lim = limits(None, 100, "wait", 300.0)

    async def main() -> list[float]:
        await anyio.sleep(START)
        times = []
        for _ in range(3):
            await acquire(backend, lim, 40, CONTEXT)
            times.append(anyio.current_time() - START)
            await anyio.sleep(10)
        return times

    # 40 + 40 fit; the third waits until the first leaves the window (at 60 s)
    assert run_virtual(main) == [0.0, 10.0, 60.0]


# --- acquire_slot ------------------------------------------------------------------------------

SLOT_CASES = [
    # mode, wait_timeout, slot held by another task until t=7 (virtual), outcome, elapsed
    ("wait", None, False, "ok", 0.0),
    ("wait", 5.0, False, "ok", 0.0),
    ("reject", None, False, "ok", 0.0),
    ("reject", 5.0, False, "ok", 0.0),
    ("wait", None, True, "ok", 7.0),
    ("wait", 10.0, True, "ok", 7.0),
    ("wait", 7.0, True, "busy", 7.0),  # fail_after(7) fires before the release at 7
    ("wait", 5.0, True, "busy", 5.0),
    ("wait", 0.0, True, "busy", 0.0),
    ("reject", None, True, "busy", 0.0),
    ("reject", 10.0, True, "busy", 0.0),
]


@pytest.mark.parametrize(("mode", "wait_timeout", "held", "outcome", "elapsed"), SLOT_CASES)
def test_acquire_slot(mode: str, wait_timeout: float | None, held: bool, outcome: str, elapsed: float) -> None:
    async def main() -> tuple[str, float, int, BaseException | None]:
        await anyio.sleep(START)
        sem = anyio.Semaphore(1)
        result: list[Any] = []
        async with anyio.create_task_group() as tg:
            if held:
                await sem.acquire()

                async def release() -> None:
                    await anyio.sleep(7)
                    sem.release()

                tg.start_soon(release)
            t0 = anyio.current_time()
            try:
                await acquire_slot(sem, mode, wait_timeout, "model mod is busy (1 concurrent calls)", CONTEXT)
                result = ["ok", anyio.current_time() - t0, sem.value, None]
            except modelwire.RateLimitError as exc:
                result = ["busy", anyio.current_time() - t0, sem.value, exc]
        return tuple(result)  # type: ignore[return-value]

    got, took, value, err = run_virtual(main)
    assert (got, took) == (outcome, elapsed)
    if outcome == "ok":
        assert value == 0  # the slot is ours
    else:
        assert isinstance(err, modelwire.RateLimitError)
        assert err.message == "model mod is busy (1 concurrent calls)"
        assert err.code == "LOCAL_CONCURRENCY"
        assert (err.provider, err.model, err.endpoint) == ("prov", "mod", CONTEXT["endpoint"])
        assert err.__cause__ is None and err.__suppress_context__


# --- check_context_window ----------------------------------------------------------------------

WINDOW_CASES = [
    # prompt, max_tokens, window, rejected
    (100, 28, 128, False),  # exactly the window: admitted
    (100, 29, 128, True),
    (128, 0, 128, False),
    (0, 128, 128, False),
    (0, 129, 128, True),
    (129, 0, 128, True),
    (1, 1, 1, True),
]


@pytest.mark.parametrize(("prompt", "max_tokens", "window", "rejected"), WINDOW_CASES)
def test_check_context_window(prompt: int, max_tokens: int, window: int, rejected: bool) -> None:
    if not rejected:
        assert check_context_window(prompt, max_tokens, window, "approx", CONTEXT) is None
        return
    with pytest.raises(modelwire.LimitExceededError) as info:
        check_context_window(prompt, max_tokens, window, "o200k_base", CONTEXT)
    err = info.value
    assert err.message == (
        f"prompt of ~{prompt} tokens (by o200k_base) plus max_tokens {max_tokens} "
        f"exceeds the context window of {window}"
    )
    assert err.code == "CONTEXT_WINDOW_EXCEEDED"
    assert (err.provider, err.model, err.endpoint) == ("prov", "mod", CONTEXT["endpoint"])


# --- usage: cost, Totals, settle, tokenizer_name -----------------------------------------------

PRICED = Pricing(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
UNCACHED = Pricing(input_per_mtok=2.0, output_per_mtok=8.0)

COST_CASES = [
    # pricing, input, output, cached, cost
    (None, 1000, 500, None, None),
    (None, None, None, None, None),
    (PRICED, 1000, 500, None, Decimal("0.006")),
    (PRICED, 1000, 500, 400, Decimal("0.0054")),  # 600*2 + 400*0.5 + 500*8
    (PRICED, 1000, 500, 2000, Decimal("0.0045")),  # cached capped at input
    (PRICED, 1000, 500, 1000, Decimal("0.0045")),
    (PRICED, None, 500, 400, Decimal("0.004")),  # no input: no cached part either
    (PRICED, 1000, None, 400, Decimal("0.0014")),
    (PRICED, None, None, None, Decimal("0")),
    (PRICED, 1, 0, 0, Decimal("0.000002")),
    (UNCACHED, 1000, 500, 400, Decimal("0.006")),  # no cached price: the input price
    (Pricing(input_per_mtok=0.1, output_per_mtok=0.3), 3, 7, None, Decimal("0.0000024")),
]


@pytest.mark.parametrize(("pricing", "inp", "out", "cached", "expected"), COST_CASES)
def test_cost(pricing: Pricing | None, inp: int | None, out: int | None, cached: int | None, expected: Decimal | None) -> None:
    got = cost(pricing, inp, out, cached)
    assert got == expected
    if expected is not None:
        assert isinstance(got, Decimal)


def test_cost_cached_defaults_to_none() -> None:
    assert cost(PRICED, 1000, 500) == Decimal("0.006")


def test_totals_add() -> None:
    t = Totals()
    assert (t.calls, t.input_tokens, t.output_tokens, t.cost, t.fallbacks) == (0, 0, 0, Decimal(0), 0)
    t.add(Usage(None, 5, None))
    assert (t.calls, t.input_tokens, t.output_tokens, t.cost) == (1, 0, 5, Decimal(0))
    t.add(Usage(3, None, Decimal("0.5")))
    assert (t.calls, t.input_tokens, t.output_tokens, t.cost) == (2, 3, 5, Decimal("0.5"))
    t.add(Usage(4, 6, Decimal("0.25")))
    assert (t.calls, t.input_tokens, t.output_tokens, t.cost) == (3, 7, 11, Decimal("0.75"))


CATALOG = modelwire.load_manifests("builtin:*", env={})
GPT = plan(CATALOG, "gpt-4.1", "generate")


class Named:
    name = "named-tok"


class Unnamed:
    name = ""


@pytest.mark.parametrize(
    ("tokenizer", "spec_tokenizer", "expected"),
    [
        (Named(), "o200k_base", "named-tok"),
        (Unnamed(), "o200k_base", "o200k_base"),
        (object(), "o200k_base", "o200k_base"),
        (None, None, "approx"),
        (Unnamed(), None, "approx"),
        (ApproxTokenizer(), None, "approx"),
    ],
)
def test_tokenizer_name(tokenizer: Any, spec_tokenizer: str | None, expected: str) -> None:
    spec = attrs.evolve(GPT.spec, tokenizer=spec_tokenizer)
    assert tokenizer_name(tokenizer, spec) == expected


def tally_of(*events: Any) -> Tally:
    t = Tally()
    t.take(list(events))
    return t


SETTLE_CASES = [
    # tally, pricing, prompt_tokens, tokenizer, expected Usage
    (tally_of(Usage(10, 4)), PRICED, lambda: 99, ApproxTokenizer(),
     Usage(10, 4, Decimal("0.000052"), cached_input_tokens=None, estimated=False, currency="USD")),
    (tally_of(Usage(10, 4, cached_input_tokens=6)), PRICED, lambda: 99, ApproxTokenizer(),
     Usage(10, 4, Decimal("0.000043"), cached_input_tokens=6, estimated=False, currency="USD")),
    (tally_of(Usage(None, 4)), None, lambda: 99, ApproxTokenizer(),
     Usage(None, 4, None, cached_input_tokens=None, estimated=False)),
    (tally_of(Usage(7, None)), None, lambda: 99, ApproxTokenizer(),
     Usage(7, None, None, cached_input_tokens=None, estimated=False)),
    (tally_of(TextDelta("hello world")), PRICED, lambda: 12, ApproxTokenizer(),
     Usage(12, ApproxTokenizer().count("hello world"),
           cost(PRICED, 12, ApproxTokenizer().count("hello world")), cached_input_tokens=None, estimated=True,
           currency="USD")),
    (tally_of(TextDelta("hello"), Usage(cached_input_tokens=3)), None, lambda: 12, ApproxTokenizer(),
     Usage(12, ApproxTokenizer().count("hello"), None, cached_input_tokens=3, estimated=True)),
    (tally_of(TextDelta("hello")), PRICED, None, ApproxTokenizer(), None),
    (tally_of(TextDelta("hello")), PRICED, lambda: 12, None, None),
    (tally_of(), PRICED, None, None, None),
]


@pytest.mark.parametrize(("tally", "pricing", "prompt_tokens", "tokenizer", "expected"), SETTLE_CASES)
def test_settle(tally: Tally, pricing: Pricing | None, prompt_tokens: Any, tokenizer: Any, expected: Usage | None) -> None:
    spec = attrs.evolve(GPT.spec, pricing=pricing)
    got = settle(tally, spec, prompt_tokens, tokenizer)
    assert got == expected
    if got is not None:
        assert got.estimated is expected.estimated  # type: ignore[union-attr]
        assert got.cached_input_tokens == expected.cached_input_tokens  # type: ignore[union-attr]


def test_settle_counts_text_and_tool_arguments() -> None:
    t = tally_of(TextDelta("ab"), ToolCallDelta(0, arguments='{"x": 1}'), TextDelta("cd"))
    got = settle(t, attrs.evolve(GPT.spec, pricing=None), lambda: 5, ApproxTokenizer())
    assert got == Usage(5, ApproxTokenizer().count('ab{"x": 1}cd'), None, estimated=True)


# --- Tally.take --------------------------------------------------------------------------------


def test_tally_passes_events_on_and_holds_usage_back() -> None:
    t = Tally()
    assert (t.input_tokens, t.output_tokens, t.cached, t.produced, t.reported) == (None, None, None, [], False)
    text, tool, empty_tool = TextDelta("a"), ToolCallDelta(0, arguments="{}"), ToolCallDelta(0, name="f")
    out = t.take([text, Usage(cached_input_tokens=2), tool, empty_tool, Done()])
    assert out == [text, tool, empty_tool]
    assert t.produced == ["a", "{}"]  # cached alone is not "reported"
    assert (t.cached, t.reported) == (2, False)


TAKE_CASES = [
    # events, (input, output, cached), produced after
    ([TextDelta("a"), Usage(1, 2), TextDelta("b")], (1, 2, None), []),
    ([TextDelta("a"), Usage(None, 2), ToolCallDelta(0, arguments="{}")], (None, 2, None), []),
    ([TextDelta("a"), Usage(1, None)], (1, None, None), []),
    ([Usage(1, 2, cached_input_tokens=1), Usage(None, 5), Usage(3, None)], (3, 5, 1), []),
    ([Usage(1, 2, cached_input_tokens=1), Usage(cached_input_tokens=0)], (1, 2, 0), []),
    ([TextDelta("a"), TextDelta("b"), ToolCallDelta(0, arguments="")], (None, None, None), ["a", "b"]),
    ([TextDelta("a"), Usage(), TextDelta("b")], (None, None, None), ["a", "b"]),
]


@pytest.mark.parametrize(("events", "counts", "produced"), TAKE_CASES)
def test_tally_take(events: list[Any], counts: tuple[Any, ...], produced: list[str]) -> None:
    t = Tally()
    out = t.take(events)
    assert (t.input_tokens, t.output_tokens, t.cached) == counts
    assert t.produced == produced
    assert out == [e for e in events if not isinstance(e, (Usage, Done))]
    assert t.reported is (counts[0] is not None or counts[1] is not None)


# --- Exchange budgets, raise_error, close ------------------------------------------------------

OPENAI = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)


def exchange(**kw: Any) -> Exchange:
    return Exchange(modelwire.get_parser(GPT.operator.parser), compile_rules(GPT.operator), GPT.context(), **kw)


N_EVENTS = len(exchange().feed(OPENAI))


def test_exchange_defaults() -> None:
    ex = exchange()
    assert (ex.max_bytes, ex.max_events, ex.received, ex.emitted, ex.content_type, ex.error) == (
        None, None, 0, 0, "", None,
    )
    assert ex.context == GPT.context()
    assert not ex.stopped
    ex.raise_error()  # nothing to raise
    assert ex.feed(OPENAI) and ex.stopped
    assert (ex.received, ex.emitted) == (len(OPENAI), N_EVENTS)
    assert (ex.tally.input_tokens, ex.tally.output_tokens) == (3, 2)
    assert ex.close() == []


@pytest.mark.parametrize(("budget", "too_large"), [(len(OPENAI), False), (len(OPENAI) + 1, False), (len(OPENAI) - 1, True)])
def test_exchange_max_bytes_boundary(budget: int, too_large: bool) -> None:
    ex = exchange(max_bytes=budget)
    first, rest = OPENAI[:10], OPENAI[10:]
    assert ex.feed(first) == []
    assert ex.received == 10
    if not too_large:
        assert len(ex.feed(rest)) == N_EVENTS
        ex.raise_error()
        assert ex.received == len(OPENAI)
        return
    with pytest.raises(modelwire.LimitExceededError) as info:
        ex.feed(rest)
    assert info.value.message == f"the response passed its budget of {budget} bytes; stopped reading"
    assert info.value.code == "STREAM_TOO_LARGE"
    assert (info.value.model, info.value.provider) == ("gpt-4.1", GPT.provider_name)


@pytest.mark.parametrize(("budget", "too_large"), [(N_EVENTS, False), (N_EVENTS + 1, False), (N_EVENTS - 1, True)])
def test_exchange_max_events_boundary(budget: int, too_large: bool) -> None:
    ex = exchange(max_events=budget)
    out = ex.feed(OPENAI)
    assert len(out) == N_EVENTS  # the events before the error are passed on
    assert ex.emitted == N_EVENTS
    if not too_large:
        assert ex.error is None
        ex.raise_error()
        return
    assert isinstance(ex.error, modelwire.LimitExceededError)
    with pytest.raises(modelwire.LimitExceededError) as info:
        ex.raise_error()
    assert info.value is ex.error
    assert info.value.message == f"the response passed its budget of {budget} events; stopped reading"
    assert info.value.code == "STREAM_TOO_LARGE"
    assert info.value.model == "gpt-4.1"


def test_exchange_in_stream_error_is_kept_not_counted() -> None:
    ex = exchange(max_events=0)
    out = ex.feed(b'data: {"choices":[{"index":0,"delta":{"content":"p"}}]}\n\n'
                  b'data: {"error":{"code":"server_error","message":"bad"}}\n\n')
    assert [type(e) for e in out] == [TextDelta]
    assert ex.emitted == 0  # the error path returns before counting
    assert ex.error is not None and ex.error.code != "STREAM_TOO_LARGE"
    with pytest.raises(modelwire.ModelError):
        ex.raise_error()


TRUNCATED_CASES = [
    # body, content type, what the message says
    (b"", "", "an empty body"),
    (b"", "text/event-stream", "an empty body of text/event-stream"),
    (OPENAI[:57], "", "57 bytes"),
    (OPENAI[:57], "text/event-stream; charset=utf-8", "57 bytes of text/event-stream"),
    (OPENAI[:57], " text/html ;x=1", "57 bytes of text/html"),
]


@pytest.mark.parametrize(("body", "content_type", "what"), TRUNCATED_CASES)
def test_exchange_close_truncated(body: bytes, content_type: str, what: str) -> None:
    ex = exchange(content_type=content_type)
    ex.feed(body)
    with pytest.raises(modelwire.NetworkError) as info:
        ex.close()
    assert info.value.message == f"the stream ended before its end marker (after {what}); the answer is incomplete"
    assert info.value.code == "STREAM_TRUNCATED"
    assert (info.value.model, info.value.endpoint) == ("gpt-4.1", GPT.url)


def test_tally_keeps_events_after_done() -> None:
    after = TextDelta("x")
    assert Tally().take([Done(), after]) == [after]


def test_exchange_counts_events_across_chunks() -> None:
    ex = exchange()
    cut = OPENAI.index(b"\n\n") + 2  # after the first frame
    first = ex.feed(OPENAI[:cut])
    rest = ex.feed(OPENAI[cut:])
    assert (len(first), ex.emitted) == (1, N_EVENTS)
    assert len(first) + len(rest) == N_EVENTS
