"""Fixtures for the Redis limiter tests: one real redis-server per session.

The server comes from ``redis_fixture.py``, a copy of the core's
``tests/servers/redis_server.py``. Without ``redis-server`` on PATH the tests
that need it skip, or fail when the environment variable ``CI`` is set.
Each test gets its own key prefix, so tests never see each other's windows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fake_clock import FakeClock
from redis_fixture import RedisServer, redis_server

from modelwire_redis import RedisLimiter


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
def prefix() -> str:
    return f"mwtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def raw(redis_srv: RedisServer) -> Iterator[redis.Redis]:
    """A plain client for looking at what the limiter stored."""
    client = redis.Redis.from_url(redis_srv.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def make_limiter(redis_srv: RedisServer, prefix: str) -> Iterator[Callable[..., RedisLimiter]]:
    """Build limiters on the session server under this test's prefix; closes them after."""
    made: list[RedisLimiter] = []

    def make(**options: Any) -> RedisLimiter:
        options.setdefault("url", redis_srv.url)
        options.setdefault("prefix", prefix)
        limiter = RedisLimiter(**options)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(make_limiter: Callable[..., RedisLimiter]) -> RedisLimiter:
    return make_limiter()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
