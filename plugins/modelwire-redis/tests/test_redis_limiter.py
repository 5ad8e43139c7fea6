"""The ``redis`` limiter against a real redis-server on loopback.

The server is started by the session fixture (conftest.py). The key test is
the multi-process one: four processes hammer one limit at once and the
admitted total is checked exactly.
"""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.exceptions
from fake_clock import FakeClock
from redis_fixture import RedisServer, free_port, redis_server, require_redis_server

import modelwire
from modelwire._plugins.limiter import LimiterBackend
from modelwire._runtime.limits import CallLimits as Limits
from modelwire._runtime.limits import acquire
from modelwire_redis import DEFAULT_PREFIX, DEFAULT_URL, RedisLimiter, redact_url

HERE = Path(__file__).parent
WORKER = HERE / "redis_limit_worker.py"
SECRET = "s3cret-Passw0rd-xyz"

MakeLimiter = Callable[..., RedisLimiter]


def assert_waits_out_the_window(refused: Any, since: float, window: float = 60.0) -> None:
    """``refused`` waits for an entry admitted after ``since`` (time.monotonic())
    to leave the window: at most ``window`` seconds, at least what is left of
    it however slowly the test ran (the server's clock, hence the slack)."""
    assert not refused.admitted
    left = window - (time.monotonic() - since)
    assert left - 0.5 < refused.retry_after <= window


def window_state(raw: redis.Redis, limiter: RedisLimiter, key: str) -> tuple[int, int, dict[str, str]]:
    """(entries in the window, running token sum, ticket -> tokens) as stored."""
    zkey, hkey = limiter.keys(key)
    tokens = {str(k): str(v) for k, v in raw.hgetall(hkey).items()}
    total = int(tokens.pop("_sum", 0))
    return int(raw.zcard(zkey)), total, tokens


# --------------------------------------------------------------------------- rpm


def test_admits_exactly_rpm_then_rejects(limiter: RedisLimiter, raw: redis.Redis) -> None:
    since = time.monotonic()
    tickets = [limiter.try_acquire("m", rpm=5, tpm=None, tokens=10) for _ in range(5)]
    assert all(t.admitted for t in tickets)
    assert len({t.ticket for t in tickets}) == 5
    refused = limiter.try_acquire("m", rpm=5, tpm=None, tokens=10)
    assert not refused.admitted
    assert refused.ticket is None
    # the oldest of the five leaves the 60 s window in just under a minute
    assert_waits_out_the_window(refused, since)
    assert window_state(raw, limiter, "m")[:2] == (5, 50)
    # another key has its own window
    assert limiter.try_acquire("other", rpm=5, tpm=None, tokens=10).admitted


def test_retry_after_is_when_capacity_frees(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter(window=1.0, clock=clock)
    assert limiter.try_acquire("m", rpm=2, tpm=None, tokens=1).admitted
    clock.advance(0.3)
    assert limiter.try_acquire("m", rpm=2, tpm=None, tokens=1).admitted
    refused = limiter.try_acquire("m", rpm=2, tpm=None, tokens=1)
    assert not refused.admitted
    assert refused.retry_after == pytest.approx(0.7, abs=1e-6)
    # a moment short of that is not enough
    clock.advance(refused.retry_after - 0.001)
    assert not limiter.try_acquire("m", rpm=2, tpm=None, tokens=1).admitted
    # waiting exactly that long is enough: the first entry has left
    clock.advance(0.001)
    assert limiter.try_acquire("m", rpm=2, tpm=None, tokens=1).admitted
    again = limiter.try_acquire("m", rpm=2, tpm=None, tokens=1)
    assert not again.admitted
    assert again.retry_after == pytest.approx(0.3, abs=1e-6)


def test_rpm_zero_never_admits(limiter: RedisLimiter) -> None:
    refused = limiter.try_acquire("m", rpm=0, tpm=None, tokens=1)
    assert not refused.admitted
    assert refused.retry_after == math.inf


def test_instances_with_one_prefix_share_a_window(make_limiter: MakeLimiter, prefix: str) -> None:
    first, second = make_limiter(), make_limiter()
    other_prefix = make_limiter(prefix=prefix + "other:")
    assert first.try_acquire("m", rpm=1, tpm=None, tokens=1).admitted
    assert not second.try_acquire("m", rpm=1, tpm=None, tokens=1).admitted
    assert other_prefix.try_acquire("m", rpm=1, tpm=None, tokens=1).admitted


# --------------------------------------------------------------------------- tpm


def test_tpm_accounting(limiter: RedisLimiter, raw: redis.Redis) -> None:
    since = time.monotonic()
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=60).admitted
    refused = limiter.try_acquire("m", rpm=None, tpm=100, tokens=50)
    assert_waits_out_the_window(refused, since)
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=40).admitted
    assert not limiter.try_acquire("m", rpm=None, tpm=100, tokens=1).admitted
    # a request that costs nothing still fits a full window
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=0).admitted
    assert window_state(raw, limiter, "m")[:2] == (3, 100)


