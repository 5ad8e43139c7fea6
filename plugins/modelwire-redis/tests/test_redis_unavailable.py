"""The ``redis`` limiter when Redis is frozen: fail fast, keep threads free.

A network partition looks to a client like a server that accepts the TCP
connection (the kernel does that) and then never answers. A real
redis-server stopped with SIGSTOP behaves exactly so. Before the fix one
call stalled 15 s (three 5 s reads) and 50 calls held all 40 of anyio's
worker threads, so an unrelated ``to_thread`` job waited 15 s.

The bounds below are safety nets far above the expected ~1 s and far below
the old stalls, not performance assertions.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest
from redis_fixture import RedisServer, redis_server

import modelwire
from modelwire._runtime.limits import CallLimits, acquire
from modelwire_redis import RedisLimiter

#: no single call may take longer (the old default stalled 15 s, 69 s with policy retries)
CALL_BOUND = 10.0
#: an unrelated to_thread job must finish within this while the limiter fails
THREAD_BOUND = 5.0
CALLS = 50


@pytest.fixture
def srv() -> Iterator[RedisServer]:
    """A server of this test's own: freezing the session one would stall the others."""
    with redis_server() as server:
        yield server


@contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """The server stops answering (SIGSTOP) for the block; always resumed."""
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


LIMITS = CallLimits("m", rpm=3, tpm=None, mode="reject", wait_timeout=None)


async def storm(
    limiter: RedisLimiter, limits: CallLimits = LIMITS
) -> tuple[list[Any], list[float], float]:
    """``CALLS`` concurrent acquire() calls plus one unrelated to_thread job.

    Returns each call's outcome (ticket or exception), each call's duration,
    and how long the to_thread job took once every call had started.
    """
    outcomes: list[Any] = []
    durations: list[float] = []
    all_started = anyio.Event()
    started = 0
    job_took: list[float] = []

    async def call() -> None:
        nonlocal started
        started += 1
        if started == CALLS:
            all_started.set()
        t0 = anyio.current_time()
        try:
            outcomes.append(await acquire(limiter, limits, 1, {"model": "m"}))
        except Exception as exc:
            outcomes.append(exc)
        durations.append(anyio.current_time() - t0)

    async def unrelated_job() -> None:
        await all_started.wait()
        t0 = anyio.current_time()
        done = threading.Event()
        await anyio.to_thread.run_sync(done.set)
        assert done.is_set()
        job_took.append(anyio.current_time() - t0)

    with anyio.fail_after(60):  # a hung test fails instead of hanging CI
        async with anyio.create_task_group() as tg:
            tg.start_soon(unrelated_job)
            for _ in range(CALLS):
                tg.start_soon(call)
    return outcomes, durations, job_took[0]


def check_bounds(durations: list[float], job_took: float) -> None:
    assert len(durations) == CALLS
    assert max(durations) < CALL_BOUND, f"slowest call took {max(durations):.1f}s"
    assert job_took < THREAD_BOUND, f"the unrelated to_thread job waited {job_took:.1f}s"


# --------------------------------------------------------------------------- reject (default)


@pytest.mark.anyio
async def test_frozen_redis_fails_closed_fast_and_leaves_threads_free(srv: RedisServer) -> None:
    with RedisLimiter(srv.url, prefix="p:") as limiter:
        assert limiter.on_unavailable == "reject"
        assert await acquire(limiter, LIMITS, 1, {}) is not None  # a pooled connection exists
        with frozen(srv):
            outcomes, durations, job_took = await storm(limiter)
            check_bounds(durations, job_took)
            for outcome in outcomes:
                assert isinstance(outcome, modelwire.NetworkError), outcome
                assert outcome.code == "LIMITER_UNAVAILABLE"
                assert outcome.kind == "network"
            # the breaker is open: the next call does no I/O and takes no thread
            assert not limiter.available
            assert limiter.blocking is False
            with pytest.raises(modelwire.NetworkError, match="unavailable") as info:
                limiter.try_acquire("m", rpm=3, tpm=None, tokens=1)
            assert info.value.code == "LIMITER_UNAVAILABLE"
            # reconcile while Redis is skipped: a silent no-op (the reservation stands)
            limiter.reconcile("m", "some-ticket", 5)


