"""Table-driven tests that pin the fallback policies and the local limiter backend exactly.

They kill mutmut's survivors in ``_plugins/policies.py`` and ``_plugins/limiter.py``
(see docs/testing.md, "Mutation testing"). Real objects only: the built-in
policies and :class:`modelwire.LocalLimiter` with an injected clock.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

import modelwire
from modelwire._manifest.model import Retry
from modelwire._plugins.policies import DefaultPolicy, RaisePolicy, decide
from modelwire.plugin import LIMIT_WINDOW, Admission, Attempt, Decision, full_jitter, retryable


def err(cls: type[modelwire.ModelError], status: int | None = None, retry_after: float | None = None,
        code: str | None = None) -> modelwire.ModelError:
    return cls("x", status=status, retry_after=retry_after, code=code)


# --- retryable ---------------------------------------------------------------------------------

RETRYABLE_CASES = [
    # error, retryable
    (err(modelwire.NetworkError), True),
    (err(modelwire.RequestTimeout), True),
    (err(modelwire.RateLimitError), True),
    (err(modelwire.ProviderDownError), True),
    (err(modelwire.InvalidRequestError), False),
    (err(modelwire.AuthError), False),
    (err(modelwire.ParseError), False),
    (err(modelwire.InternalError), False),
    (err(modelwire.InvalidRequestError, 408), True),  # the status decides, whatever the kind
    (err(modelwire.InvalidRequestError, 429), True),
    (err(modelwire.InvalidRequestError, 500), True),
    (err(modelwire.InvalidRequestError, 599), True),
    (err(modelwire.InvalidRequestError, 499), False),
    (err(modelwire.InvalidRequestError, 409), False),
    (err(modelwire.InvalidRequestError, 428), False),
    (err(modelwire.RateLimitError, 400), False),  # a retryable kind with a 4xx status is not
    (err(modelwire.NetworkError, 404), False),
    (err(modelwire.RateLimitError, 429, code="LOCAL_RATE_LIMIT"), False),  # local rejects never
    (err(modelwire.RateLimitError, code="LOCAL_RATE_LIMIT"), False),
    (err(modelwire.RateLimitError, 503, code="TPM_TOO_SMALL"), False),
    (err(modelwire.RateLimitError, code="LOCAL_CONCURRENCY"), True),
]


@pytest.mark.parametrize(("error", "expected"), RETRYABLE_CASES)
def test_retryable(error: modelwire.ModelError, expected: bool) -> None:
    assert retryable(error) is expected


# --- full_jitter -------------------------------------------------------------------------------


class Bounds:
    """An rng whose ``uniform`` returns the interval it was asked for (so the ceiling is observable)."""

    def uniform(self, a: float, b: float) -> tuple[float, float]:
        return (a, b)


JITTER_CASES = [
    # number, base, cap, ceiling
    (1, 0.5, 20.0, 0.5),
    (2, 0.5, 20.0, 1.0),
    (3, 0.5, 20.0, 2.0),
    (4, 0.5, 20.0, 4.0),
    (10, 0.5, 20.0, 20.0),  # capped
    (3, 0.5, 1.5, 1.5),
    (0, 0.5, 20.0, 0.5),  # never below the base ceiling
    (-3, 0.5, 20.0, 0.5),
]


@pytest.mark.parametrize(("number", "base", "cap", "ceiling"), JITTER_CASES)
def test_full_jitter_interval(number: int, base: float, cap: float, ceiling: float) -> None:
    assert full_jitter(number, base, cap, Bounds()) == (0.0, ceiling)  # type: ignore[arg-type]


@pytest.mark.parametrize(("number", "ceiling"), [(1, 0.5), (3, 2.0), (10, 20.0)])
def test_full_jitter_without_rng_stays_in_bounds(number: int, ceiling: float) -> None:
    for _ in range(200):
        assert 0.0 <= full_jitter(number, 0.5, 20.0) <= ceiling
    assert full_jitter(number, 0.0, 20.0) == 0.0


# --- DefaultPolicy -----------------------------------------------------------------------------

R = Retry(attempts=3, base_delay=0.5, max_delay=4.0, retry_after_cap=30.0)
NEXT = Retry(attempts=3, on_midstream="next")
PREFIX = Retry(attempts=3, on_midstream="prefix")
NET_FALLBACK = Retry(attempts=1, fallback_on=["network"])
RETRY = Decision("retry", 0.0)

DEFAULT_CASES = [
    # error, number, started, settings, next model, decision (delay None: jittered, checked separately)
    # never retried, never moved on
    (err(modelwire.InvalidRequestError, 429), 1, False, R, "b", Decision("raise")),
    (err(modelwire.AuthError, 500), 1, False, R, "b", Decision("raise")),
    (err(modelwire.AuthError, 500), 1, True, NEXT, "b", Decision("raise")),
    # before any event: retry while attempts last, Retry-After honoured up to the cap
    (err(modelwire.ProviderDownError, 503), 1, False, R, "b", None),
    (err(modelwire.ProviderDownError, 503), 2, False, R, "b", None),
    (err(modelwire.ProviderDownError, 503), 3, False, R, "b", Decision("next")),
    (err(modelwire.ProviderDownError, 503), 3, False, R, None, Decision("raise")),
    (err(modelwire.RateLimitError, 429, 2.0), 1, False, R, "b", Decision("retry", 2.0)),
    (err(modelwire.RateLimitError, 429, 30.0), 1, False, R, "b", Decision("retry", 30.0)),  # at the cap
    (err(modelwire.RateLimitError, 429, 30.5), 1, False, R, "b", Decision("next")),
    (err(modelwire.RateLimitError, 429, 30.5), 1, False, R, None, Decision("raise")),
    (err(modelwire.RateLimitError, 429, 0.0), 1, False, R, "b", Decision("retry", 0.0)),
    (err(modelwire.RateLimitError, 429, -5.0), 1, False, R, "b", Decision("retry", 0.0)),  # never negative
    (err(modelwire.NetworkError), 3, False, R, "b", Decision("raise")),  # network not in fallback_on
    (err(modelwire.NetworkError), 1, False, NET_FALLBACK, "b", Decision("next")),
    (err(modelwire.ParseError), 1, False, R, "b", Decision("raise")),  # not retryable, not in fallback_on
    (err(modelwire.RateLimitError, code="LOCAL_RATE_LIMIT"), 1, False, R, "b", Decision("next")),
    # after events reached the caller: on_midstream decides
    (err(modelwire.ProviderDownError, 503), 1, True, R, "b", Decision("raise")),
    (err(modelwire.ProviderDownError, 503), 1, True, NEXT, None, Decision("raise")),
    (err(modelwire.ProviderDownError, 503), 1, True, NEXT, "b", Decision("next")),
    (err(modelwire.ProviderDownError, 503), 1, True, PREFIX, "b", Decision("next", prefix=True)),
    (err(modelwire.NetworkError), 1, True, NEXT, "b", Decision("next")),  # retryable kind, not in fallback_on
    (err(modelwire.ParseError), 1, True, NEXT, "b", Decision("raise")),  # neither
    (err(modelwire.ParseError), 1, True, Retry(on_midstream="next", fallback_on=["parse"]), "b", Decision("next")),
]


@pytest.mark.parametrize(("error", "number", "started", "settings", "next_model", "expected"), DEFAULT_CASES)
def test_default_policy_decides(error: modelwire.ModelError, number: int, started: bool, settings: Retry,
                                next_model: str | None, expected: Decision | None) -> None:
    decision = DefaultPolicy().decide(error, Attempt("a", number, started, settings, next_model))
    if expected is None:
        ceiling = min(settings.max_delay, settings.base_delay * 2 ** (number - 1))
        assert (decision.action, decision.prefix) == ("retry", False)
        assert 0.0 <= decision.delay <= ceiling
    else:
        assert decision == expected


class Top:
    """An rng that always draws the top of the interval."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(("number", "delay"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)])
