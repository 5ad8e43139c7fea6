"""The agent app and its runtime: the lifecycle that ties config, models, MCP tools and sessions together.

Built on :class:`Runtime`, not beside it: the config's ``models`` become
entries of the runtime's catalog (clones of manifest providers with their
``base_url`` and key), MCP tools land in the runtime's :class:`ToolRegistry`,
and every model handle calls the runtime's ``generate`` / ``stream`` /
``embed``.

Lifecycle (:meth:`AgentRuntime.start`), in order::

    load config -> create models -> connect MCP clients (register their tools)
    -> initialise the session store -> load the app -> app.on_startup()

and :meth:`AgentRuntime.aclose`: ``on_shutdown``, MCP clients closed in
reverse order, the session store and the runtime closed, the process-wide
accessor reset. A failure at any step shuts down what was started and raises
:class:`AgentStartupError` naming the step.
"""


from __future__ import annotations

import abc
import hmac
import importlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import InternalError, InvalidRequestError, ModelError
from ._config import AgentAppConfig, load_agentapp_config
from ._models import ModelHandle, ModelRegistry, build_catalog
from ._sessions import InMemorySessionStore, Msg, SessionContext, SessionStore

if TYPE_CHECKING:
    from .._runtime.client import Runtime
    from ..tools import ToolRegistry

__all__ = [
    "AgentApp",
    "AgentRuntime",
    "AgentStartupError",
    "SessionOwnerError",
    "get_agent_runtime",
]


class AgentApp(abc.ABC):
    """The user's agent. Subclass it, name it in ``agentapp.yaml`` as ``app: module:Class``.

    ``__call__`` is an async generator: it gets the request's :class:`Msg`
    and :class:`SessionContext` and yields messages (``Msg``, ``str`` or a
    mapping), each sent to the client as one SSE event. ``self.runtime`` is
    the :class:`AgentRuntime` (models, tools, sessions).
    """

    runtime: AgentRuntime

    @abc.abstractmethod
    def __call__(self, msg: Msg, ctx: SessionContext) -> AsyncIterator[Msg | str | Mapping[str, Any]]:
        """Answer one message (an ``async def`` with ``yield``)."""

    async def on_startup(self) -> None:  # noqa: B027 - optional hook
        """Called once, after models, tools and sessions are ready."""

    async def on_shutdown(self) -> None:  # noqa: B027 - optional hook
        """Called once, first thing at shutdown."""


class SessionOwnerError(InvalidRequestError):
    """A session id that belongs to another API token (answered 404, as if it did not exist)."""

    default_code = "SESSION_NOT_FOUND"


#: the key under which a session's owner (a hash of its token) is stored with its state
OWNER_KEY = "__modelwire_owner__"


class AgentStartupError(InternalError):
    """The agent runtime failed at one lifecycle step (``step``); the cause is chained."""

    default_code = "AGENT_STARTUP_FAILED"


STEPS = (
    "load config",
    "create models",
    "connect MCP clients",
    "initialise session store",
    "load app",
    "on_startup",
)

_current: AgentRuntime | None = None


def get_agent_runtime() -> AgentRuntime:
    """The process's running :class:`AgentRuntime` (for app code; set by ``start()``)."""
    if _current is None:
        raise InternalError("no agent runtime is running in this process", code="AGENT_NOT_RUNNING")
    return _current


def _import(path: str, what: str, project: Path | None) -> Any:
    module, _, attr = path.partition(":")
    if project is not None and str(project) not in sys.path:
        sys.path.insert(0, str(project))
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise InternalError(f"cannot import {what} module {module!r}: {exc}", code="IMPORT_FAILED") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InternalError(f"module {module!r} has no {attr!r} ({what})", code="IMPORT_FAILED") from None
    return obj


