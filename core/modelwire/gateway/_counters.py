"""Per-key counters: rpm / tpm windows, requests in flight, budgets and spend.

One decision per request, all limits at once: :meth:`admit` checks the
budget, the concurrency, the rpm and the tpm window of a key and, only when
all pass, records the request in each; :meth:`settle` ends it (frees its
slot, counts its real tokens instead of the reservation, adds its cost to the
spend of the key and model). :class:`LocalCounters` keeps them in this
process; :class:`RedisCounters` keeps them in Redis, each decision one Lua
script (atomic on the server, with the server's clock, as the ``redis``
limiter plugin does), so any number of replicas share exact limits.

Money is counted in integer units of 10^-10 of the currency
(:data:`UNITS`), exact under Redis' integer arithmetic; a request's cost is
rounded up to the next unit, never down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, Decimal
from typing import Any

import attrs

from .._errors import InvalidRequestError, NetworkError
from ._config import Budget

__all__ = [
    "UNITS",
    "Admission",
    "LocalCounters",
    "RedisCounters",
    "Spend",
    "period_of",
    "to_units",
]

log = logging.getLogger("modelwire.gateway")

#: money units per currency unit
UNITS = 10**10
WINDOW = 60.0
#: a request's slot in ``concurrency`` frees itself after this long even if no
#: replica settles it (a replica that died mid-request)
LEASE = 900.0


def to_units(cost: Decimal | None) -> int:
    """``cost`` in integer money units, rounded up."""
    if cost is None or cost <= 0:
        return 0
    return int((cost * UNITS).to_integral_value(rounding=ROUND_CEILING))


def from_units(units: int) -> Decimal:
    return Decimal(units) / UNITS


def period_of(budget: Budget | None, now: datetime | None = None) -> tuple[str, float]:
    """(period id, seconds until the next period starts), UTC."""
    now = now or datetime.now(timezone.utc)
    if budget is not None and budget.period == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return now.strftime("%Y-%m"), (nxt - now).total_seconds()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y-%m-%d"), (start + timedelta(days=1) - now).total_seconds()


@attrs.frozen
class Admission:
    """The decision on one request: admitted, or which limit said no and for how long."""

    admitted: bool
    #: None when admitted, else ``rpm``, ``tpm``, ``concurrency`` or ``budget``
    limit: str | None = None
    #: seconds until the request could pass (None: not known)
    retry_after: float | None = None
    ticket: str | None = None


@attrs.define
class Spend:
    """What one key spent on one model in one period."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    units: int = 0

    @property
    def cost(self) -> Decimal:
        return from_units(self.units)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "cost": str(self.cost.normalize()) if self.units else "0",
        }


def _limits(rpm: int | None, tpm: int | None, concurrency: int | None, budget: Budget | None) -> tuple[int, int, int, int]:
    return (
        -1 if rpm is None else rpm,
        -1 if tpm is None else tpm,
        -1 if concurrency is None else concurrency,
        -1 if budget is None else to_units(budget.value),
    )


class LocalCounters:
    """All counters in this process (one gateway process alone: no Redis)."""

    def __init__(self, *, window: float = WINDOW, clock: Any = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, deque[list[Any]]] = {}  # key -> [time, ticket, tokens]
        self._live: dict[str, dict[str, float]] = {}
        self._spend: dict[tuple[str, str], dict[str, Spend]] = {}  # (key, period) -> model -> Spend

    async def admit(
        self, key: str, *, rpm: int | None, tpm: int | None, concurrency: int | None,
        budget: Budget | None, tokens: int,
    ) -> Admission:
        rpm_, tpm_, conc_, budget_ = _limits(rpm, tpm, concurrency, budget)
        period, until_next = period_of(budget)
        with self._lock:
            now = self._clock()
            if budget_ >= 0:
                spent = sum(s.units for s in self._spend.get((key, period), {}).values())
                if spent >= budget_:
                    return Admission(False, "budget", until_next)
            if rpm_ == 0 or (tpm_ >= 0 and tokens > tpm_):
                return Admission(False, "rpm" if rpm_ == 0 else "tpm", None)
            live = self._live.setdefault(key, {})
            for ticket in [t for t, expiry in live.items() if expiry <= now]:
                del live[ticket]
            if conc_ >= 0 and len(live) >= conc_:
                return Admission(False, "concurrency", None)
            window = self._windows.setdefault(key, deque())
            while window and window[0][0] <= now - self.window:
                window.popleft()
            if rpm_ > 0 and len(window) >= rpm_:
                return Admission(False, "rpm", max(0.001, window[len(window) - rpm_][0] + self.window - now))
            if tpm_ >= 0:
                excess = sum(e[2] for e in window) + tokens - tpm_
                if excess > 0:
                    wait = self.window
                    for entry in window:
                        excess -= entry[2]
                        if excess <= 0:
                            wait = entry[0] + self.window - now
                            break
                    return Admission(False, "tpm", max(0.001, wait))
            ticket = uuid.uuid4().hex
            window.append([now, ticket, tokens])
            live[ticket] = now + LEASE
            return Admission(True, ticket=ticket)

    async def settle(
        self, key: str, ticket: str, *, model: str, budget: Budget | None, input_tokens: int,
        output_tokens: int, cost: Decimal | None,
    ) -> None:
        period, _ = period_of(budget)
        with self._lock:
            self._live.get(key, {}).pop(ticket, None)
            for entry in self._windows.get(key, ()):
                if entry[1] == ticket:
                    entry[2] = input_tokens + output_tokens
                    break
            spend = self._spend.setdefault((key, period), {}).setdefault(model, Spend())
            spend.requests += 1
            spend.input_tokens += input_tokens
            spend.output_tokens += output_tokens
            spend.units += to_units(cost)

    async def spend(self, key: str, budget: Budget | None) -> tuple[str, dict[str, Spend]]:
        """(period id, spend by model) of ``key`` in the current period."""
        period, _ = period_of(budget)
        with self._lock:
            return period, {m: attrs.evolve(s) for m, s in self._spend.get((key, period), {}).items()}

    async def aclose(self) -> None:
        pass