def test_request_larger_than_tpm_never_fits(limiter: RedisLimiter, raw: redis.Redis) -> None:
    refused = limiter.try_acquire("m", rpm=None, tpm=100, tokens=101)
    assert not refused.admitted
    assert refused.retry_after == math.inf
    # nothing was recorded for it
    assert window_state(raw, limiter, "m") == (0, 0, {})
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=100).admitted


def test_tpm_retry_after_waits_for_enough_tokens(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter(window=1.0, clock=clock)
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=50).admitted
    clock.advance(0.3)
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=50).admitted
    # 40 tokens fit once the first entry leaves; 60 need the second gone too
    small = limiter.try_acquire("m", rpm=None, tpm=100, tokens=40)
    large = limiter.try_acquire("m", rpm=None, tpm=100, tokens=60)
    assert not small.admitted and not large.admitted
    assert small.retry_after == pytest.approx(0.7, abs=1e-6)
    assert large.retry_after == pytest.approx(1.0, abs=1e-6)
    clock.advance(small.retry_after)
    assert not limiter.try_acquire("m", rpm=None, tpm=100, tokens=60).admitted
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=40).admitted


def test_rpm_and_tpm_together(limiter: RedisLimiter) -> None:
    assert limiter.try_acquire("m", rpm=2, tpm=1000, tokens=10).admitted
    assert limiter.try_acquire("m", rpm=2, tpm=1000, tokens=10).admitted
    assert not limiter.try_acquire("m", rpm=2, tpm=1000, tokens=1).admitted  # by rpm
    assert limiter.try_acquire("n", rpm=2, tpm=1000, tokens=990).admitted
    assert not limiter.try_acquire("n", rpm=2, tpm=1000, tokens=11).admitted  # by tpm
    assert limiter.try_acquire("n", rpm=2, tpm=1000, tokens=10).admitted


def test_expired_entries_are_pruned_in_bulk(make_limiter: MakeLimiter, raw: redis.Redis, clock: FakeClock) -> None:
    # more expired entries than one prune chunk (500) and one tpm page (200)
    limiter = make_limiter(window=0.5, clock=clock)
    for _ in range(1200):
        assert limiter.try_acquire("m", rpm=None, tpm=None, tokens=3).admitted
    assert window_state(raw, limiter, "m")[:2] == (1200, 3600)
    clock.advance(0.5)
    assert limiter.try_acquire("m", rpm=1, tpm=5, tokens=5).admitted
    count, total, tokens = window_state(raw, limiter, "m")
    assert (count, total) == (1, 5)
    assert list(tokens.values()) == ["5"]