def test_default_policy_backoff_uses_its_rng(number: int, delay: float) -> None:
    settings = Retry(attempts=9, base_delay=0.5, max_delay=4.0)
    policy = DefaultPolicy(rng=Top())  # type: ignore[arg-type]
    decision = policy.decide(err(modelwire.ProviderDownError, 503), Attempt("a", number, False, settings, None))
    assert decision == Decision("retry", delay)


def test_decision_defaults() -> None:
    """A policy saying only ``Decision("retry")`` retries at once and never prefixes."""
    assert (Decision("retry").delay, Decision("next").prefix) == (0.0, False)
    assert Decision.raise_() == Decision("raise", 0.0, False)


# --- decide() and RaisePolicy ------------------------------------------------------------------


@pytest.mark.parametrize("started", [False, True])
@pytest.mark.parametrize("error", [err(modelwire.ProviderDownError, 503), err(modelwire.NetworkError)])
def test_raise_policy_always_raises(error: modelwire.ModelError, started: bool) -> None:
    assert RaisePolicy().decide(error, Attempt("a", 1, started, NEXT, "b")) == Decision("raise")


def test_decide_asks_objects_and_callables() -> None:
    seen: list[Any] = []

    def policy(error: modelwire.ModelError, attempt: Attempt) -> Decision:
        seen.append((error, attempt))
        return Decision("next")

    class Obj:
        def decide(self, error: modelwire.ModelError, attempt: Attempt) -> Decision:
            return Decision("retry", 1.5)

    error, attempt = err(modelwire.NetworkError), Attempt("a", 1, False, R, "b")
    assert decide(policy, error, attempt) == Decision("next")
    assert seen == [(error, attempt)]
    assert decide(Obj(), error, attempt) == Decision("retry", 1.5)


