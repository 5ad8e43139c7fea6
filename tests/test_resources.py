"""The resource manager with real parts: SQLite files, an httpx client against a loopback server, a file cache.

Each resource is released on success, failure and cancellation; pools are
shared by tools within one manager and closed when the manager closes.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from modelwire import ManifestError, NotFoundError
from modelwire.tools import (
    FileCache,
    ResourceManager,
    ResourcePool,
    ResourceSpec,
    SharedPool,
    ToolBuilder,
    ToolContext,
    ToolError,
    ToolManifest,
    ToolRegistry,
    ToolTimeout,
    call_tool,
    tool,
)
from modelwire.tools._resources import SqlitePool

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table notes (id integer primary key, text text not null)")
    conn.close()
    return str(path)


def rows(path: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("select text from notes order by id")]
    finally:
        conn.close()


def sqlite_pool(manager: ResourceManager) -> SqlitePool:
    (pool,) = [p for p in manager.pools() if isinstance(p, SqlitePool)]
    return pool


def note_tool(db_path: str, name: str = "add_note", **options: Any) -> Any:
    @tool(name=name, resources={"db": {"kind": "sqlite", "path": db_path, **options}})
    def add_note(text: str, fail: bool = False, ctx: ToolContext | None = None) -> int:
        """Insert a note (sync: runs in a worker thread, as sqlite3 wants)."""
        assert ctx is not None
        conn: sqlite3.Connection = ctx.resources["db"]
        cur = conn.execute("insert into notes (text) values (?)", (text,))
        if fail:
            raise RuntimeError("after the insert")
        return int(cur.lastrowid or 0)

    return add_note


# -- sqlite ---------------------------------------------------------------------------------


async def test_sqlite_commits_on_success_and_reuses_the_connection(db_path: str) -> None:
    add_note = note_tool(db_path)
    async with ResourceManager() as manager:
        assert await call_tool(add_note, {"text": "one"}, resources=manager) == {"result": 1}
        assert rows(db_path) == ["one"]  # committed: another connection sees it
        pool = sqlite_pool(manager)
        assert (pool.in_use, pool.idle) == (0, 1)
        first = pool._idle[0]
        await call_tool(add_note, {"text": "two"}, resources=manager)
        assert pool._idle == [first]  # the same connection came back
    assert rows(db_path) == ["one", "two"]


async def test_sqlite_rolls_back_and_releases_on_failure(db_path: str) -> None:
    add_note = note_tool(db_path)
    async with ResourceManager() as manager:
        with pytest.raises(ToolError) as info:
            await call_tool(add_note, {"text": "lost", "fail": True}, resources=manager)
        assert info.value.code == "TOOL_FAILED"
        assert isinstance(info.value.__cause__, RuntimeError)
        pool = sqlite_pool(manager)
        assert (pool.in_use, pool.idle) == (0, 1)  # rolled back, reusable
        assert rows(db_path) == []
        await call_tool(add_note, {"text": "kept"}, resources=manager)
    assert rows(db_path) == ["kept"]


async def test_sqlite_connection_closed_on_cancellation(db_path: str) -> None:
    started = anyio.Event()
    seen: list[sqlite3.Connection] = []

    @tool(resources={"db": {"kind": "sqlite", "path": db_path}})
    async def slow(ctx: ToolContext) -> None:
        conn = ctx.resources["db"]
        seen.append(conn)
        await anyio.to_thread.run_sync(lambda: conn.execute("insert into notes (text) values ('half')"))
        started.set()
        await anyio.sleep_forever()

    async with ResourceManager() as manager:
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(call_tool, slow, {}, resources=manager))
            await started.wait()
            tg.cancel_scope.cancel()
        pool = sqlite_pool(manager)
        assert (pool.in_use, pool.idle) == (0, 0)  # not reused
        with pytest.raises(sqlite3.ProgrammingError):
            seen[0].execute("select 1")  # closed
    assert rows(db_path) == []  # never committed


async def test_sqlite_released_when_the_call_times_out(db_path: str) -> None:
    @tool(resources={"db": {"kind": "sqlite", "path": db_path}})
    async def hang(ctx: ToolContext) -> None:
        await anyio.sleep_forever()

    async with ResourceManager() as manager:
        with pytest.raises(ToolTimeout):
            await call_tool(hang, {}, timeout=0.05, resources=manager)
        assert sqlite_pool(manager).in_use == 0


async def test_sqlite_pool_is_shared_and_bounded(db_path: str) -> None:
    a = note_tool(db_path, "a", size=1)
    b = note_tool(db_path, "b", size=1)
    inside = 0
    most = 0

    @tool(name="c", resources={"db": {"kind": "sqlite", "path": db_path, "size": 1}})
    async def c(ctx: ToolContext) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await anyio.sleep(0.01)
        inside -= 1

    async with ResourceManager() as manager:
        await call_tool(a, {"text": "from a"}, resources=manager)
        await call_tool(b, {"text": "from b"}, resources=manager)
        assert len(manager.pools()) == 1  # same kind and options: one pool
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(functools.partial(call_tool, c, {}, timeout=5.0, resources=manager))
        assert most == 1  # size 1: calls waited their turn
    assert rows(db_path) == ["from a", "from b"]


async def test_sqlite_memory_database_lives_as_long_as_the_pool() -> None:
    @tool(resources={"db": {"kind": "sqlite", "path": ":memory:", "size": 3}})
    def bump(ctx: ToolContext) -> int:
        conn = ctx.resources["db"]
        conn.execute("create table if not exists n (v integer)")
        conn.execute("insert into n values (1)")
        return int(conn.execute("select count(*) from n").fetchone()[0])

    async with ResourceManager() as manager:
        assert [(await call_tool(bump, {}, resources=manager))["result"] for _ in range(3)] == [1, 2, 3]
        assert sqlite_pool(manager).size == 1


async def test_pools_close_at_shutdown(db_path: str) -> None:
    add_note = note_tool(db_path)
    manager = ResourceManager()
    await call_tool(add_note, {"text": "x"}, resources=manager)
    conn = sqlite_pool(manager)._idle[0]
    await manager.aclose()
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("select 1")
    assert manager.pools() == []
    with pytest.raises(ToolError) as info:
        await call_tool(add_note, {"text": "y"}, resources=manager)
    assert info.value.code == "RESOURCES_CLOSED"


async def test_connection_in_use_at_shutdown_closes_when_released(db_path: str) -> None:
    manager = ResourceManager()
    manifest = ToolManifest("t", resources=[ResourceSpec("db", "sqlite", {"path": db_path})])
    async with manager.acquire(manifest) as res:
        pool = sqlite_pool(manager)
        await manager.aclose()
        conn = res["db"]
        conn.execute("select 1")  # still usable by its call
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("select 1")
    assert pool.closed and pool.idle == 0


# -- http_client ------------------------------------------------------------------------------


class _Weather(http.server.BaseHTTPRequestHandler):
    """Answers every GET with JSON naming the path and one header."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"temp": 21, "path": self.path, "app": self.headers.get("x-app")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A loopback HTTP server; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Weather)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def test_http_client_is_shared_and_closed_at_shutdown(server: str) -> None:
    clients: list[httpx.AsyncClient] = []

    @tool(resources={"http": {"kind": "http_client", "base_url": server, "timeout": 5, "headers": {"x-app": "t"}}})
    async def fetch(city: str, ctx: ToolContext) -> dict[str, Any]:
        client: httpx.AsyncClient = ctx.resources["http"]
        clients.append(client)
        response = await client.get("/weather", params={"city": city})
        return dict(response.json())

    async with ResourceManager() as manager:
        out = await call_tool(fetch, {"city": "Oslo"}, resources=manager)
        assert out == {"result": {"temp": 21, "path": "/weather?city=Oslo", "app": "t"}}
        out = await call_tool(fetch, {"city": "Rome"}, resources=manager)
        assert out["result"]["path"] == "/weather?city=Rome"
        assert clients[0] is clients[1]
        assert not clients[0].is_closed
    assert clients[0].is_closed


