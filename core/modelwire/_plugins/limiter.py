"""Local admission: rpm, tpm and concurrency, before any HTTP.

A *limiter backend* answers one question, atomically: may a request costing
``tokens`` start now under ``rpm`` / ``tpm`` for ``key``? Backends are
plugins (hook ``register_limiters``): ``local`` (this process, built in) and
e.g. ``redis`` (``modelwire-redis``, shared by many processes). Backends are
synchronous; the runtime calls a backend whose ``blocking`` is true in a
worker thread, so one implementation serves asyncio and trio.

Windows are sliding: a request counts for 60 seconds after it was admitted.
Tokens are reserved up front (prompt estimate plus max_tokens) and reconciled
with the provider-reported usage afterwards.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = ["WINDOW", "Admission", "LimiterBackend", "LocalLimiter"]

#: seconds a request (and its tokens) counts against rpm / tpm after admission
WINDOW = 60.0


@attrs.frozen
class Admission:
    """What a backend returns: admitted or not, when to try again, and a ticket."""

    admitted: bool
    retry_after: float = 0.0
    ticket: Any = None


@runtime_checkable
class LimiterBackend(Protocol):
    """A limiter backend (synchronous; ``blocking`` ones run in a thread)."""

    blocking: bool

    def try_acquire(self, key: str, *, rpm: int | None, tpm: int | None, tokens: int) -> Admission:
        """Admit one request costing ``tokens`` now, or say how long to wait."""
        ...

    def reconcile(self, key: str, ticket: Any, tokens: int) -> None:
        """Replace an admitted request's reserved tokens with the real count."""
        ...

    def close(self) -> None: ...


class LocalLimiter:
    """In-process sliding-window limiter (thread-safe, never blocks)."""

    blocking = False

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # key -> deque of [admitted_at, tokens, ticket]
        self._log: dict[str, collections.deque[list[Any]]] = collections.defaultdict(collections.deque)

    def _prune(self, log: collections.deque[list[Any]], now: float) -> None:
        while log and log[0][0] <= now - WINDOW:
            log.popleft()

    def try_acquire(self, key: str, *, rpm: int | None, tpm: int | None, tokens: int) -> Admission:
        with self._lock:
            now = self._clock()
            log = self._log[key]
            self._prune(log, now)
            wait = 0.0
            if rpm is not None and rpm <= 0:
                return Admission(False, float("inf"))
            if rpm is not None and len(log) >= rpm:
                wait = max(wait, log[len(log) - rpm][0] + WINDOW - now)
            if tpm is not None:
                used = sum(entry[1] for entry in log)
                if tokens > tpm:
                    return Admission(False, float("inf"))
                if used + tokens > tpm:
                    # Wait until enough old entries leave the window.
                    excess = used + tokens - tpm
                    for entry in log:
                        excess -= entry[1]
                        if excess <= 0:
                            wait = max(wait, entry[0] + WINDOW - now)
                            break
            if wait > 0:
                return Admission(False, wait)
            ticket = uuid.uuid4().hex
            log.append([now, tokens, ticket])
            return Admission(True, 0.0, ticket)

    def reconcile(self, key: str, ticket: Any, tokens: int) -> None:
        with self._lock:
            for entry in self._log.get(key, ()):
                if entry[2] == ticket:
                    entry[1] = tokens
                    return

    def close(self) -> None:
        pass