def test_tpm_scan_walks_many_entries(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    # the blocking entry is deep in the window: past the first 200-entry page
    limiter = make_limiter(clock=clock)
    for _ in range(450):
        assert limiter.try_acquire("m", rpm=None, tpm=450, tokens=1).admitted
        clock.advance(0.01)
    # 300 tokens fit once the 300th entry (admitted at 2.99 s) has left
    refused = limiter.try_acquire("m", rpm=None, tpm=450, tokens=300)
    assert not refused.admitted
    assert refused.retry_after == pytest.approx(60.0 + 2.99 - 4.5, abs=1e-5)


# --------------------------------------------------------------------------- reconcile


def test_reconcile_lowers_and_raises_usage(limiter: RedisLimiter, raw: redis.Redis) -> None:
    since = time.monotonic()
    first = limiter.try_acquire("m", rpm=None, tpm=100, tokens=80)
    assert first.admitted
    assert not limiter.try_acquire("m", rpm=None, tpm=100, tokens=30).admitted
    # the provider reported fewer tokens than were reserved: room frees up
    limiter.reconcile("m", first.ticket, 20)
    assert window_state(raw, limiter, "m")[1] == 20
    second = limiter.try_acquire("m", rpm=None, tpm=100, tokens=30)
    assert second.admitted
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=50).admitted
    assert not limiter.try_acquire("m", rpm=None, tpm=100, tokens=1).admitted
    # ... or more: the window is over budget and refuses until it drains
    limiter.reconcile("m", second.ticket, 45)
    count, total, tokens = window_state(raw, limiter, "m")
    assert (count, total) == (3, 115)
    assert tokens[first.ticket] == "20" and tokens[second.ticket] == "45"
    refused = limiter.try_acquire("m", rpm=None, tpm=100, tokens=0)
    assert_waits_out_the_window(refused, since)


def test_reconcile_unknown_or_missing_ticket_is_a_noop(limiter: RedisLimiter, raw: redis.Redis) -> None:
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=10).admitted
    limiter.reconcile("m", "no-such-ticket", 50)
    limiter.reconcile("m", None, 50)
    limiter.reconcile("unused-key", "no-such-ticket", 50)
    assert window_state(raw, limiter, "m")[:2] == (1, 10)
    assert raw.exists(*limiter.keys("unused-key")) == 0


def test_reconcile_after_the_window_is_a_noop(make_limiter: MakeLimiter, raw: redis.Redis, clock: FakeClock) -> None:
    limiter = make_limiter(window=0.2, clock=clock)
    got = limiter.try_acquire("m", rpm=None, tpm=100, tokens=10)
    assert got.admitted
    clock.advance(0.2)
    limiter.reconcile("m", got.ticket, 99)
    # the expired entry was pruned, and not brought back
    assert window_state(raw, limiter, "m") == (0, 0, {})
    assert limiter.try_acquire("m", rpm=None, tpm=100, tokens=100).admitted


# --------------------------------------------------------------------------- keys and TTL


def test_keys_get_a_ttl_and_expire_when_idle(make_limiter: MakeLimiter, raw: redis.Redis, prefix: str) -> None:
    limiter = make_limiter()
    assert limiter.try_acquire("m", rpm=10, tpm=100, tokens=5).admitted
    zkey, hkey = limiter.keys("m")
    assert zkey.startswith(prefix) and hkey.startswith(prefix)
    assert "{m}" in zkey  # one hash tag: both keys in one cluster slot
    for key in (zkey, hkey):
        assert 59_000 < raw.pttl(key) <= 61_000
    short = make_limiter(window=0.2)
    assert short.try_acquire("idle", rpm=10, tpm=100, tokens=5).admitted
    keys = short.keys("idle")
    assert all(0 < raw.pttl(k) <= 1200 for k in keys)
    # Redis expires them on its own clock: poll, with a deadline far above the 1.2 s
    deadline = time.monotonic() + 60
    while raw.exists(*keys) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert raw.exists(*keys) == 0


