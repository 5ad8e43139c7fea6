"""pytest fixtures for testing manifests and plugins with modelwire.

Registered through the ``pytest11`` entry point, so every pytest run in an
environment where modelwire is installed has these fixtures; nothing to add
to ``conftest.py``. Importing this module imports nothing heavy and starts
nothing: each fixture does its work when a test asks for it.

===============================  ==========  ==============================================
fixture                          scope       what it gives
===============================  ==========  ==============================================
``modelwire_replay``             function    a running :class:`~modelwire.testing.ReplayServer`,
                                             reset for each test (queue, records, seed, default)
``modelwire_replay_factory``     session     ``factory(seed=0, default=None)`` -> a new
                                             running server, stopped when the session ends
``modelwire_plugins``            function    ``factory(*plugins, entry_points=None)`` -> an
                                             isolated :class:`~modelwire.Plugins`
``modelwire_runtime``            function    ``factory(*sources, env=None, plugins=None, **kw)``
                                             -> an isolated :class:`~modelwire.Runtime`
                                             (``factory.sync(...)``: a
                                             :class:`~modelwire.SyncRuntime`), closed at teardown
``modelwire_feed``               function    ``feed(parser, data, **options)`` -> the frames,
                                             after checking that every chunking gives the same
===============================  ==========  ==============================================

See docs/plugin-authors.md for examples.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

if TYPE_CHECKING:
    from modelwire import Frame, ParseError, Plugins, Runtime, SyncRuntime
    from modelwire.testing import ReplayServer, Reply, Script

__all__ = [
    "ChunkingFeeder",
    "FeedResult",
    "PluginsFactory",
    "ReplayFactory",
    "RuntimeFactory",
    "chunkings",
    "joined_text",
    "make_plugins",
]

#: Random splittings :class:`ChunkingFeeder` tries on top of whole and byte by byte.
DEFAULT_SPLITS = 20


# -- replay server ---------------------------------------------------------------------------


class ReplayFactory:
    """Starts :class:`~modelwire.testing.ReplayServer` instances and stops them all at the end."""

    def __init__(self) -> None:
        self._servers: list[ReplayServer] = []

    def __call__(self, *, seed: int = 0, default: Script | Reply | None = None) -> ReplayServer:
        """A new server, already running on a free loopback port."""
        from modelwire.testing import ReplayServer

        server = ReplayServer(seed=seed, default=default).start()
        self._servers.append(server)
        return server

    def close(self) -> None:
        """Stop every server this factory started (idempotent)."""
        servers, self._servers = self._servers, []
        for server in reversed(servers):
            server.stop()


@pytest.fixture(scope="session")
def modelwire_replay_factory() -> Iterator[ReplayFactory]:
    """``modelwire_replay_factory(seed=0, default=None)`` -> a running ReplayServer.

    Session-scoped, so module- or session-scoped fixtures can hold a server of
    their own; every server it started stops when the session ends.
    """
    factory = ReplayFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def _modelwire_replay_server(modelwire_replay_factory: ReplayFactory) -> ReplayServer:
    return modelwire_replay_factory()


@pytest.fixture
def modelwire_replay(_modelwire_replay_server: ReplayServer) -> ReplayServer:
    """A running :class:`~modelwire.testing.ReplayServer`, as new for each test.

    One server serves the whole session; before each test it forgets queued
    answers and recorded requests, restarts its response count and gets back
    ``seed=0`` and the default script, so a test sees the same bytes whatever
    ran before it. Point a manifest at ``modelwire_replay.url_for("openai")``.
    """
    from modelwire.testing import Script

    server = _modelwire_replay_server
    try:
        server.port  # noqa: B018 - raises when a test stopped the shared server
    except RuntimeError:
        server.start()
    server.reset()
    server.seed = 0
    server.default = Script()
    return server


# -- plugins ---------------------------------------------------------------------------------


def make_plugins(*plugins: object, entry_points: bool | None = None) -> Plugins:
    """An isolated :class:`~modelwire.Plugins` (the built-ins always load).

    Each string in ``plugins`` names an installed plugin (a distribution or
    entry-point name, as ``MODELWIRE_LOAD_PLUGINS`` takes them) to load from
    its entry point; any other object (a module or an object with
    ``@modelwire.hookimpl`` methods) is registered directly, under its
    ``__name__`` when it has one. Without strings no entry point loads,
    unless ``entry_points=True``, which loads every installed plugin
    (``MODELWIRE_LOAD_PLUGINS`` still applies).
    """
    from modelwire import Plugins

    names = [p for p in plugins if isinstance(p, str)]
    manager = Plugins(only=names) if names else Plugins(entry_points=bool(entry_points))
    for plugin in plugins:
        if not isinstance(plugin, str):
            name = getattr(plugin, "__name__", None)
            manager.register(plugin, name=name if isinstance(name, str) else None)
    return manager


class PluginsFactory:
    """The ``modelwire_plugins`` fixture: ``modelwire_plugins(*plugins, entry_points=None)``."""

    def __call__(self, *plugins: object, entry_points: bool | None = None) -> Plugins:
        return make_plugins(*plugins, entry_points=entry_points)


@pytest.fixture
def modelwire_plugins() -> PluginsFactory:
    """``modelwire_plugins(*plugins, entry_points=None)`` -> an isolated plugin manager.

    ``modelwire_plugins(my_module)`` holds the built-ins and ``my_module``
    (registered directly, no install needed); ``modelwire_plugins("my-dist")``
    loads that installed distribution through its entry point, as users get
    it. Nothing touches the process-wide default (``modelwire.get_plugins()``).
    """
    return PluginsFactory()


# -- runtime ---------------------------------------------------------------------------------


class RuntimeFactory:
    """The ``modelwire_runtime`` fixture: builds isolated runtimes and closes them at teardown."""

    def __init__(self, directory: Callable[[], Path]) -> None:
        self._directory = directory
        self._written = 0
        self._runtimes: list[Runtime] = []
        self._sync: list[SyncRuntime] = []

    def __call__(
        self,
        *sources: str | os.PathLike[str] | Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        plugins: Plugins | Sequence[object] | None = None,
        **kwargs: Any,
    ) -> Runtime:
        """An async :class:`~modelwire.Runtime` over ``sources``.

        A source is anything ``load_manifests`` takes (a path, a directory,
        ``builtin:NAME``, a URL), a YAML text (a string holding a newline)
        or a mapping (the manifest as data); texts and mappings are written
        to a temporary file first.

        ``env`` replaces the process environment for ``${VAR}`` expansion
        and API keys. The default is an **empty** environment, so a test
        never picks up your real keys or base URLs; pass ``env=os.environ``
        to read it. ``plugins`` is a :class:`~modelwire.Plugins`, or a list
        for :func:`make_plugins` (names of installed plugins and plugin
        objects); the default is a fresh ``Plugins()`` with every installed
        plugin. Other keywords go to ``Runtime`` (``policy="raise"``,
        ``metrics=...``).

        Use it inside your event loop as ``async with rt:``, which closes
        it there. One left open is closed at teardown, which works when it
        never sent a request; if it did, its connections belong to an
        event loop that has ended and the teardown fails with a message
        saying so. Blocking tests should use :meth:`sync`.
        """
        runtime = self._build(sources, env, plugins, kwargs)
        self._runtimes.append(runtime)
        return runtime

    def sync(
        self,
        *sources: str | os.PathLike[str] | Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        plugins: Plugins | Sequence[object] | None = None,
        **kwargs: Any,
    ) -> SyncRuntime:
        """A blocking :class:`~modelwire.SyncRuntime`; the same arguments as calling the factory.

        It runs its own event loop in a portal thread, so any test can use
        it, and it is closed at teardown whatever the test did.
        """
        from modelwire import SyncRuntime

        sync = SyncRuntime(self._build(sources, env, plugins, kwargs))
        self._sync.append(sync)
        return sync

    def close(self) -> None:
        """Close every runtime the factory made; fail if one cannot be closed."""
        import anyio

        syncs, self._sync = self._sync, []
        runtimes, self._runtimes = self._runtimes, []
        stuck: list[str] = []
        try:
            for sync in reversed(syncs):
                sync.close()
        finally:
            for runtime in reversed(runtimes):
                try:
                    anyio.run(runtime.aclose)
                except RuntimeError as exc:  # its connections belong to a loop that has ended
                    stuck.append(str(exc))
        if stuck:
            pytest.fail(
                f"modelwire_runtime: {len(stuck)} runtime(s) sent requests from an event loop that "
                "ended without closing them, so their connections cannot be closed now "
                f"({stuck[0]}). Close a runtime inside its loop (`async with rt:`), or use "
                "modelwire_runtime.sync(...) in a blocking test.",
                pytrace=False,
            )

    # -- helpers -----------------------------------------------------------------------------
    def _build(
        self,
        sources: Sequence[str | os.PathLike[str] | Mapping[str, Any]],
        env: Mapping[str, str] | None,
        plugins: Plugins | Sequence[object] | None,
        kwargs: dict[str, Any],
    ) -> Runtime:
        from modelwire import Runtime

        return Runtime.from_manifests(
            *self._paths(sources),
            env={} if env is None else env,
            plugins=self._plugins(plugins),
            **kwargs,
        )

    def _paths(
        self, sources: Sequence[str | os.PathLike[str] | Mapping[str, Any]]
    ) -> list[str | os.PathLike[str]]:
        if not sources:
            raise TypeError("modelwire_runtime() needs at least one manifest source")
        out: list[str | os.PathLike[str]] = []
        for source in sources:
            if isinstance(source, Mapping):
                out.append(self._write("json", json.dumps(source, indent=2)))
            elif isinstance(source, str) and "\n" in source:
                out.append(self._write("yaml", source))
            else:
                out.append(source)
        return out

    def _write(self, suffix: str, text: str) -> Path:
        self._written += 1
        path = self._directory() / f"manifest-{self._written}.{suffix}"
        path.write_text(text, encoding="utf-8")
        return path

    @staticmethod
    def _plugins(plugins: Plugins | Sequence[object] | None) -> Plugins:
        from modelwire import Plugins

        if plugins is None:
            return Plugins()
        if isinstance(plugins, Plugins):
            return plugins
        if isinstance(plugins, (str, bytes)):
            raise TypeError("plugins= takes a Plugins or a list; wrap one name in a list")
        return make_plugins(*plugins)


@pytest.fixture
def modelwire_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeFactory]:
    """``modelwire_runtime(*sources, env=None, plugins=None, **kw)`` -> an isolated Runtime.

    Each runtime gets its own plugin manager and an empty environment unless
    told otherwise, and is closed at teardown. ``modelwire_runtime.sync(...)``
    gives a blocking :class:`~modelwire.SyncRuntime` for tests without an
    event loop.
    """
    directory: list[Path] = []

    def make_dir() -> Path:
        if not directory:
            directory.append(tmp_path_factory.mktemp("modelwire-manifests"))
        return directory[0]

    factory = RuntimeFactory(make_dir)
    try:
        yield factory
    finally:
        factory.close()


# -- feeding parsers at every chunking -----------------------------------------------------------


class FeedResult(NamedTuple):
    """What a parser made of a whole stream: its frames, then the error that stopped it, if any."""

    frames: list[Frame]
    error: ParseError | None


def chunkings(
    data: bytes, splits: int = DEFAULT_SPLITS, seed: int = 0
) -> list[tuple[str, list[bytes]]]:
    """Ways to cut ``data`` into chunks, each with a label for error messages.

    Whole; byte by byte; with empty chunks between the pieces; then
    ``splits`` random splittings drawn from ``seed`` (a few cuts, many cuts,
    and everything in between), so the same arguments always give the same
    chunkings.
    """
    n = len(data)
    out: list[tuple[str, list[bytes]]] = [("whole", [data])]
    if n > 1:
        out.append(("byte by byte", [data[i : i + 1] for i in range(n)]))
    half = n // 2
    out.append(("with empty chunks", [b"", data[:half], b"", data[half:], b""]))
    if n < 2:
        return out
    rng = random.Random(f"modelwire_feed:{seed}:{n}")
    for index in range(splits):
        most = min(n - 1, rng.choice((1, 2, 4, 16, 64, n - 1)))
        cuts = sorted(rng.sample(range(1, n), rng.randint(1, most)))
        bounds = [0, *cuts, n]
        label = f"random split #{index} (seed {seed}, cuts at {_short(cuts)})"
        out.append((label, [data[a:b] for a, b in itertools.pairwise(bounds)]))
    return out


def joined_text(frames: Sequence[Frame]) -> str:
    """``normalize=`` for parsers whose frame boundaries follow the chunks (``text``).

    Compares the text of all frames together, not frame by frame.
    """
    return "".join(str(frame.data) for frame in frames)


def _short(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...]"


def _error_key(error: ParseError | None) -> tuple[Any, ...] | None:
    if error is None:
        return None
    return (type(error), error.code, error.message, error.offset, error.line)


def _describe_error(error: ParseError | None) -> str:
    if error is None:
        return "no error"
    return f"{type(error).__name__}(code={error.code!r}, offset={error.offset}, line={error.line}): {error.message}"


class ChunkingFeeder:
    """Feed a stream to a parser at every chunking and insist they all agree.

    The ``modelwire_feed`` fixture is one of these, using the process-wide
    plugin manager for parser names; build your own with
    ``ChunkingFeeder(plugins=...)`` to look names up elsewhere.
    """

    def __init__(
        self, plugins: Plugins | None = None, *, splits: int = DEFAULT_SPLITS, seed: int = 0
    ) -> None:
        self.plugins = plugins
        self.splits = splits
        self.seed = seed

    def __call__(
        self,
        parser: str | Callable[..., Any],
        data: bytes | bytearray | memoryview,
        /,
        *,
        splits: int | None = None,
        seed: int | None = None,
        normalize: Callable[[list[Frame]], object] | None = None,
        **options: Any,
    ) -> list[Frame]:
        """The frames of ``data``; raises the stream's ``ParseError`` if it has one.

        ``parser`` is a registered parser name or a factory (a parser
        class); ``options`` are its keyword options, as a manifest's
        ``parser_options``. The stream is fed whole, byte by byte, with
        empty chunks, and at ``splits`` seeded random splittings; every
        chunking must give equal frames (or equal ``normalize(frames)``)
        and the same error (type, code, message, offset, line). A
        parser's own errors must be ``modelwire.ParseError``, and the
        call after one must raise it again. Any breach fails the test
        naming the chunking. An option named like one of this method's
        keywords can be given with ``functools.partial(factory, ...)``.
        """
        result = self.run(parser, data, splits=splits, seed=seed, normalize=normalize, **options)
        if result.error is not None:
            raise result.error
        return result.frames

    def run(
        self,
        parser: str | Callable[..., Any],
        data: bytes | bytearray | memoryview,
        /,
        *,
        splits: int | None = None,
        seed: int | None = None,
        normalize: Callable[[list[Frame]], object] | None = None,
        **options: Any,
    ) -> FeedResult:
        """Like calling the feeder, but return the error (with the frames before it) instead of raising."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"modelwire_feed() takes bytes, not {type(data).__name__}")
        data = bytes(data)
        factory, label = self._factory(parser)
        first: FeedResult | None = None
        first_name = ""
        for name, chunks in chunkings(
            data, self.splits if splits is None else splits, self.seed if seed is None else seed
        ):
            result = self._feed(factory, options, chunks, label, name)
            if first is None:
                first, first_name = result, name
                continue
            self._compare(label, first_name, first, name, result, normalize)
        assert first is not None
        return first

    # -- helpers -----------------------------------------------------------------------------
    def _factory(self, parser: str | Callable[..., Any]) -> tuple[Callable[..., Any], str]:
        if isinstance(parser, str):
            from modelwire import get_plugins

            plugins = self.plugins if self.plugins is not None else get_plugins()
            factory: Callable[..., Any] = plugins.get("parser", parser).obj
            return factory, f"parser {parser!r}"
        if not callable(parser):
            raise TypeError(f"modelwire_feed() takes a parser name or factory, not {parser!r}")
        return parser, f"parser {getattr(parser, '__qualname__', None) or parser!r}"

    @staticmethod
    def _feed(
        factory: Callable[..., Any], options: Mapping[str, Any], chunks: list[bytes], label: str, name: str
    ) -> FeedResult:
        from modelwire import Frame, ParseError

        instance = factory(**options)
        frames: list[Frame] = []
        calls: list[tuple[str, Callable[[], Any]]] = [
            *((f"feed(<{len(c)} bytes>)", lambda c=c: instance.feed(c)) for c in chunks),
            ("close()", instance.close),
        ]
        for call, fn in calls:
            try:
                out = fn()
            except ParseError as exc:
                _check_sticky(instance, exc, label, name, call)
                return FeedResult(frames, exc)
            except Exception as exc:
                raise AssertionError(
                    f"{label} raised {type(exc).__name__} from {call} ({name}): {exc}; "
                    "a parser must raise modelwire.ParseError for bad input"
                ) from exc
            if not isinstance(out, list) or not all(isinstance(f, Frame) for f in out):
                raise AssertionError(
                    f"{label}: {call} returned {_short(out)} ({name}); "
                    "feed() and close() must return a list of modelwire.Frame"
                )
            frames.extend(out)
        return FeedResult(frames, None)

    @staticmethod
    def _compare(
        label: str,
        first_name: str,
        first: FeedResult,
        name: str,
        result: FeedResult,
        normalize: Callable[[list[Frame]], object] | None,
    ) -> None:
        if _error_key(first.error) != _error_key(result.error):
            raise AssertionError(
                f"{label} depends on the chunking: the error differs\n"
                f"  {first_name}: {_describe_error(first.error)}\n"
                f"  {name}: {_describe_error(result.error)}"
            )
        if normalize is not None:
            a, b = normalize(first.frames), normalize(result.frames)
            if a != b:
                raise AssertionError(
                    f"{label} depends on the chunking (normalized frames differ)\n"
                    f"  {first_name}: {_short(a, 600)}\n"
                    f"  {name}: {_short(b, 600)}"
                )
            return
        if first.frames == result.frames:
            return
        index = next(
            (i for i, (x, y) in enumerate(zip(first.frames, result.frames, strict=False)) if x != y),
            min(len(first.frames), len(result.frames)),
        )
        got_a = repr(first.frames[index]) if index < len(first.frames) else "(no more frames)"
        got_b = repr(result.frames[index]) if index < len(result.frames) else "(no more frames)"
        raise AssertionError(
            f"{label} depends on the chunking: {len(first.frames)} frames {first_name}, "
            f"{len(result.frames)} {name}; first difference at frame {index}:\n"
            f"  {first_name}: {_short(got_a, 600)}\n"
            f"  {name}: {_short(got_b, 600)}\n"
            "(a parser whose frame boundaries follow the chunks may pass normalize=joined_text)"
        )