# Sliding windows as the redis limiter plugin keeps them: a sorted set of
# tickets by admission time (microseconds, the server's clock) and a hash of
# their tokens with a running _sum; a sorted set of live tickets by lease
# expiry; a hash of spend per period (field total and per-model fields).
_ADMIT = """
if redis.replicate_commands then redis.replicate_commands() end
local z, h, live, spend = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local window, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, ticket, ttl = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local conc, lease, budget = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
if budget >= 0 then
  local spent = tonumber(redis.call('HGET', spend, 'total')) or 0
  if spent >= budget then return {4, -1} end
end
if rpm == 0 then return {1, -1} end
if tpm >= 0 and tokens > tpm then return {2, -1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
if conc >= 0 and redis.call('ZCARD', live) >= conc then return {3, -1} end
local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now - window)
if #gone > 0 then
  local freed = 0
  for i = 1, #gone, 500 do
    local chunk = {unpack(gone, i, math.min(i + 499, #gone))}
    local vals = redis.call('HMGET', h, unpack(chunk))
    for j = 1, #chunk do freed = freed + (tonumber(vals[j]) or 0) end
    redis.call('HDEL', h, unpack(chunk))
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
  redis.call('HINCRBY', h, '_sum', -freed)
end
local count = redis.call('ZCARD', z)
if rpm > 0 and count >= rpm then
  local e = redis.call('ZRANGE', z, count - rpm, count - rpm, 'WITHSCORES')
  return {1, math.max(1, tonumber(e[2]) + window - now)}
end
if tpm >= 0 then
  local excess = (tonumber(redis.call('HGET', h, '_sum')) or 0) + tokens - tpm
  if excess > 0 then
    local page = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    for i = 1, #page, 2 do
      excess = excess - (tonumber(redis.call('HGET', h, page[i])) or 0)
      if excess <= 0 then return {2, math.max(1, tonumber(page[i + 1]) + window - now)} end
    end
    return {2, window}
  end
end
redis.call('ZADD', z, now, ticket)
redis.call('HSET', h, ticket, tokens)
redis.call('HINCRBY', h, '_sum', tokens)
redis.call('ZADD', live, now + lease, ticket)
redis.call('PEXPIRE', z, ttl)
redis.call('PEXPIRE', h, ttl)
redis.call('PEXPIRE', live, math.floor(lease / 1000) + 1000)
return {0, 0}
"""

# KEYS as above; ARGV: ticket, tokens, model, input, output, cost units, spend ttl ms
_SETTLE = """
local z, h, live, spend = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ticket, tokens, model = ARGV[1], tonumber(ARGV[2]), ARGV[3]
redis.call('ZREM', live, ticket)
if redis.call('ZSCORE', z, ticket) then
  local old = tonumber(redis.call('HGET', h, ticket)) or 0
  redis.call('HSET', h, ticket, tokens)
  redis.call('HINCRBY', h, '_sum', tokens - old)
end
redis.call('HINCRBY', spend, 'total', ARGV[6])
redis.call('HINCRBY', spend, 'req:' .. model, 1)
redis.call('HINCRBY', spend, 'in:' .. model, ARGV[4])
redis.call('HINCRBY', spend, 'out:' .. model, ARGV[5])
redis.call('HINCRBY', spend, 'cost:' .. model, ARGV[6])
redis.call('PEXPIRE', spend, ARGV[7])
return 1
"""

_REASONS = {1: "rpm", 2: "tpm", 3: "concurrency", 4: "budget"}