def test_default_prefix_and_url(monkeypatch: pytest.MonkeyPatch, redis_srv: RedisServer) -> None:
    monkeypatch.delenv("MODELWIRE_REDIS_URL", raising=False)
    with RedisLimiter() as limiter:
        assert limiter.url == DEFAULT_URL == "redis://127.0.0.1:6379/0"
        assert limiter.prefix == DEFAULT_PREFIX == "modelwire:limit:"
    monkeypatch.setenv("MODELWIRE_REDIS_URL", redis_srv.url)
    with RedisLimiter(prefix=f"mwtest:{uuid.uuid4().hex}:") as limiter:
        assert limiter.url == redis_srv.url
        assert limiter.try_acquire("m", rpm=1, tpm=None, tokens=1).admitted


def test_a_passed_client_is_used_and_left_open(redis_srv: RedisServer, prefix: str) -> None:
    with redis.Redis.from_url(redis_srv.url) as client:
        limiter = RedisLimiter(client=client, prefix=prefix)
        assert limiter.try_acquire("m", rpm=1, tpm=None, tokens=1).admitted
        limiter.close()
        assert client.zcard(limiter.keys("m")[0]) == 1  # still usable


def test_script_cache_flush_is_survived(limiter: RedisLimiter, raw: redis.Redis) -> None:
    assert limiter.try_acquire("m", rpm=3, tpm=None, tokens=1).admitted
    raw.script_flush()
    assert limiter.try_acquire("m", rpm=3, tpm=None, tokens=1).admitted
    raw.script_flush()
    limiter.reconcile("m", "x", 1)
    assert window_state(raw, limiter, "m")[0] == 2


# --------------------------------------------------------------------------- errors


def assert_no_secret(err: BaseException) -> None:
    texts = [str(err), repr(err), pickle.loads(pickle.dumps(err)).message]
    cause = err.__cause__
    while cause is not None:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__
    for text in texts:
        assert SECRET not in text


def test_connection_refused_is_a_network_error_without_the_password() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    with RedisLimiter(url, socket_connect_timeout=1.0, retries=1, cooldown=0) as limiter:
        assert SECRET not in repr(limiter)
        with pytest.raises(modelwire.NetworkError) as info:
            limiter.try_acquire("m", rpm=1, tpm=None, tokens=1)
        err = info.value
        assert err.code == "LIMITER_UNAVAILABLE"
        assert err.kind == "network"
        assert isinstance(err.__cause__, redis.exceptions.ConnectionError)
        assert "redis://:***@127.0.0.1:" in err.message
        assert_no_secret(err)
        with pytest.raises(modelwire.NetworkError) as info:
            limiter.reconcile("m", "ticket", 5)
        assert info.value.code == "LIMITER_UNAVAILABLE"
        assert_no_secret(info.value)