async def test_sync_http_client_for_sync_tools(server: str) -> None:
    @tool(resources={"http": {"kind": "http_client", "base_url": server, "sync": True}})
    def fetch(ctx: ToolContext) -> dict[str, Any]:
        client: httpx.Client = ctx.resources["http"]
        return dict(client.get("/x").json())

    async with ResourceManager() as manager:
        assert (await call_tool(fetch, {}, resources=manager))["result"]["path"] == "/x"
        (pool,) = manager.pools()
        client = await pool.acquire()
        await pool.release(client, "ok")
    assert client.is_closed


# -- file_cache --------------------------------------------------------------------------------


async def test_file_cache_survives_calls_and_managers(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"

    @tool(resources={"cache": {"kind": "file_cache", "dir": str(cache_dir)}})
    async def memo(key: str, value: str, ctx: ToolContext) -> str | None:
        cache: FileCache = ctx.resources["cache"]
        previous = await cache.aget(key)
        await cache.aset(key, value)
        return previous  # type: ignore[no-any-return]

    async with ResourceManager() as manager:
        assert (await call_tool(memo, {"key": "k", "value": "v1"}, resources=manager))["result"] is None
        assert (await call_tool(memo, {"key": "k", "value": "v2"}, resources=manager))["result"] == "v1"
        (pool,) = manager.pools()
        cache = await pool.acquire()
        await pool.release(cache, "ok")
    with pytest.raises(ToolError, match="closed"):
        cache.get("k")
    async with ResourceManager() as again:  # on disk: a new manager sees it
        assert (await call_tool(memo, {"key": "k", "value": "v3"}, resources=again))["result"] == "v2"
    files = sorted(os.listdir(cache_dir))
    assert len(files) == 1 and files[0].endswith(".json")
    assert json.loads((cache_dir / files[0]).read_text())["value"] == "v3"


def test_file_cache_values_and_ttl(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "c", ttl=60)
    cache.set("a", {"n": [1, 2]})
    cache.set("short", "x", ttl=0.01)
    assert cache.get("a") == {"n": [1, 2]} and "a" in cache
    time.sleep(0.02)
    assert cache.get("short", "expired") == "expired"
    cache.delete("a")
    assert cache.get("a") is None
    cache.set("b", 1)
    cache.clear()
    assert os.listdir(tmp_path / "c") == []


# -- release on success, failure and cancellation: every path, recorded ----------------------------


class RecordingPool(ResourcePool):
    kind = "recording"

    def __init__(self, log: list[tuple[str, Any]], fail_acquire: bool = False) -> None:
        super().__init__()
        self.log = log
        self.fail_acquire = fail_acquire
        self.count = 0

    async def acquire(self) -> Any:
        if self.fail_acquire:
            raise ConnectionError("no connection")
        self.count += 1
        self.in_use += 1
        self.log.append(("acquire", self.count))
        return self.count

    async def release(self, obj: Any, outcome: Any) -> None:
        self.in_use -= 1
        await anyio.sleep(0)  # release may await even when cancelled (shielded)
        self.log.append((outcome, obj))

    async def aclose(self) -> None:
        self.closed = True
        self.log.append(("close", None))


@pytest.fixture
def recorded() -> tuple[ResourceManager, list[tuple[str, Any]]]:
    log: list[tuple[str, Any]] = []
    manager = ResourceManager()
    manager.register_kind("recording", lambda options: RecordingPool(log, bool(options.get("fail"))))
    return manager, log


def two_resources(fail_second: bool = False) -> ToolManifest:
    return ToolManifest(
        "t",
        resources=[
            ResourceSpec("a", "recording"),
            ResourceSpec("b", "recording", {"fail": fail_second, "n": 2}),
        ],
    )


async def test_release_on_success_in_reverse_order(recorded: Any) -> None:
    manager, log = recorded
    async with manager.acquire(two_resources()) as res:
        assert res == {"a": 1, "b": 1}
    assert log == [("acquire", 1), ("acquire", 1), ("ok", 1), ("ok", 1)]
    await manager.aclose()
    assert log[-2:] == [("close", None), ("close", None)]


async def test_release_on_failure(recorded: Any) -> None:
    manager, log = recorded
    with pytest.raises(KeyError):
        async with manager.acquire(two_resources()):
            raise KeyError("x")
    assert [e for e in log if e[0] != "acquire"] == [("failed", 1), ("failed", 1)]
    await manager.aclose()


async def test_release_on_cancellation(recorded: Any) -> None:
    manager, log = recorded
    with anyio.CancelScope() as scope:
        async with manager.acquire(two_resources()):
            scope.cancel()
            await anyio.sleep_forever()
    assert [e for e in log if e[0] != "acquire"] == [("cancelled", 1), ("cancelled", 1)]
    await manager.aclose()


async def test_failed_acquire_releases_what_was_held(recorded: Any) -> None:
    manager, log = recorded
    with pytest.raises(ToolError) as info:
        async with manager.acquire(two_resources(fail_second=True)):
            pytest.fail("not reached")
    err = info.value
    assert (err.code, err.tool, getattr(err, "resource", None)) == ("RESOURCE_FAILED", "t", "b")
    assert "cannot acquire resource 'b' (recording): ConnectionError: no connection" in err.message
    assert isinstance(err.__cause__, ConnectionError)
    assert log == [("acquire", 1), ("failed", 1)]
    await manager.aclose()


async def test_custom_kind_is_known_at_registration(recorded: Any) -> None:
    manager, _log = recorded
    t = ToolBuilder("t").resource("r", "recording", anything=1).build(lambda: None)
    ToolRegistry(resources=manager).register(t)  # known to this manager
    with pytest.raises(ManifestError, match="resource 'r' has unknown kind 'recording'"):
        ToolRegistry().register(t)  # not to a default one
    await manager.aclose()


async def test_shared_pool_with_sync_factory() -> None:
    made: list[object] = []
    closed: list[object] = []
    manager = ResourceManager()
    manager.register_kind(
        "thing",
        lambda options: SharedPool(lambda: made.append(object()) or made[-1], closed.append, kind="thing"),
        options={"label": lambda v: None if isinstance(v, str) else "expected a string"},
    )
    manifest = ToolManifest("t", resources=[ResourceSpec("x", "thing", {"label": "a"})])
    for _ in range(3):
        async with manager.acquire(manifest) as res:
            assert res["x"] is made[0]
    await manager.aclose()
    assert closed == made and len(made) == 1


async def test_unknown_kind_and_bad_options_at_acquire() -> None:
    async with ResourceManager() as manager:
        with pytest.raises(NotFoundError) as info:
            async with manager.acquire(ToolManifest("t", resources=[ResourceSpec("db", "postgres")])):
                pass
        assert info.value.code == "RESOURCE_KIND_NOT_FOUND"
        assert "tool 't': resource 'db' has unknown kind 'postgres'" in info.value.message
        with pytest.raises(ToolError, match=re.escape("resource 'db' (sqlite): sqlite needs option 'path'")):
            async with manager.acquire(ToolManifest("t", resources=[ResourceSpec("db", "sqlite")])):
                pass


def test_register_kind_twice_is_an_error() -> None:
    with pytest.raises(Exception, match="already registered"):
        ResourceManager().register_kind("sqlite", lambda options: SqlitePool(":memory:"))


# -- the registry and call_tool own managers ----------------------------------------------------


async def test_call_tool_without_a_manager_uses_a_temporary_one(db_path: str) -> None:
    add_note = note_tool(db_path)
    assert await call_tool(add_note, {"text": "solo"}) == {"result": 1}
    assert rows(db_path) == ["solo"]


async def test_registry_shares_one_manager_and_closes_it(db_path: str, tmp_path: Path) -> None:
    registry = ToolRegistry([note_tool(db_path)])
    async with registry:
        await registry.call("add_note", {"text": "a"})
        await registry.call("add_note", {"text": "b"})
        manager = registry.resources
        assert len(manager.pools()) == 1
    assert manager.closed
    assert rows(db_path) == ["a", "b"]


def test_option_checks_name_tool_and_resource(tmp_path: Path) -> None:
    bad: Mapping[str, Any] = {"base_url": "ftp://x", "timeout": -1, "headers": {"a": 1}, "sync": "yes"}
    t = ToolBuilder("t").resource("http", "http_client", **bad).build(lambda: None)
    with pytest.raises(ManifestError) as info:
        ToolRegistry().register(t)
    assert [i.path for i in info.value.issues] == [
        "tools.t.resources.http.options.base_url",
        "tools.t.resources.http.options.timeout",
        "tools.t.resources.http.options.headers",
        "tools.t.resources.http.options.sync",
    ]