class AgentRuntime:
    """The app's runtime: config, models, MCP tools, sessions and the app.

    >>> async with AgentRuntime("agentapp.yaml") as agent:       # doctest: +SKIP
    ...     print((await agent.models.main.generate("Hi")).text)
    """

    def __init__(
        self,
        config: AgentAppConfig | str | os.PathLike[str],
        *,
        project_path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        app: AgentApp | None = None,
        session_store: SessionStore | None = None,
        http_client: Any = None,
        plugins: Any = None,
        metrics: Any = None,
        mcp_client_factory: Callable[[Any], Any] | None = None,
        install: bool = True,
    ) -> None:
        self._config_source = config
        self.project_path = Path(project_path) if project_path is not None else None
        self.env = env
        self._app = app
        self._session_store = session_store
        self._http_client = http_client
        self._plugins = plugins
        self._metrics = metrics
        self._mcp_factory = mcp_client_factory
        self._install = install
        self.config: AgentAppConfig | None = config if isinstance(config, AgentAppConfig) else None
        self._runtime: Runtime | None = None
        self._models: ModelRegistry | None = None
        self._tools: ToolRegistry | None = None
        self.mcp_clients: dict[str, Any] = {}
        self._sessions: SessionStore | None = None
        self._app_obj: AgentApp | None = None
        self._app_started = False
        self.started = False
        self.step: str | None = None

    # -- accessors ----------------------------------------------------------
    def _need(self, value: Any, what: str) -> Any:
        if value is None:
            raise InternalError(f"the agent runtime is not started ({what} is not ready)", code="AGENT_NOT_STARTED")
        return value

    @property
    def runtime(self) -> Runtime:
        r: Runtime = self._need(self._runtime, "runtime")
        return r

    @property
    def models(self) -> ModelRegistry:
        m: ModelRegistry = self._need(self._models, "models")
        return m

    @property
    def tools(self) -> ToolRegistry:
        t: ToolRegistry = self._need(self._tools, "tools")
        return t

    @property
    def sessions(self) -> SessionStore:
        s: SessionStore = self._need(self._sessions, "session store")
        return s

    @property
    def app(self) -> AgentApp:
        a: AgentApp = self._need(self._app_obj, "app")
        return a

    @property
    def metrics(self) -> Any:
        return self.runtime.metrics

    # -- lifecycle -----------------------------------------------------------
    async def __aenter__(self) -> AgentRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> AgentRuntime:
        """Run every startup step in order; on failure undo them and raise AgentStartupError."""
        global _current
        if self.started:
            return self
        try:
            for step, fn in zip(
                STEPS,
                (self._load_config, self._create_models, self._connect_mcp, self._init_sessions,
                 self._load_app, self._on_startup),
                strict=True,
            ):
                self.step = step
                await fn()
        except BaseException as exc:
            step = self.step or "?"
            await self._shutdown()
            if not isinstance(exc, Exception):
                raise
            detail = exc.message if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
            raise AgentStartupError(f"agent startup failed at step {step!r}: {detail}", step=step) from exc
        self.step = None
        self.started = True
        if self._install:
            _current = self
        return self

    async def aclose(self) -> None:
        """on_shutdown, MCP clients in reverse order, sessions, the runtime; reset the accessor."""
        await self._shutdown()

    async def _shutdown(self) -> None:
        global _current
        errors: list[BaseException] = []
        app, started = self._app_obj, self._app_started
        self._app_started = False
        if app is not None and started:
            try:
                await app.on_shutdown()
            except Exception as exc:
                errors.append(exc)
        for name in reversed(list(self.mcp_clients)):
            client = self.mcp_clients.pop(name)
            try:
                await client.aclose()
            except Exception as exc:
                errors.append(exc)
        sessions, self._sessions = self._sessions, None
        if sessions is not None and self._session_store is None:
            try:
                await sessions.aclose()
            except Exception as exc:
                errors.append(exc)
        tools, self._tools = self._tools, None
        if tools is not None:
            try:
                await tools.aclose()
            except Exception as exc:
                errors.append(exc)
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            try:
                await runtime.aclose()
            except Exception as exc:
                errors.append(exc)
        self._models = None
        self._app_obj = None
        self.started = False
        if _current is self:
            _current = None
        if errors:
            import logging

            for err in errors:
                logging.getLogger("modelwire").warning("modelwire: error during agent shutdown: %s", err)

    async def _load_config(self) -> None:
        if self.config is None:
            src = Path(os.fspath(self._config_source))  # type: ignore[arg-type]
            if not src.is_absolute() and self.project_path is not None:
                src = self.project_path / src
            self.config = load_agentapp_config(src, self.env)
        if self.project_path is None and self.config.file:
            self.project_path = Path(self.config.file).resolve().parent

    async def _create_models(self) -> None:
        from .._runtime.client import Runtime
        from ..tools import ToolRegistry

        config = self.config
        assert config is not None
        catalog, keys_env, keys = build_catalog(config, self.env)
        metrics = self._metrics
        if metrics is None:
            try:
                from .._runtime.metrics import Metrics

                metrics = Metrics()
            except ImportError:
                metrics = None
        self._runtime = Runtime(
            catalog, plugins=self._plugins, http_client=self._http_client, env=keys_env,
            metrics=metrics,
        )
        self._tools = ToolRegistry()
        self._models = ModelRegistry({
            name: ModelHandle(self._runtime, name, key, config.models[name], self._tools)
            for name, key in keys.items()
        })

    async def _connect_mcp(self) -> None:
        config = self.config
        assert config is not None
        if not config.mcp_servers:
            return
        factory = self._mcp_factory
        if factory is None:
            try:
                from ..tools import MCPClient, MCPServerConfig
            except ImportError as exc:
                raise InternalError(
                    f"MCP support is not available ({exc}); install modelwire[agent]", code="MCP_UNAVAILABLE"
                ) from exc
            config_cls, client_cls = MCPServerConfig, MCPClient

            def factory(cfg: Any) -> Any:
                return client_cls(cfg)
        else:
            config_cls = None
        for name, spec in config.mcp_servers.items():
            kwargs: dict[str, Any] = {
                "name": name, "url": spec.url, "transport": spec.transport, "headers": dict(spec.headers),
                "timeout": spec.timeout, "sse_read_timeout": spec.sse_read_timeout,
            }
            cfg = config_cls(**kwargs) if config_cls is not None else _SimpleMCPConfig(**kwargs)
            client = factory(cfg)
            try:
                await client.connect()
            except BaseException:
                try:
                    await client.aclose()
                except Exception:
                    pass
                raise
            self.mcp_clients[name] = client
            for t in await client.list_tools():
                self.tools.register(t)

    async def _init_sessions(self) -> None:
        config = self.config
        assert config is not None
        if self._session_store is not None:
            self._sessions = self._session_store
            return
        settings = config.session
        if settings.store == "memory":
            self._sessions = InMemorySessionStore(settings.ttl, settings.max_sessions)
            return
        factory = _import(settings.store, "session store", self.project_path)
        store = factory(ttl=settings.ttl, max_sessions=settings.max_sessions, **settings.options)
        if not isinstance(store, SessionStore):
            raise InternalError(f"{settings.store} did not make a SessionStore", code="BAD_SESSION_STORE")
        self._sessions = store

    async def _load_app(self) -> None:
        config = self.config
        assert config is not None
        app = self._app
        if app is None:
            cls = _import(config.app, "app", self.project_path)
            if not (isinstance(cls, type) and issubclass(cls, AgentApp)):
                raise InternalError(f"{config.app} is not an AgentApp subclass", code="BAD_APP")
            app = cls()
        app.runtime = self
        self._app_obj = app

    async def _on_startup(self) -> None:
        await self.app.on_startup()
        self._app_started = True

    # -- one request ----------------------------------------------------------
    async def session_owner_ok(self, session_id: str, owner: str | None) -> bool:
        """False when ``session_id`` exists and belongs to another owner (a token hash)."""
        if owner is None:
            return True
        state = await self.sessions.load(session_id)
        stored = state.get(OWNER_KEY)
        return stored is None or (isinstance(stored, str) and hmac.compare_digest(stored, owner))

    async def invoke(
        self, msg: Msg | str, session_id: str | None = None, metadata: Mapping[str, Any] | None = None,
        *, owner: str | None = None,
    ) -> AsyncIterator[Msg]:
        """Run the app on one message in a session; the session's state is saved at the end.

        With ``owner`` (the server passes a hash of the caller's token) the
        session is tied to it: a session another owner created raises
        :class:`SessionOwnerError`. The owner is kept with the session's
        state but is not shown to the app.
        """
        from contextlib import aclosing

        message = Msg(msg, role="user") if isinstance(msg, str) else msg
        sid = session_id or uuid.uuid4().hex
        sessions = self.sessions
        state = await sessions.load(sid)
        stored = state.pop(OWNER_KEY, None)
        if owner is not None and stored is not None and not (
            isinstance(stored, str) and hmac.compare_digest(stored, owner)
        ):
            raise SessionOwnerError("no such session", code="SESSION_NOT_FOUND")
        keep = stored if stored is not None else owner
        ctx = SessionContext(sid, dict(metadata or {}), state)
        try:
            async with aclosing(self.app(message, ctx)) as out:  # type: ignore[type-var]
                async for item in out:
                    yield Msg.coerce(item)
        finally:
            import anyio

            with anyio.CancelScope(shield=True):
                saved = dict(ctx.state)
                saved.pop(OWNER_KEY, None)
                if keep is not None:
                    saved[OWNER_KEY] = keep
                await sessions.save(sid, saved)


@attrs.frozen
class _SimpleMCPConfig:
    """What an injected MCP client factory receives (mirrors ``_mcp.MCPServerConfig``)."""

    name: str
    url: str
    transport: str = "streamable_http"
    headers: dict[str, str] = attrs.field(factory=dict)
    timeout: float = 30.0
    sse_read_timeout: float = 300.0