def test_wrong_password_is_a_network_error_without_either_password() -> None:
    with redis_server(password=SECRET) as srv:
        good = RedisLimiter(srv.url, prefix="p:")
        bad = RedisLimiter(srv.url.replace(SECRET, SECRET + "-wrong"), prefix="p:")
        with good, bad:
            assert good.try_acquire("m", rpm=1, tpm=None, tokens=1).admitted
            with pytest.raises(modelwire.NetworkError) as info:
                bad.try_acquire("m", rpm=1, tpm=None, tokens=1)
            assert info.value.code == "LIMITER_UNAVAILABLE"
            assert isinstance(info.value.__cause__, redis.exceptions.RedisError)
            assert_no_secret(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", id="no-auth"),
        pytest.param(f"redis://:{SECRET}@h:1/0", "redis://:***@h:1/0", id="password"),
        pytest.param(f"rediss://user:{SECRET}@h/2", "rediss://user:***@h/2", id="user-password"),
        pytest.param("redis://user@h", "redis://user@h", id="user-only"),
        pytest.param(
            f"unix:///run/redis.sock?db=1&password={SECRET}",
            "unix:///run/redis.sock?db=1&password=***",
            id="query-password",
        ),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_bad_options_are_typed_errors() -> None:
    with pytest.raises(modelwire.InvalidRequestError) as info:
        RedisLimiter(f"http://:{SECRET}@127.0.0.1:1/0")
    assert info.value.code == "LIMITER_CONFIG"
    assert SECRET not in str(info.value)
    with pytest.raises(modelwire.InvalidRequestError, match="window"):
        RedisLimiter("redis://127.0.0.1:1/0", window=0)


# --------------------------------------------------------------------------- many processes


def hammer(
    redis_srv: RedisServer, raw: redis.Redis, prefix: str, *, rpm: int | None, tpm: int | None,
    tokens: tuple[int, int], processes: int = 4, attempts: int = 200,
) -> tuple[str, list[list[list[Any]]]]:
    """Run ``processes`` workers at once against one key; their per-call results."""
    run = uuid.uuid4().hex[:8]
    key = f"shared-{run}"
    ready, start = f"{prefix}ready-{run}", f"{prefix}start-{run}"
    procs = []
    for seed in range(processes):
        cfg = {
            "url": redis_srv.url, "prefix": prefix, "key": key, "rpm": rpm, "tpm": tpm,
            "tokens": list(tokens), "attempts": attempts, "seed": seed,
            "ready": ready, "start": start,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(cfg)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        )
    try:
        deadline = time.monotonic() + 120
        while raw.llen(ready) < processes:
            assert time.monotonic() < deadline, "workers did not get ready"
            assert all(p.poll() is None for p in procs), "a worker died before the start"
            time.sleep(0.01)
        raw.rpush(start, *range(processes))  # all go at once
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    return key, [json.loads(out) for out, _ in outputs]


def test_processes_sharing_an_rpm_limit_admit_exactly_rpm(
    make_limiter: MakeLimiter, redis_srv: RedisServer, raw: redis.Redis, prefix: str
) -> None:
    key, results = hammer(redis_srv, raw, prefix, rpm=150, tpm=None, tokens=(1, 1))
    per_process = [sum(1 for _, ok, _ in calls if ok) for calls in results]
    print(f"rpm=150, 4 processes x 200 attempts: admitted per process {per_process}")
    assert sum(per_process) == 150
    limiter = make_limiter()
    assert window_state(raw, limiter, key)[:2] == (150, 150)
    for calls in results:
        for _, ok, wait in calls:
            assert ok or 0.0 < wait <= 60.0
    assert not limiter.try_acquire(key, rpm=150, tpm=None, tokens=1).admitted


def test_processes_sharing_a_tpm_limit_never_exceed_it(
    make_limiter: MakeLimiter, redis_srv: RedisServer, raw: redis.Redis, prefix: str
) -> None:
    tpm = 100_000
    key, results = hammer(redis_srv, raw, prefix, rpm=None, tpm=tpm, tokens=(1, 2000))
    admitted = [t for calls in results for t, ok, _ in calls if ok]
    refused = [t for calls in results for t, ok, _ in calls if not ok]
    per_process = [sum(t for t, ok, _ in calls if ok) for calls in results]
    print(
        f"tpm={tpm}, 4 processes x 200 attempts: admitted {len(admitted)} requests, "
        f"{sum(admitted)} tokens (per process {per_process}); refused {len(refused)}"
    )
    used = sum(admitted)
    assert used <= tpm
    limiter = make_limiter()
    count, total, tokens = window_state(raw, limiter, key)
    assert (count, total) == (len(admitted), used)
    assert sum(int(v) for v in tokens.values()) == used
    # usage only grew during the run, so every refused request still does not fit
    assert refused and all(used + t > tpm for t in refused)
    # and the accounting is tight: exactly the remainder still fits
    assert limiter.try_acquire(key, rpm=None, tpm=tpm, tokens=tpm - used).admitted
    assert not limiter.try_acquire(key, rpm=None, tpm=tpm, tokens=1).admitted


# --------------------------------------------------------------------------- modelwire plumbing


def test_discovered_through_the_entry_point(redis_srv: RedisServer, prefix: str) -> None:
    reg = modelwire.Plugins().get("limiter", "redis")
    assert reg.distribution == "modelwire-redis"
    backend = reg.obj(url=redis_srv.url, prefix=prefix)
    try:
        assert isinstance(backend, LimiterBackend)
        assert backend.blocking is True
        assert backend.try_acquire("m", rpm=1, tpm=None, tokens=1).admitted
    finally:
        backend.close()


@pytest.fixture
def backend(redis_srv: RedisServer, prefix: str) -> Any:
    obj = modelwire.Plugins().get("limiter", "redis").obj(url=redis_srv.url, prefix=prefix)
    yield obj
    obj.close()


@pytest.mark.anyio
async def test_acquire_rejects_through_the_runtime_plumbing(backend: Any) -> None:
    limits = Limits("gpt", rpm=2, tpm=1000, mode="reject", wait_timeout=None)
    tickets = [await acquire(backend, limits, 100, context={}) for _ in range(2)]
    assert len(set(tickets)) == 2
    with pytest.raises(modelwire.RateLimitError) as info:
        await acquire(backend, limits, 100, context={})
    assert info.value.code == "LOCAL_RATE_LIMIT"
    assert info.value.retry_after is not None and 55.0 < info.value.retry_after <= 60.0
    too_big = Limits("other", rpm=None, tpm=1000, mode="wait", wait_timeout=None)
    with pytest.raises(modelwire.RateLimitError) as info:
        await acquire(backend, too_big, 1001, context={"model": "gpt"})
    assert info.value.code == "TPM_TOO_SMALL"
    assert info.value.model == "gpt"
    # reconcile a ticket from acquire() on the worker thread's backend
    backend.reconcile("gpt", tickets[0], 10)


@pytest.mark.anyio
async def test_acquire_waits_for_the_shared_window(
    redis_srv: RedisServer, prefix: str
) -> None:
    import anyio

    window = 0.5
    with RedisLimiter(redis_srv.url, prefix=prefix, window=window) as limiter:
        # The wait is real (the server's clock), the timeout only a safety net.
        limits = Limits("gpt", rpm=1, tpm=None, mode="wait", wait_timeout=60.0)
        before_first = anyio.current_time()
        assert await acquire(limiter, limits, 1, context={}) is not None
        assert await acquire(limiter, limits, 1, context={}) is not None
        # the second waited for the first to leave the window, however slow the
        # machine (a little slack: Redis's clock is not this process's)
        assert anyio.current_time() - before_first >= window - 0.05
    with RedisLimiter(redis_srv.url, prefix=prefix) as limiter:
        # a timeout shorter than the wait rejects at once (a 60 s window
        # cannot free up within this test)
        limits = Limits("gpt-60", rpm=1, tpm=None, mode="reject", wait_timeout=None)
        assert await acquire(limiter, limits, 1, context={}) is not None
        short = Limits("gpt-60", rpm=1, tpm=None, mode="wait", wait_timeout=1.0)
        started = anyio.current_time()
        with pytest.raises(modelwire.RateLimitError) as info:
            await acquire(limiter, short, 1, context={})
        assert info.value.code == "LOCAL_RATE_LIMIT"
        assert anyio.current_time() - started < 30.0  # did not wait it out


@pytest.mark.anyio
async def test_acquire_reports_an_unreachable_redis() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    with RedisLimiter(url, socket_connect_timeout=1.0, retries=0) as limiter:
        limits = Limits("gpt", rpm=1, tpm=None, mode="reject", wait_timeout=None)
        with pytest.raises(modelwire.NetworkError) as info:
            await acquire(limiter, limits, 1, context={})
    assert info.value.code == "LIMITER_UNAVAILABLE"
    assert_no_secret(info.value)


# --------------------------------------------------------------------------- housekeeping


def test_server_helper_copy_matches_the_core_one() -> None:
    core = HERE.parents[2] / "tests" / "servers" / "redis_server.py"
    if not core.exists():
        pytest.skip("not in the modelwire repository (no tests/servers/redis_server.py)")
    assert (HERE / "redis_fixture.py").read_text() == core.read_text()


def test_a_missing_redis_server_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run"):
        require_redis_server()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not on PATH"):
        require_redis_server()