@pytest.mark.parametrize("returned", [None, "retry", ("retry", 0.0)])
def test_decide_rejects_a_non_decision(returned: Any) -> None:
    with pytest.raises(TypeError) as info:
        decide(lambda error, attempt: returned, err(modelwire.NetworkError), Attempt("a", 1, False, R, None))
    assert str(info.value) == f"fallback policy returned {returned!r}, not a Decision"


# --- LocalLimiter ------------------------------------------------------------------------------


class Clock:
    """A settable clock for :class:`modelwire.LocalLimiter`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# Steps: ("at", t) sets the clock; ("take", rpm, tpm, tokens, admitted, retry_after) calls
# try_acquire on key "k"; ("fix", n, tokens) reconciles the n-th admitted ticket.
LIMITER_CASES = [
    pytest.param([("take", 0, None, 1, False, float("inf"))], id="rpm-0-never"),
    pytest.param([("take", -1, None, 1, False, float("inf"))], id="rpm-negative-never"),
    pytest.param([("take", 1, None, 1, True, 0.0), ("take", 1, None, 1, False, 60.0)], id="rpm-1"),
    pytest.param([("take", 2, None, 1, True, 0.0), ("at", 15), ("take", 2, None, 1, True, 0.0),
                  ("at", 20), ("take", 2, None, 1, False, 40.0), ("take", 3, None, 1, True, 0.0),
                  ("take", 3, None, 1, False, 40.0)], id="rpm-waits-for-the-rpm-th-newest"),
    pytest.param([("take", None, 100, 100, True, 0.0), ("at", 1), ("take", None, 100, 1, False, 59.0)],
                 id="tpm-full"),
    pytest.param([("take", None, 100, 60, True, 0.0), ("at", 10), ("take", None, 100, 30, True, 0.0),
                  ("at", 20), ("take", None, 100, 70, False, 40.0)],
                 id="tpm-excess-equals-the-oldest-entry"),
    pytest.param([("take", None, 100, 60, True, 0.0), ("at", 10), ("take", None, 100, 30, True, 0.0),
                  ("at", 20), ("take", None, 100, 71, False, 50.0)],
                 id="tpm-excess-one-over-the-oldest-entry"),
    pytest.param([("take", 5, 100, 50, True, 0.0), ("at", 30), ("take", 5, 100, 10, True, 0.0),
                  ("at", 40), ("take", 1, 100, 45, False, 50.0)], id="rpm-wait-longer-than-tpm-wait"),
    pytest.param([("take", 5, 100, 50, True, 0.0), ("at", 30), ("take", 5, 100, 10, True, 0.0),
                  ("at", 40), ("take", 2, 100, 95, False, 50.0)], id="tpm-wait-longer-than-rpm-wait"),
    pytest.param([("take", None, 100, 101, False, float("inf")), ("take", None, 100, 100, True, 0.0)],
                 id="never-fits-takes-nothing"),
    pytest.param([("take", 1, None, 1, True, 0.0), ("at", 60), ("take", 1, None, 1, True, 0.0),
                  ("at", 119.5), ("take", 1, None, 1, False, 0.5)], id="window-slides"),
    pytest.param([("take", None, 100, 90, True, 0.0), ("fix", 0, 10), ("take", None, 100, 90, True, 0.0),
                  ("fix", 1, 91), ("take", None, 100, 0, False, 60.0)], id="reconcile-each-ticket"),
    pytest.param([("take", None, None, 5, True, 0.0), ("take", None, None, 10**9, True, 0.0)], id="no-limits"),
]


@pytest.mark.parametrize("steps", LIMITER_CASES)
def test_local_limiter(steps: list[tuple[Any, ...]]) -> None:
    clock = Clock()
    limiter = modelwire.LocalLimiter(clock=clock)
    tickets: list[Any] = []
    for step in steps:
        if step[0] == "at":
            clock.now = step[1]
        elif step[0] == "fix":
            limiter.reconcile("k", tickets[step[1]], step[2])
        else:
            _, rpm, tpm, tokens, admitted, retry_after = step
            got = limiter.try_acquire("k", rpm=rpm, tpm=tpm, tokens=tokens)
            assert isinstance(got, Admission)
            assert (got.admitted, got.retry_after) == (admitted, retry_after), step
            if admitted:
                assert isinstance(got.ticket, str) and got.ticket not in tickets
                tickets.append(got.ticket)
            else:
                assert got.ticket is None


def test_local_limiter_reconcile_of_an_unknown_key_or_ticket_is_a_no_op() -> None:
    limiter = modelwire.LocalLimiter(clock=Clock())
    limiter.reconcile("never-seen", "ticket", 5)
    first = limiter.try_acquire("k", rpm=None, tpm=10, tokens=5)
    limiter.reconcile("k", "another-ticket", 0)
    limiter.reconcile("other", first.ticket, 0)  # a ticket only counts under its own key
    assert not limiter.try_acquire("k", rpm=None, tpm=10, tokens=6).admitted
    assert limiter.try_acquire("k", rpm=None, tpm=10, tokens=5).admitted


def test_local_limiter_default_clock_is_monotonic() -> None:
    limiter = modelwire.LocalLimiter()
    assert limiter.try_acquire("k", rpm=1, tpm=None, tokens=1).admitted
    wait = limiter.try_acquire("k", rpm=1, tpm=None, tokens=1).retry_after
    assert LIMIT_WINDOW - 30 < wait <= LIMIT_WINDOW  # 30 s: a safety net, not a timing assumption
    assert limiter.blocking is False
    limiter.close()


def test_local_limiter_memory_stays_bounded() -> None:
    """Expired entries are dropped: a long-lived key does not grow (nor slow down) without bound."""
    clock = Clock()
    limiter = modelwire.LocalLimiter(clock=clock)
    tracemalloc.start()
    try:
        for i in range(2000):
            clock.now = i * LIMIT_WINDOW  # each request is alone in its window
            assert limiter.try_acquire("k", rpm=1, tpm=1000, tokens=10).admitted
            if i == 100:
                base = tracemalloc.get_traced_memory()[0]
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 50_000  # 1900 kept entries would be ~400 kB