def _check_sticky(instance: Any, error: ParseError, label: str, name: str, call: str) -> None:
    """After an error, the next call must raise it again (docs/plugins.md, the contract)."""
    from modelwire import ParseError

    try:
        instance.close()
    except ParseError as again:
        if _error_key(again) == _error_key(error):
            return
        raise AssertionError(
            f"{label}: after {call} raised {_describe_error(error)} ({name}), "
            f"close() raised a different error: {_describe_error(again)}"
        ) from again
    except Exception as exc:
        raise AssertionError(
            f"{label}: after {call} raised ParseError ({name}), close() raised "
            f"{type(exc).__name__}: {exc}; it must raise the same ParseError again"
        ) from exc
    raise AssertionError(
        f"{label}: after {call} raised {_describe_error(error)} ({name}), close() returned "
        "normally; once a parser failed, every later call must raise the same ParseError"
    )


@pytest.fixture
def modelwire_feed() -> ChunkingFeeder:
    """``modelwire_feed(parser, data, **options)`` -> frames, the same at every chunking.

    ``parser`` is a parser name (looked up in ``modelwire.get_plugins()``)
    or a factory. The bytes go through whole, byte by byte, with empty
    chunks and at 20 seeded random splittings; the test fails if any two
    give different frames or errors. A stream that ends in a
    ``ParseError`` raises it (``pytest.raises`` it and check its
    ``offset``); ``modelwire_feed.run(...)`` returns ``(frames, error)``
    instead.
    """
    return ChunkingFeeder()