def fails_in_time(fn: Any) -> BaseException | None:
    """Run ``fn`` in a thread; it must end within CALL_BOUND. Its exception."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(CALL_BOUND), "a call to a frozen Redis did not end in time"
    return errors[0] if errors else None


def test_one_call_is_bounded_by_the_socket_timeouts(srv: RedisServer) -> None:
    """Without the breaker each call pays one timeout, never a retry loop."""
    with RedisLimiter(srv.url, prefix="p:", cooldown=0, socket_timeout=0.3) as limiter:
        assert limiter.try_acquire("m", rpm=3, tpm=None, tokens=1).admitted
        with frozen(srv):
            for _ in range(3):
                error = fails_in_time(lambda: limiter.try_acquire("m", rpm=3, tpm=None, tokens=1))
                assert isinstance(error, modelwire.NetworkError)
                assert error.code == "LIMITER_UNAVAILABLE"
                assert "Timeout" in error.message
                assert limiter.available  # cooldown=0: no breaker


# --------------------------------------------------------------------------- allow / local


@pytest.mark.anyio
async def test_allow_admits_without_a_limit_and_warns(
    srv: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisLimiter(srv.url, prefix="p:", on_unavailable="allow") as limiter:
        with frozen(srv), caplog.at_level(logging.WARNING, logger="modelwire.redis"):
            outcomes, durations, job_took = await storm(limiter)
        check_bounds(durations, job_took)
        # admitted, far over rpm=3, with no ticket to reconcile
        assert outcomes == [None] * CALLS
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "WITHOUT a shared limit" in warnings[0].getMessage()


@pytest.mark.anyio
async def test_local_falls_back_to_an_in_process_limiter(srv: RedisServer) -> None:
    with RedisLimiter(srv.url, prefix="p:", on_unavailable="local") as limiter, frozen(srv):
        outcomes, durations, job_took = await storm(limiter)
        check_bounds(durations, job_took)
        admitted = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        # the local window holds rpm=3 for this process
        assert len(admitted) == 3
        assert all(isinstance(o, modelwire.RateLimitError) for o in refused)
        assert {o.code for o in refused} == {"LOCAL_RATE_LIMIT"}
        # local tickets reconcile locally, without Redis
        for ticket in admitted:
            limiter.reconcile("m", ticket, 7)


# --------------------------------------------------------------------------- recovery


def test_redis_is_probed_again_after_the_cooldown(srv: RedisServer) -> None:
    with RedisLimiter(srv.url, prefix="p:", cooldown=0.05, socket_timeout=0.3) as limiter:
        assert limiter.try_acquire("m", rpm=100, tpm=None, tokens=1).admitted
        with frozen(srv):
            with pytest.raises(modelwire.NetworkError):
                limiter.try_acquire("m", rpm=100, tpm=None, tokens=1)
            assert not limiter.available
        # resumed: once the cooldown is over a call reaches Redis and closes the breaker
        deadline = threading.Event()
        timer = threading.Timer(CALL_BOUND, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                try:
                    if limiter.try_acquire("m", rpm=100, tpm=None, tokens=1).admitted:
                        break
                except modelwire.NetworkError:
                    deadline.wait(0.02)
            else:
                pytest.fail("the limiter never used Redis again")
        finally:
            timer.cancel()
        assert limiter.available and limiter.blocking is True


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "options",
    [
        {"on_unavailable": "ignore"},
        {"cooldown": -1},
        {"cooldown": float("nan")},
        {"socket_timeout": 0},
        {"socket_connect_timeout": -0.5},
        {"retries": -1},
        {"retries": 1.5},
    ],
)
def test_bad_failure_options_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(modelwire.InvalidRequestError) as info:
        RedisLimiter("redis://127.0.0.1:1/0", **options)
    assert info.value.code == "LIMITER_CONFIG"
    assert next(iter(options)) in info.value.message


def test_options_come_through_the_plugin_registry(srv: RedisServer) -> None:
    factory = modelwire.Plugins().get("limiter", "redis").obj
    limiter = factory(
        url=srv.url, prefix="p:", on_unavailable="local", cooldown=2, socket_timeout=1.0
    )
    with limiter:
        assert (limiter.on_unavailable, limiter.cooldown) == ("local", 2.0)
        assert "on_unavailable='local'" in repr(limiter)
