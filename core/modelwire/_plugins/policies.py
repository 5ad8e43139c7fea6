"""Fallback policies: for a typed error, retry (after a delay), go to the next
model of the chain, or raise.

A policy is a plugin (hook ``register_fallback_policies``): any object with
``decide(error, attempt) -> Decision``, or a plain callable with that
signature. The runtime owns the loop; the policy only decides, so the same
policy serves streaming and non-streaming calls, asyncio and trio.

Why no retry library (stamina, tenacity): those wrap a call and retry it.
Here each failure needs a three-way decision (retry / next model / raise)
that depends on whether text already reached the caller, on Retry-After and
on the model's chain; the backoff itself is two lines of full jitter (AWS
architecture blog, "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from .._errors import ModelError

__all__ = [
    "Attempt", "Decision", "DefaultPolicy", "FallbackPolicy", "RaisePolicy", "RetrySettings", "full_jitter", "retryable",
]

RETRYABLE_KINDS = frozenset({"network", "timeout", "rate_limit", "provider_down"})


class RetrySettings(Protocol):
    """The retry settings a policy reads (a model manifest's ``retry:`` block)."""

    @property
    def attempts(self) -> int: ...
    @property
    def base_delay(self) -> float: ...
    @property
    def max_delay(self) -> float: ...
    @property
    def retry_after_cap(self) -> float: ...
    @property
    def fallback_on(self) -> list[str]: ...
    @property
    def on_midstream(self) -> str: ...


@attrs.frozen
class Attempt:
    """What a policy knows about the failure it decides on."""

    model: str
    #: tries made on this model so far, this one included (1 on the first failure)
    number: int
    #: events of this attempt already reached the caller
    started: bool
    #: the model's ``retry:`` block (attempts, delays, fallback_on, on_midstream)
    settings: RetrySettings
    #: the model that would take over, or None at the end of the chain
    next_model: str | None


@attrs.frozen
class Decision:
    """``retry`` (after ``delay`` seconds), ``next`` model, or ``raise``."""

    action: Literal["retry", "next", "raise"]
    delay: float = 0.0
    #: with ``next`` after a started stream: resend with the partial answer as an assistant prefix
    prefix: bool = False

    @classmethod
    def raise_(cls) -> Decision:
        return cls("raise")


@runtime_checkable
class FallbackPolicy(Protocol):
    def decide(self, error: ModelError, attempt: Attempt) -> Decision: ...


def retryable(error: ModelError) -> bool:
    """Network, timeout, 408, 429 and 5xx are worth another try; a local reject is not."""
    if error.code == "LOCAL_RATE_LIMIT" or error.code == "TPM_TOO_SMALL":
        return False
    status = error.status
    if status is None:
        return error.kind in RETRYABLE_KINDS
    # With a status, the status decides: another 4xx stays wrong however often it is sent.
    return status in (408, 429) or status >= 500


def full_jitter(number: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """A uniform delay in [0, min(cap, base * 2**(number-1))]."""
    ceiling = min(cap, base * (2 ** max(0, number - 1)))
    return (rng or random).uniform(0.0, ceiling)


class DefaultPolicy:
    """The built-in ``default`` policy.

    Before any event reached the caller: retry retryable errors with full
    jitter backoff (Retry-After honoured up to ``retry_after_cap``) until
    ``attempts`` is spent, then move to the next model if the error's kind is
    in ``fallback_on``; never on invalid_request or auth. After events
    reached the caller: ``on_midstream`` decides (``raise`` by default).
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng

    def decide(self, error: ModelError, attempt: Attempt) -> Decision:
        s = attempt.settings
        if error.kind in ("invalid_request", "auth"):
            return Decision.raise_()
        if attempt.started:
            if s.on_midstream == "raise" or attempt.next_model is None:
                return Decision.raise_()
            if error.kind not in s.fallback_on and error.kind not in RETRYABLE_KINDS:
                return Decision.raise_()
            return Decision("next", prefix=s.on_midstream == "prefix")
        if retryable(error) and attempt.number < s.attempts:
            if error.retry_after is not None:
                if error.retry_after > s.retry_after_cap:
                    # Waiting that long is not a retry; let the chain decide.
                    return self._next_or_raise(error, attempt)
                return Decision("retry", delay=max(0.0, error.retry_after))
            return Decision("retry", delay=full_jitter(attempt.number, s.base_delay, s.max_delay, self._rng))
        return self._next_or_raise(error, attempt)

    @staticmethod
    def _next_or_raise(error: ModelError, attempt: Attempt) -> Decision:
        if attempt.next_model is not None and error.kind in attempt.settings.fallback_on:
            return Decision("next")
        return Decision.raise_()


def decide(policy: Any, error: ModelError, attempt: Attempt) -> Decision:
    """Ask a policy object or callable."""
    fn = getattr(policy, "decide", policy)
    decision = fn(error, attempt)
    if not isinstance(decision, Decision):
        raise TypeError(f"fallback policy returned {decision!r}, not a Decision")
    return decision


class RaisePolicy:
    """The built-in ``raise`` policy: no retry, no fallback (tests, batch jobs with their own retry)."""

    def decide(self, error: ModelError, attempt: Attempt) -> Decision:
        return Decision.raise_()