class RedisCounters:
    """All counters in Redis: every replica pointing at one server and prefix shares them exactly.

    Needs the ``redis`` package (``pip install 'modelwire[gateway]'``). A
    Redis that does not answer fails the request closed (503,
    ``COUNTERS_UNAVAILABLE``): limits and budgets are never skipped.
    """

    def __init__(self, url: str, *, prefix: str = "modelwire:gw:", window: float = WINDOW, timeout: float = 1.0) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise InvalidRequestError(
                "--redis needs the redis package: pip install 'modelwire[gateway]'", code="REDIS_MISSING"
            ) from exc
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.url = url.replace(f":{parts.password}@", ":***@") if parts.password else url
        self._secret = parts.password
        self.prefix = prefix
        self.window_us = max(1, round(window * 1_000_000))
        self._ttl_ms = math.ceil(window * 1000) + 1000
        try:
            self._client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        except (ValueError, TypeError) as exc:
            raise InvalidRequestError(f"bad Redis URL {self.url!r}", code="REDIS_CONFIG") from exc
        self._admit = self._client.register_script(_ADMIT)
        self._settle = self._client.register_script(_SETTLE)

    def _keys(self, key: str, period: str) -> list[str]:
        base = f"{self.prefix}{{{key}}}"  # one hash tag: all of a key's data in one cluster slot
        return [f"{base}:req", f"{base}:tok", f"{base}:live", f"{base}:spend:{period}"]

    def _fail(self, exc: Exception, action: str) -> NetworkError:
        text = f"{type(exc).__name__}: {exc}"
        if self._secret:
            text = text.replace(self._secret, "***")
        return NetworkError(f"gateway counters at {self.url} could not {action}: {text}", code="COUNTERS_UNAVAILABLE")

    async def admit(
        self, key: str, *, rpm: int | None, tpm: int | None, concurrency: int | None,
        budget: Budget | None, tokens: int,
    ) -> Admission:
        import redis.exceptions

        rpm_, tpm_, conc_, budget_ = _limits(rpm, tpm, concurrency, budget)
        period, until_next = period_of(budget)
        ticket = uuid.uuid4().hex
        args: list[int | str] = [
            self.window_us, rpm_, tpm_, max(0, tokens), ticket, self._ttl_ms, conc_, round(LEASE * 1e6), budget_,
        ]
        try:
            code, wait = await self._admit(keys=self._keys(key, period), args=args)
        except redis.exceptions.RedisError as exc:
            raise self._fail(exc, "admit a request") from exc
        code, wait = int(code), int(wait)
        if code == 0:
            return Admission(True, ticket=ticket)
        if code == 4:
            return Admission(False, "budget", until_next)
        return Admission(False, _REASONS[code], None if wait < 0 else wait / 1e6)

    async def settle(
        self, key: str, ticket: str, *, model: str, budget: Budget | None, input_tokens: int,
        output_tokens: int, cost: Decimal | None,
    ) -> None:
        import redis.exceptions

        period, until_next = period_of(budget)
        args: list[int | str] = [
            ticket, input_tokens + output_tokens, model, input_tokens, output_tokens, to_units(cost),
            math.ceil((until_next + 40 * 86400) * 1000),
        ]
        try:
            await self._settle(keys=self._keys(key, period), args=args)
        except redis.exceptions.RedisError as exc:
            raise self._fail(exc, "record spend") from exc

    async def spend(self, key: str, budget: Budget | None) -> tuple[str, dict[str, Spend]]:
        import redis.exceptions

        period, _ = period_of(budget)
        try:
            raw = await self._client.hgetall(self._keys(key, period)[3])
        except redis.exceptions.RedisError as exc:
            raise self._fail(exc, "read spend") from exc
        out: dict[str, Spend] = {}
        fields = {"req": "requests", "in": "input_tokens", "out": "output_tokens", "cost": "units"}
        for name, value in raw.items():
            text = name.decode() if isinstance(name, bytes) else str(name)
            kind, _, model = text.partition(":")
            if kind in fields and model:
                setattr(out.setdefault(model, Spend()), fields[kind], int(value))
        return period, out

    async def lookup_key(self, digest: str) -> tuple[str, Any] | None:
        """The key stored in Redis under ``digest`` (hex of its SHA-256), or None."""
        import redis.exceptions

        from ._config import key_from_json

        try:
            raw = await self._client.hget(f"{self.prefix}keys", digest)
        except redis.exceptions.RedisError as exc:
            raise self._fail(exc, "read keys") from exc
        if raw is None:
            return None
        try:
            return key_from_json(digest, raw)
        except Exception as exc:
            log.warning("modelwire gateway: ignoring the Redis key entry %s...: %s", digest[:12], exc)
            return None

    async def all_keys(self) -> dict[str, Any]:
        """Every valid key stored in Redis, by name."""
        import redis.exceptions

        from ._config import key_from_json

        try:
            raw = await self._client.hgetall(f"{self.prefix}keys")
        except redis.exceptions.RedisError as exc:
            raise self._fail(exc, "read keys") from exc
        out = {}
        for digest, text in raw.items():
            try:
                name, key = key_from_json(digest.decode() if isinstance(digest, bytes) else digest, text)
            except Exception:
                continue
            out[name] = key
        return out

    async def aclose(self) -> None:
        await self._client.aclose()
