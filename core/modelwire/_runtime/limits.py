"""Limits: admit or reject one call locally (rpm, tpm) before any HTTP.

The model manifest's ``limits`` become a :class:`CallLimits`; the limiter
backend (a plugin: ``local`` or e.g. ``redis``) answers atomically, and
:func:`acquire` waits (mode ``wait``) or raises :class:`RateLimitError`.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import attrs

from .._errors import LimitExceededError, RateLimitError
from .._plugins.limiter import LimiterBackend

__all__ = ["CallLimits", "acquire", "acquire_slot", "check_context_window"]


@attrs.frozen
class CallLimits:
    """The limits one call is admitted under (from the model manifest)."""

    key: str
    rpm: int | None
    tpm: int | None
    mode: str
    wait_timeout: float | None


async def acquire(backend: LimiterBackend, limits: CallLimits, tokens: int, context: dict[str, Any]) -> Any:
    """Admit or reject (mode ``reject``) or wait up to ``wait_timeout`` (mode ``wait``).

    Returns the backend's ticket for :meth:`LimiterBackend.reconcile`.
    """
    deadline = None if limits.wait_timeout is None else anyio.current_time() + limits.wait_timeout
    while True:
        if backend.blocking:
            decision = await anyio.to_thread.run_sync(
                lambda: backend.try_acquire(limits.key, rpm=limits.rpm, tpm=limits.tpm, tokens=tokens)
            )
        else:
            decision = backend.try_acquire(limits.key, rpm=limits.rpm, tpm=limits.tpm, tokens=tokens)
        if decision.admitted:
            return decision.ticket
        wait = decision.retry_after
        if wait == float("inf"):
            raise RateLimitError(
                f"this request can never be admitted (rpm={limits.rpm}, tpm={limits.tpm}, {tokens} tokens)",
                code="TPM_TOO_SMALL", **context,
            )
        now = anyio.current_time()
        if limits.mode != "wait" or (deadline is not None and now + wait > deadline):
            what = f"rpm={limits.rpm}" if limits.rpm is not None else ""
            if limits.tpm is not None:
                what += f"{' ' if what else ''}tpm={limits.tpm}"
            raise RateLimitError(
                f"local limit reached ({what}); capacity frees in {wait:.2f}s",
                code="LOCAL_RATE_LIMIT", retry_after=wait, **context,
            )
        await anyio.sleep(max(wait, 0.001))


def check_context_window(prompt: int, max_tokens: int, window: int, tokenizer: str, context: dict[str, Any]) -> None:
    """A prompt plus the reply budget must fit the model's context window (checked before any HTTP)."""
    if prompt + max_tokens > window:
        raise LimitExceededError(
            f"prompt of ~{prompt} tokens (by {tokenizer}) plus max_tokens {max_tokens} "
            f"exceeds the context window of {window}",
            code="CONTEXT_WINDOW_EXCEEDED", **context,
        )


async def acquire_slot(
    sem: anyio.Semaphore, mode: str, wait_timeout: float | None, busy: str, context: dict[str, Any]
) -> None:
    """Take one of the model's concurrency slots: wait (mode ``wait``) or reject at once."""
    if mode == "wait":
        try:
            with anyio.fail_after(wait_timeout if wait_timeout is not None else math.inf):
                await sem.acquire()
        except TimeoutError:
            raise RateLimitError(busy, code="LOCAL_CONCURRENCY", **context) from None
    else:
        try:
            sem.acquire_nowait()
        except anyio.WouldBlock:
            raise RateLimitError(busy, code="LOCAL_CONCURRENCY", **context) from None
