"""Limits: admit or reject one call locally (rpm, tpm) before any HTTP.

The model manifest's ``limits`` become a :class:`CallLimits`; the limiter
backend (a plugin: ``local`` or e.g. ``redis``) answers atomically, and
:func:`acquire` waits (mode ``wait``) or raises :class:`RateLimitError`.
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from .._errors import RateLimitError
from .._plugins.limiter import LimiterBackend

__all__ = ["CallLimits", "acquire"]


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
