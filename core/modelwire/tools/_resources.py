"""The resource manager: what a tool's manifest declares, held for one call.

A tool lists the resources it needs (``resources: {db: {kind: sqlite,
options: {path: app.db}}}``). For each call the manager takes one object per
resource from a pool and gives it back when the call ends, on success,
failure and cancellation alike::

    async with ResourceManager() as manager:
        async with manager.acquire(tool.manifest) as resources:
            resources["db"].execute(...)

Pools are shared: two tools naming the same kind with the same options use
one pool, for as long as the manager lives; :meth:`ResourceManager.aclose`
(at runtime shutdown) closes them all. Built-in kinds:

``sqlite``
    A pool of real :mod:`sqlite3` connections (options: ``path``, ``size``
    (default 4; 1 for ``:memory:``, so the database lives as long as the
    pool), ``timeout``). A call is a transaction: committed when the call
    succeeds, rolled back when it fails; when it is cancelled the connection
    is interrupted and closed, never reused. sqlite3 blocks: a sync tool
    already runs in a worker thread; an async tool should wrap its queries
    in ``anyio.to_thread.run_sync``.
``http_client``
    One shared :class:`httpx.AsyncClient` (options: ``base_url``,
    ``timeout``, ``headers``; ``sync: true`` gives an :class:`httpx.Client`
    for sync tools).
``file_cache``
    A :class:`FileCache`, a directory of JSON values with ``get`` / ``set``
    (options: ``dir``, ``ttl`` seconds).

Other kinds are registered with :meth:`ResourceManager.register_kind`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal

import anyio
import attrs

from ._errors import ToolError
from ._manifest import ResourceSpec, ToolManifest

__all__ = [
    "FileCache",
    "Outcome",
    "ResourceKind",
    "ResourceManager",
    "ResourcePool",
    "SharedPool",
    "SqlitePool",
    "builtin_kinds",
    "option_problems",
]

#: How a call that held a resource ended.
Outcome = Literal["ok", "failed", "cancelled"]


class ResourcePool:
    """Hands out one object per call and takes it back.

    Subclasses implement :meth:`acquire`, :meth:`release` and
    :meth:`aclose`. ``release`` learns how the call ended (``ok``,
    ``failed`` or ``cancelled``) and decides whether the object is reused.
    """

    kind: str = ""
    options: Mapping[str, Any] = {}

    def __init__(self) -> None:
        self.in_use = 0
        self.closed = False

    async def acquire(self) -> Any:
        raise NotImplementedError

    async def release(self, obj: Any, outcome: Outcome) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        if self.closed:
            raise ToolError(f"the {self.kind} pool is closed", code="RESOURCES_CLOSED")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} in_use={self.in_use} closed={self.closed}>"


class SharedPool(ResourcePool):
    """One object shared by every call (an HTTP client, a cache): made on first use, closed at shutdown."""

    def __init__(
        self,
        create: Callable[[], Any],
        close: Callable[[Any], Any] | None = None,
        *,
        kind: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._create = create
        self._close = close
        self.kind = kind
        self.options = dict(options or {})
        self._obj: Any = None
        self._made = False
        self._lock: anyio.Lock | None = None

    async def acquire(self) -> Any:
        self._check_open()
        if not self._made:
            if self._lock is None:
                self._lock = anyio.Lock()
            async with self._lock:
                if not self._made:
                    obj = self._create()
                    if hasattr(obj, "__await__"):
                        obj = await obj
                    self._obj, self._made = obj, True
        self.in_use += 1
        return self._obj

    async def release(self, obj: Any, outcome: Outcome) -> None:
        self.in_use -= 1

    async def aclose(self) -> None:
        self.closed = True
        obj, made = self._obj, self._made
        self._obj, self._made = None, False
        if made and self._close is not None:
            result = self._close(obj)
            if hasattr(result, "__await__"):
                await result


class SqlitePool(ResourcePool):
    """Up to ``size`` sqlite3 connections to one database; see the module docs for the transaction rules."""

    kind = "sqlite"

    def __init__(self, path: str, *, size: int = 4, timeout: float = 5.0) -> None:
        super().__init__()
        self.path = path
        self.size = 1 if path == ":memory:" else size
        self.timeout = timeout
        self.options = {"path": path, "size": self.size, "timeout": timeout}
        self._idle: list[sqlite3.Connection] = []
        self._busy: set[sqlite3.Connection] = set()
        self._slots: anyio.Semaphore | None = None

    @property
    def idle(self) -> int:
        return len(self._idle)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)

    async def acquire(self) -> sqlite3.Connection:
        self._check_open()
        if self._slots is None:
            self._slots = anyio.Semaphore(self.size)
        await self._slots.acquire()
        try:
            self._check_open()
            conn = self._idle.pop() if self._idle else await anyio.to_thread.run_sync(self._connect)
        except BaseException:
            self._slots.release()
            raise
        self._busy.add(conn)
        self.in_use += 1
        return conn

    async def release(self, obj: Any, outcome: Outcome) -> None:
        conn: sqlite3.Connection = obj
        self._busy.discard(conn)
        self.in_use -= 1
        try:
            if outcome == "cancelled":
                # The call may have left a query running in a worker thread.
                conn.interrupt()
                await anyio.to_thread.run_sync(conn.close)
                return
            try:
                await anyio.to_thread.run_sync(conn.commit if outcome == "ok" else conn.rollback)
            except sqlite3.Error:
                await anyio.to_thread.run_sync(conn.close)
                raise
            if self.closed:
                await anyio.to_thread.run_sync(conn.close)
            else:
                self._idle.append(conn)
        finally:
            if self._slots is not None:
                self._slots.release()

    async def aclose(self) -> None:
        """Close the idle connections now; those in use close when their call ends."""
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await anyio.to_thread.run_sync(conn.close)


class FileCache:
    """A directory-backed cache of JSON values: ``get(key)`` / ``set(key, value)``.

    Keys are any strings (stored under their SHA-256); writes are atomic
    (a temporary file renamed into place), so concurrent calls and
    processes never see half a value. ``ttl`` (seconds) expires entries.
    The methods do small blocking file I/O; ``aget`` / ``aset`` run them in
    a worker thread for async tools.
    """

    def __init__(self, dir: str | os.PathLike[str], *, ttl: float | None = None) -> None:
        self.dir = os.fspath(dir)
        self.ttl = ttl
        self.closed = False
        os.makedirs(self.dir, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.dir, hashlib.sha256(key.encode("utf-8")).hexdigest() + ".json")

    def _check_open(self) -> None:
        if self.closed:
            raise ToolError(f"the file cache at {self.dir} is closed", code="RESOURCES_CLOSED")

    def get(self, key: str, default: Any = None) -> Any:
        self._check_open()
        try:
            with open(self._path(key), encoding="utf-8") as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            return default
        expires = entry.get("expires")
        if expires is not None and expires <= time.time():
            self.delete(key)
            return default
        return entry.get("value", default)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        self._check_open()
        ttl = ttl if ttl is not None else self.ttl
        entry = {"key": key, "value": value, "expires": time.time() + ttl if ttl is not None else None}
        text = json.dumps(entry, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, key: str) -> None:
        self._check_open()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def __contains__(self, key: str) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def clear(self) -> None:
        self._check_open()
        for name in os.listdir(self.dir):
            if name.endswith(".json"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, name))

    async def aget(self, key: str, default: Any = None) -> Any:
        return await anyio.to_thread.run_sync(lambda: self.get(key, default))

    async def aset(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        await anyio.to_thread.run_sync(lambda: self.set(key, value, ttl=ttl))

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"FileCache({self.dir!r})"


_MISSING = object()


# -- kinds -------------------------------------------------------------------------

OptionCheck = Callable[[Mapping[str, Any]], "list[tuple[str | None, str]]"]


@attrs.frozen
class ResourceKind:
    """A kind of resource: how to make its pool, and what its options may be.

    ``pool(options)`` makes the pool shared by every tool naming this kind
    with these options. ``options`` maps each allowed option to a check
    (``(value) -> problem or None``); ``required`` lists the mandatory ones.
    """

    name: str
    pool: Callable[[Mapping[str, Any]], ResourcePool]
    #: option -> check; None accepts any options
    options: Mapping[str, Callable[[Any], str | None]] | None = None
    required: tuple[str, ...] = ()
    description: str = ""


def _is_str(v: Any) -> str | None:
    return None if isinstance(v, str) and v else "expected a non-empty string"


def _is_positive(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
    return None if ok else "expected a positive number"


def _is_size(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= 1
    return None if ok else "expected an integer >= 1"


def _is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "expected a boolean"


def _is_url(v: Any) -> str | None:
    if isinstance(v, str) and v.startswith(("http://", "https://")):
        return None
    return f"expected an http(s) URL, got {v!r}"


def _is_headers(v: Any) -> str | None:
    if isinstance(v, Mapping) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        return None
    return "expected a mapping of header names to strings"


def _sqlite_pool(options: Mapping[str, Any]) -> ResourcePool:
    return SqlitePool(str(options["path"]), size=int(options.get("size", 4)), timeout=float(options.get("timeout", 5.0)))


def _http_pool(options: Mapping[str, Any]) -> ResourcePool:
    def create() -> Any:
        import httpx

        kwargs: dict[str, Any] = {"timeout": float(options.get("timeout", 30.0))}
        if "base_url" in options:
            kwargs["base_url"] = options["base_url"]
        if "headers" in options:
            kwargs["headers"] = dict(options["headers"])
        return httpx.Client(**kwargs) if options.get("sync") else httpx.AsyncClient(**kwargs)

    async def close(client: Any) -> None:
        if hasattr(client, "aclose"):
            await client.aclose()
        else:
            client.close()

    return SharedPool(create, close, kind="http_client", options=options)


def _file_cache_pool(options: Mapping[str, Any]) -> ResourcePool:
    async def create() -> FileCache:
        ttl = options.get("ttl")
        return await anyio.to_thread.run_sync(lambda: FileCache(options["dir"], ttl=ttl))

    return SharedPool(create, FileCache.close, kind="file_cache", options=options)


_BUILTIN = {
    k.name: k
    for k in (
        ResourceKind(
            "sqlite", _sqlite_pool,
            {"path": _is_str, "size": _is_size, "timeout": _is_positive},
            required=("path",), description="a pool of sqlite3 connections",
        ),
        ResourceKind(
            "http_client", _http_pool,
            {"base_url": _is_url, "timeout": _is_positive, "headers": _is_headers, "sync": _is_bool},
            description="a shared httpx client",
        ),
        ResourceKind(
            "file_cache", _file_cache_pool,
            {"dir": _is_str, "ttl": _is_positive},
            required=("dir",), description="a directory-backed cache",
        ),
    )
}


def builtin_kinds() -> dict[str, ResourceKind]:
    """The kinds every manager knows: sqlite, http_client, file_cache."""
    return dict(_BUILTIN)


def option_problems(kind: ResourceKind, options: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """(option, problem) for each missing, unknown or bad option of a resource."""
    if not isinstance(options, Mapping):
        return [(None, f"options must be a mapping, got {type(options).__name__}")]
    out: list[tuple[str | None, str]] = []
    for name in kind.required:
        if name not in options:
            out.append((None, f"{kind.name} needs option {name!r}"))
    for name, value in options.items():
        if kind.options is None:
            continue
        check = kind.options.get(name)
        if check is None:
            allowed = ", ".join(sorted(kind.options)) or "none"
            out.append((name, f"unknown option {name!r} for {kind.name}; allowed: {allowed}"))
            continue
        problem = check(value)
        if problem:
            out.append((name, problem))
    return out


# -- the manager ---------------------------------------------------------------------


class ResourceManager:
    """Pools of resources shared by tool calls; one per runtime, closed at shutdown.

    ``acquire(manifest)`` is an async context manager giving ``name ->
    object`` for the resources the manifest declares, released in reverse
    order when the block ends (success, failure or cancellation; release
    itself is shielded from cancellation). A manager belongs to one event
    loop.
    """

    def __init__(self, kinds: Mapping[str, ResourceKind] | None = None) -> None:
        self._kinds = builtin_kinds()
        self._kinds.update(kinds or {})
        self._pools: dict[tuple[str, str], ResourcePool] = {}
        self.closed = False

    def register_kind(
        self,
        name: str,
        pool: Callable[[Mapping[str, Any]], ResourcePool] | ResourceKind,
        *,
        options: Mapping[str, Callable[[Any], str | None]] | None = None,
        required: tuple[str, ...] = (),
    ) -> ResourceKind:
        """Add a kind; ``options=None`` accepts any options. Replacing a built-in is an error."""
        if name in self._kinds:
            from .._errors import InvalidRequestError

            raise InvalidRequestError(f"resource kind {name!r} is already registered", code="RESOURCE_KIND_DUPLICATE")
        if isinstance(pool, ResourceKind):
            kind = attrs.evolve(pool, name=name)
        else:
            kind = ResourceKind(name, pool, options, required)
        self._kinds[name] = kind
        return kind

    def kinds(self) -> dict[str, ResourceKind]:
        return dict(self._kinds)

    def pools(self) -> list[ResourcePool]:
        """The pools made so far (for inspection and tests)."""
        return list(self._pools.values())

    def _pool(self, spec: ResourceSpec, tool: str) -> ResourcePool:
        if self.closed:
            raise ToolError("the resource manager is closed", code="RESOURCES_CLOSED", tool=tool, resource=spec.name)
        kind = self._kinds.get(spec.kind)
        if kind is None:
            from .._errors import NotFoundError

            raise NotFoundError(
                f"tool {tool!r}: resource {spec.name!r} has unknown kind {spec.kind!r}; "
                f"known: {', '.join(sorted(self._kinds))}",
                code="RESOURCE_KIND_NOT_FOUND", tool=tool, resource=spec.name,
            )
        key = (spec.kind, json.dumps(spec.options, sort_keys=True, default=repr))
        pool = self._pools.get(key)
        if pool is None:
            problems = option_problems(kind, spec.options)
            if problems:
                detail = "; ".join(f"{o}: {m}" if o else m for o, m in problems)
                raise ToolError(
                    f"tool {tool!r}: resource {spec.name!r} ({spec.kind}): {detail}",
                    code="RESOURCE_FAILED", tool=tool, resource=spec.name,
                )
            pool = kind.pool(spec.options)
            self._pools[key] = pool
        return pool

    @contextlib.asynccontextmanager
    async def acquire(self, manifest: ToolManifest) -> AsyncIterator[dict[str, Any]]:
        held: list[tuple[ResourceSpec, ResourcePool, Any]] = []
        resources: dict[str, Any] = {}
        try:
            for spec in manifest.resources:
                pool = self._pool(spec, manifest.name)
                try:
                    obj = await pool.acquire()
                except ToolError:
                    raise
                except Exception as exc:
                    raise ToolError(
                        f"tool {manifest.name!r}: cannot acquire resource {spec.name!r} ({spec.kind}): "
                        f"{type(exc).__name__}: {exc}",
                        code="RESOURCE_FAILED", tool=manifest.name, resource=spec.name,
                    ) from exc
                held.append((spec, pool, obj))
                resources[spec.name] = obj
            yield resources
        except BaseException as exc:
            outcome: Outcome = "failed" if isinstance(exc, Exception) else "cancelled"
            with anyio.CancelScope(shield=True):
                for _spec, pool, obj in reversed(held):
                    with contextlib.suppress(Exception):  # the call's own error matters more
                        await pool.release(obj, outcome)
            raise
        else:
            errors: list[tuple[ResourceSpec, Exception]] = []
            with anyio.CancelScope(shield=True):
                for spec, pool, obj in reversed(held):
                    try:
                        await pool.release(obj, "ok")
                    except Exception as exc:
                        errors.append((spec, exc))
            if errors:
                bad, cause = errors[0]
                raise ToolError(
                    f"tool {manifest.name!r}: releasing resource {bad.name!r} ({bad.kind}) failed: "
                    f"{type(cause).__name__}: {cause}",
                    code="RESOURCE_FAILED", tool=manifest.name, resource=bad.name,
                ) from cause

    async def aclose(self) -> None:
        """Close every pool (objects in use close when their call releases them)."""
        self.closed = True
        pools, self._pools = list(self._pools.values()), {}
        errors: list[tuple[ResourcePool, Exception]] = []
        with anyio.CancelScope(shield=True):
            for pool in pools:
                try:
                    await pool.aclose()
                except Exception as exc:
                    errors.append((pool, exc))
        if errors:
            bad, cause = errors[0]
            raise ToolError(
                f"closing the {bad.kind} pool failed: {type(cause).__name__}: {cause}"
                + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                code="RESOURCE_FAILED",
            ) from cause

    async def __aenter__(self) -> ResourceManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
