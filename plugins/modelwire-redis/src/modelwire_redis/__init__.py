"""A distributed rpm / tpm limiter for modelwire, shared through Redis.

Registers the limiter backend ``redis`` (hook ``register_limiters``). Every
process that points at the same Redis server and prefix shares one sliding
window per limit key, so together they never admit more than ``rpm``
requests or ``tpm`` tokens in any window.

Each decision is one Lua script, so it is atomic on the server: prune the
entries that left the window, check the request count and the token sum,
and record the new request, all with the server's clock (``TIME``), so the
processes need not agree on the time. See README.md for the algorithm.

Failing fast: every Redis round trip is bounded by short socket timeouts
(0.5 s to connect, 0.5 s per reply), timeouts are never retried, and after a
failure a circuit breaker skips Redis for ``cooldown`` seconds (then one
call probes it). While Redis is unavailable ``on_unavailable`` decides:
``reject`` (the default: fail closed with ``NetworkError``
``LIMITER_UNAVAILABLE``), ``allow`` (admit, with a warning) or ``local`` (an
in-process :class:`modelwire.plugin.LocalLimiter` for this process alone).
A frozen Redis therefore costs at most one timeout per cooldown, not one per
call, and never fills the worker threads that other ``to_thread`` work needs.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.backoff
import redis.exceptions
import redis.retry

from modelwire.plugin import LIMIT_WINDOW as WINDOW
from modelwire.plugin import (
    Admission,
    InvalidRequestError,
    LocalLimiter,
    ModelError,
    NetworkError,
    hookimpl,
)

__all__ = ["DEFAULT_PREFIX", "DEFAULT_URL", "ON_UNAVAILABLE", "RedisLimiter", "redact_url"]

log = logging.getLogger("modelwire.redis")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "modelwire:limit:"
#: Keys outlive their newest entry's window by this much, then expire.
TTL_SLACK_MS = 1000
#: what a call does while Redis is unavailable (the first is the default)
ON_UNAVAILABLE = ("reject", "allow", "local")
#: a ``blocking`` answer of False (breaker open) holds for the next call on
#: that thread for this long, so that call never does I/O on an event loop
_FAST_PATH_GRACE = 1.0

# Shared by both scripts: drop the entries that left the window (admitted at
# or before ``cutoff``) and take their tokens off the running sum. An empty
# window deletes the hash too, so the sum can never drift for long.
_PRUNE = """
local function prune(z, h, cutoff)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  if #gone == 0 then return end
  local freed = 0
  for i = 1, #gone, 500 do
    local chunk = {unpack(gone, i, math.min(i + 499, #gone))}
    local vals = redis.call('HMGET', h, unpack(chunk))
    for j = 1, #chunk do freed = freed + (tonumber(vals[j]) or 0) end
    redis.call('HDEL', h, unpack(chunk))
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
  if redis.call('ZCARD', z) == 0 then
    redis.call('DEL', h)
  else
    redis.call('HINCRBY', h, '_sum', -freed)
  end
end

-- ``given``: the caller's clock in microseconds (tests), or -1: the server's.
local function now_us(given)
  given = tonumber(given) or -1
  if given >= 0 then return given end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

# KEYS[1]: sorted set, ticket -> admission time (microseconds, Redis clock)
# KEYS[2]: hash, ticket -> tokens, and field _sum = their total
# ARGV: window_us, rpm (-1: none), tpm (-1: none), tokens, ticket, ttl_ms,
# now_us (-1: the server's TIME)
# Returns {1, 0} admitted, {0, wait_us} not yet, {0, -1} never.
_ACQUIRE = (
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    + _PRUNE
    + """
local z, h = KEYS[1], KEYS[2]
local window = tonumber(ARGV[1])
local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, ticket, ttl = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
if rpm == 0 or (tpm >= 0 and tokens > tpm) then return {0, -1} end
local now = now_us(ARGV[7])
prune(z, h, now - window)
local count = redis.call('ZCARD', z)
local wait = 0
if rpm > 0 and count >= rpm then
  -- the (count - rpm + 1)-th oldest entry has to leave the window first
  local e = redis.call('ZRANGE', z, count - rpm, count - rpm, 'WITHSCORES')
  wait = tonumber(e[2]) + window - now
end
if tpm >= 0 then
  local used = tonumber(redis.call('HGET', h, '_sum')) or 0
  local excess = used + tokens - tpm
  if excess > 0 then
    -- walk from the oldest entry until enough tokens would have left
    local start, found = 0, false
    while not found do
      local page = redis.call('ZRANGE', z, start, start + 199, 'WITHSCORES')
      if #page == 0 then break end
      local ids = {}
      for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
      local vals = redis.call('HMGET', h, unpack(ids))
      for j = 1, #ids do
        excess = excess - (tonumber(vals[j]) or 0)
        if excess <= 0 then
          found = true
          wait = math.max(wait, tonumber(page[2 * j]) + window - now)
          break
        end
      end
      start = start + 200
    end
    if not found then wait = math.max(wait, window) end
  end
end
if wait > 0 then return {0, math.max(wait, 1)} end
redis.call('ZADD', z, now, ticket)
redis.call('HSET', h, ticket, tokens)
redis.call('HINCRBY', h, '_sum', tokens)
redis.call('PEXPIRE', z, ttl)
redis.call('PEXPIRE', h, ttl)
return {1, 0}
"""
)

# KEYS as above; ARGV: window_us, ticket, tokens, now_us (-1: the server's
# TIME). Returns 1 if the ticket was
# still in the window (and now counts ``tokens``), else 0.
_RECONCILE = (
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    + _PRUNE
    + """
local z, h = KEYS[1], KEYS[2]
local window, ticket, tokens = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
prune(z, h, now_us(ARGV[4]) - window)
if not redis.call('ZSCORE', z, ticket) then return 0 end
local old = tonumber(redis.call('HGET', h, ticket)) or 0
redis.call('HSET', h, ticket, tokens)
redis.call('HINCRBY', h, '_sum', tokens - old)
return 1
"""
)


def _check_seconds(name: str, value: Any, *, positive: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        need = "a positive" if positive else "a non-negative"
        raise InvalidRequestError(
            f"redis limiter: {name} must be {need} number of seconds, not {value!r}",
            code="LIMITER_CONFIG",
        )


class _LocalTicket:
    """A ticket of the in-process fallback limiter (``on_unavailable: local``)."""

    __slots__ = ("ticket",)

    def __init__(self, ticket: Any) -> None:
        self.ticket = ticket

    def __repr__(self) -> str:
        return f"_LocalTicket({self.ticket!r})"


# Greedy up to the last "@": masking too much is fine, too little is not.
_USERINFO_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):.*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its password (``user:password@`` or ``?password=``) as ``***``."""
    url = _USERINFO_PASSWORD.sub(r"\1:***@", url, count=1)
    return _QUERY_PASSWORD.sub(r"\1***", url)


def _secrets(url: str) -> list[str]:
    """The credentials in ``url``, to scrub from foreign error text."""
    out: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            out.append(parts.password)
        out += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    except ValueError:
        pass
    # the raw (percent-encoded) form too: either may turn up in error text
    return sorted({*out, *(unquote(s) for s in out)}, key=len, reverse=True)


class RedisLimiter:
    """Sliding-window rpm / tpm limiter whose state lives in Redis.

    Options (the ``factory(**options)`` of the ``redis`` limiter):

    - ``url``: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://``
      or ``unix://``; default ``$MODELWIRE_REDIS_URL`` or
      ``redis://127.0.0.1:6379/0``.
    - ``prefix``: key prefix, default ``modelwire:limit:``. Processes share a
      limit when they use the same server, prefix and limit key.
    - ``socket_timeout`` / ``socket_connect_timeout``: seconds (0.5 / 0.5)
      to wait for a reply / a connection. A call that reaches Redis fails
      within about their sum.
    - ``retries``: reconnect attempts after a connection error such as a
      refused or reset connection (1). Timeouts are never retried.
    - ``on_unavailable``: ``reject`` (default, fails closed: raise
      ``NetworkError`` ``LIMITER_UNAVAILABLE``), ``allow`` (admit and log a
      warning) or ``local`` (admit through an in-process ``LocalLimiter``).
    - ``cooldown``: seconds to skip Redis after a failure (5; 0 turns the
      circuit breaker off). After it, one call probes Redis while the others
      still follow ``on_unavailable``.
    - ``window``: window length in seconds (60; rpm and tpm count per window).
    - ``clock``: for tests, a function returning the time in seconds (any
      origin, never going back) to use instead of the Redis server's
      ``TIME``; default None, the server's clock, which all processes share.
    - ``client``: a ready ``redis.Redis`` to use instead of ``url`` (left
      open by :meth:`close`).
    - any other keyword goes to ``redis.Redis.from_url`` (``ssl_ca_certs``,
      ``health_check_interval``, ...).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float | None = 0.5,
        socket_connect_timeout: float | None = 0.5,
        retries: int = 1,
        on_unavailable: str = "reject",
        cooldown: float = 5.0,
        window: float = WINDOW,
        clock: Callable[[], float] | None = None,
        client: redis.Redis | None = None,
        **client_options: Any,
    ) -> None:
        if url is None:
            url = os.environ.get("MODELWIRE_REDIS_URL") or DEFAULT_URL
        _check_seconds("window", window, positive=True)
        _check_seconds("cooldown", cooldown, positive=False)
        for name, value in (
            ("socket_timeout", socket_timeout),
            ("socket_connect_timeout", socket_connect_timeout),
        ):
            if value is not None:
                _check_seconds(name, value, positive=True)
        if on_unavailable not in ON_UNAVAILABLE:
            raise InvalidRequestError(
                f"redis limiter: on_unavailable must be one of {', '.join(ON_UNAVAILABLE)}, not {on_unavailable!r}",
                code="LIMITER_CONFIG",
            )
        if not (isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0):
            raise InvalidRequestError(
                f"redis limiter: retries must be a whole number >= 0, not {retries!r}",
                code="LIMITER_CONFIG",
            )
        self.on_unavailable = on_unavailable
        self.cooldown = float(cooldown)
        self._local = LocalLimiter() if on_unavailable == "local" else None
        # circuit breaker: Redis is skipped while monotonic() < _down_until
        self._state_lock = threading.Lock()
        self._down_until = 0.0
        self._failing = False  # warned about an outage that has not ended yet
        self._last_error = ""
        self._tls = threading.local()
        self.url = redact_url(url)
        self.prefix = prefix
        self.window = float(window)
        self._secrets = _secrets(url)
        self._window_us = max(1, round(self.window * 1_000_000))
        self._ttl_ms = math.ceil(self.window * 1000) + TTL_SLACK_MS
        self._clock = clock
        self._owns_client = client is None
        if client is None:
            try:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=socket_timeout,
                    socket_connect_timeout=socket_connect_timeout,
                    # Only connection errors (refused, reset: a restarted server, a
                    # stale pooled connection) are retried, and quickly; a
                    # timeout means a frozen or partitioned server: fail now.
                    retry=redis.retry.Retry(
                        redis.backoff.FullJitterBackoff(cap=0.1, base=0.01),
                        retries,
                        supported_errors=(redis.exceptions.ConnectionError,),
                    ),
                    **client_options,
                )
            except (ValueError, TypeError) as exc:
                raise InvalidRequestError(
                    f"redis limiter: bad url {self.url!r} or options: {self._scrub(str(exc))}",
                    code="LIMITER_CONFIG",
                ) from exc
        self._client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._reconcile = client.register_script(_RECONCILE)

    def __repr__(self) -> str:
        return (
            f"RedisLimiter(url={self.url!r}, prefix={self.prefix!r}, window={self.window}, "
            f"on_unavailable={self.on_unavailable!r})"
        )

    # -- circuit breaker ------------------------------------------------------
    @property
    def blocking(self) -> bool:
        """True (run me in a worker thread) unless the breaker is open.

        While Redis is being skipped a call does no I/O, so the runtime may
        make it on the event loop and no worker thread is taken. The answer
        False holds for the next call on this thread (for a second), even if
        the cooldown ends in between, so that call never waits on a socket.
        """
        if time.monotonic() < self._down_until:
            self._tls.fast_at = time.monotonic()
            return False
        return True

    @property
    def available(self) -> bool:
        """False while the circuit breaker skips Redis after a failure."""
        return time.monotonic() >= self._down_until

    def _skip_redis(self) -> bool:
        """Whether this call skips Redis; the first call after a cooldown probes it."""
        now = time.monotonic()
        fast_at = getattr(self._tls, "fast_at", None)
        self._tls.fast_at = None
        if fast_at is not None and now - fast_at < _FAST_PATH_GRACE:
            return True
        with self._state_lock:
            if now < self._down_until:
                return True
            if self._down_until:
                # half open: this call probes; the others keep skipping meanwhile
                self._down_until = now + self.cooldown
        return False

    def _trip(self, error: ModelError) -> None:
        with self._state_lock:
            first, self._failing = not self._failing, True
            self._last_error = error.message
            if self.cooldown > 0:
                self._down_until = time.monotonic() + self.cooldown
        if first:
            then = {
                "reject": "rejecting requests",
                "allow": "admitting requests WITHOUT a shared limit",
                "local": "limiting each process on its own",
            }[self.on_unavailable]
            pause = (
                f"; skipping Redis for {self.cooldown:g}s at a time" if self.cooldown > 0 else ""
            )
            log.warning("modelwire: %s; %s until it answers again%s", error.message, then, pause)

    def _heal(self) -> None:
        if self._failing:
            with self._state_lock:
                was_down, self._failing, self._down_until = self._failing, False, 0.0
            if was_down:
                log.warning("modelwire: redis limiter at %s answers again", self.url)

    def _unavailable(
        self, key: str, rpm: int | None, tpm: int | None, tokens: int, error: ModelError | None
    ) -> Admission:
        """The answer while Redis is unavailable, per ``on_unavailable``."""
        if self.on_unavailable == "allow":
            log.debug("modelwire: redis limiter unavailable; admitting %r without a limit", key)
            return Admission(True, 0.0, None)
        if self._local is not None:
            decision = self._local.try_acquire(key, rpm=rpm, tpm=tpm, tokens=tokens)
            ticket = _LocalTicket(decision.ticket) if decision.admitted else None
            return Admission(decision.admitted, decision.retry_after, ticket)
        if error is None:
            error = NetworkError(
                f"redis limiter at {self.url} is unavailable (last error: {self._last_error}); "
                f"not asking it again for up to {self.cooldown:g}s",
                code="LIMITER_UNAVAILABLE",
            )
        raise error

    def keys(self, key: str) -> tuple[str, str]:
        """The Redis keys that hold ``key``'s window: (sorted set, token hash).

        The limit key sits in a hash tag so both land in one cluster slot.
        """
        base = f"{self.prefix}{{{key}}}"
        return f"{base}:req", f"{base}:tok"

    def _now_us(self) -> int:
        """The injected clock in microseconds, or -1: the script reads the server's."""
        return -1 if self._clock is None else max(0, round(self._clock() * 1_000_000))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except redis.exceptions.RedisError as exc:
            raise NetworkError(
                f"redis limiter at {self.url} could not {action}: "
                f"{type(exc).__name__}: {self._scrub(str(exc))}",
                code="LIMITER_UNAVAILABLE",
            ) from exc

    def try_acquire(self, key: str, *, rpm: int | None, tpm: int | None, tokens: int) -> Admission:
        """Admit one request costing ``tokens`` now, or say how long to wait."""
        tokens = max(0, int(tokens))
        ticket = uuid.uuid4().hex
        args = (
            self._window_us,
            -1 if rpm is None else max(0, int(rpm)),
            -1 if tpm is None else max(0, int(tpm)),
            tokens,
            ticket,
            self._ttl_ms,
            self._now_us(),
        )
        if self._skip_redis():
            return self._unavailable(key, rpm, tpm, tokens, None)
        try:
            with self._translate(f"admit a request for {key!r}"):
                admitted, wait_us = self._acquire(keys=self.keys(key), args=args)
        except NetworkError as exc:
            self._trip(exc)
            return self._unavailable(key, rpm, tpm, tokens, exc)
        self._heal()
        if int(admitted):
            return Admission(True, 0.0, ticket)
        wait_us = int(wait_us)
        return Admission(False, math.inf if wait_us < 0 else wait_us / 1_000_000)

    def reconcile(self, key: str, ticket: Any, tokens: int) -> None:
        """Count ``tokens`` for an admitted request instead of its reservation.

        A no-op once the request has left the window (or for no ticket), and
        while the breaker skips Redis (the reservation then stands).
        """
        if ticket is None:
            return
        if isinstance(ticket, _LocalTicket):
            if self._local is not None:
                self._local.reconcile(key, ticket.ticket, tokens)
            return
        if self._skip_redis():
            return
        args = (self._window_us, str(ticket), max(0, int(tokens)), self._now_us())
        try:
            with self._translate(f"reconcile tokens for {key!r}"):
                self._reconcile(keys=self.keys(key), args=args)
        except NetworkError as exc:
            self._trip(exc)
            raise
        self._heal()

    def close(self) -> None:
        """Close the connection pool (unless the client was passed in)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RedisLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@hookimpl
def register_limiters(register: Any) -> None:
    register("redis", RedisLimiter)
