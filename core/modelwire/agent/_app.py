"""The agent runtime: ``agentapp.yaml``, a model registry, MCP tools, the app, sessions.

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
import importlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

from .._errors import InternalError, ManifestError, ManifestIssue, ModelError
from .._manifest.yaml import Located, expand_env, read_yaml

if TYPE_CHECKING:
    from .._events import Event
    from .._manifest.catalog import Catalog
    from .._runtime.client import Response, Runtime
    from ..tools import ToolRegistry

__all__ = [
    "AgentApp",
    "AgentAppConfig",
    "AgentRuntime",
    "AgentStartupError",
    "InMemorySessionStore",
    "MCPServerSpec",
    "ModelConfig",
    "ModelHandle",
    "ModelRegistry",
    "Msg",
    "PlatformSettings",
    "SessionContext",
    "SessionSettings",
    "SessionStore",
    "get_agent_runtime",
    "load_agentapp_config",
    "parse_agentapp_config",
    "provider_aliases",
]


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


# -- configuration -----------------------------------------------------------------


@attrs.frozen
class ProviderAlias:
    """How an ``agentapp.yaml`` provider name maps onto a manifest provider."""

    provider: str
    base_url: str | None = None  # default base URL (None: the manifest's)
    key_env: str | None = None  # where the key is read when the config gives none


def provider_aliases() -> dict[str, ProviderAlias]:
    """agentapp provider name -> manifest provider, from ``agent/providers.yaml`` (data, not code)."""
    from .._manifest.structure import converter

    text = (Path(__file__).parent / "providers.yaml").read_bytes()
    doc, issues = read_yaml(text, "providers.yaml")
    if doc is None:  # pragma: no cover - a broken installation
        raise ManifestError(issues=issues)
    return converter().structure(doc.value, dict[str, ProviderAlias])  # type: ignore[no-any-return]


_CLIENT_KWARGS = ("timeout", "headers")


@attrs.frozen
class ModelConfig:
    """One named model of the app."""

    provider: str = attrs.field(metadata=_doc("a provider alias (see modelwire/agent/providers.yaml) or a manifest's provider"))
    model: str = attrs.field(metadata=_doc("the provider's model id"))
    api_key: str | None = attrs.field(default=None, metadata=_doc("the key (use ${VAR}); default: the provider's variable"))
    base_url: str | None = attrs.field(default=None, metadata=_doc("override the provider's base URL"))
    stream: bool = attrs.field(default=True, metadata=_doc("ModelHandle.respond streams (true) or answers whole (false)"))
    generate_kwargs: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("defaults for every call: max_tokens, temperature, ...; others go into the body"))
    client_kwargs: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("timeout (seconds or {connect, read, write, total}) and headers"))


@attrs.frozen
class MCPServerSpec:
    """An MCP server whose tools the app may call."""

    url: str = attrs.field(metadata=_doc("the server's URL"))
    transport: Literal["streamable_http", "sse"] = attrs.field(default="streamable_http", metadata=_doc("streamable_http or sse"))
    headers: dict[str, str] = attrs.field(factory=dict, metadata=_doc("HTTP headers sent to the server"))
    timeout: float = attrs.field(default=30.0, metadata=_doc("seconds for a request"))
    sse_read_timeout: float = attrs.field(default=300.0, metadata=_doc("seconds between two SSE reads"))


@attrs.frozen
class SessionSettings:
    """Where sessions live."""

    store: str = attrs.field(default="memory", metadata=_doc("`memory`, or `module:factory` of a SessionStore"))
    ttl: float | None = attrs.field(default=3600.0, metadata=_doc("seconds a session is kept after its last use (null: forever)"))
    max_sessions: int | None = attrs.field(default=10000, metadata=_doc("sessions kept at most (least recently used go first)"))
    options: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("keyword options for a custom store"))


@attrs.frozen
class PlatformSettings:
    """The management platform: heartbeats and configuration updates."""

    url: str = attrs.field(metadata=_doc("the platform's base URL (POST /heartbeat, GET /config)"))
    heartbeat_interval: float = attrs.field(default=30.0, metadata=_doc("seconds between heartbeats"))
    poll_interval: float = attrs.field(default=60.0, metadata=_doc("seconds between configuration polls"))
    headers: dict[str, str] = attrs.field(factory=dict, metadata=_doc("HTTP headers sent to the platform"))
    timeout: float = attrs.field(default=10.0, metadata=_doc("seconds per platform request"))
    max_backoff: float = attrs.field(default=300.0, metadata=_doc("longest wait between tries while the platform is down"))


@attrs.frozen
class AgentAppConfig:
    """``agentapp.yaml``."""

    app: str = attrs.field(metadata=_doc("the app class, `module:Class` (imported from the project directory)"))
    name: str = attrs.field(default="agent", metadata=_doc("the app's name"))
    models: dict[str, ModelConfig] = attrs.field(factory=dict, metadata=_doc("models by the name the app uses"))
    mcp_servers: dict[str, MCPServerSpec] = attrs.field(factory=dict, metadata=_doc("MCP servers by name"))
    session: SessionSettings = attrs.field(factory=SessionSettings, metadata=_doc("session store settings"))
    manifests: list[str] = attrs.field(factory=list, metadata=_doc("extra manifest sources (paths relative to this file)"))
    platform: PlatformSettings | None = attrs.field(default=None, metadata=_doc("management platform (off with --no-platform)"))
    #: the file it came from (None when built in code), and its parsed document
    file: str | None = attrs.field(default=None, metadata=_doc("(set by the loader)"))
    doc: Located | None = attrs.field(default=None, eq=False, repr=False, metadata=_doc("(set by the loader)"))

    def issue(self, path: tuple[str | int, ...], message: str) -> ManifestIssue:
        """An issue at ``path`` of this config (file, field and line when known)."""
        if self.doc is not None:
            return self.doc.issue(path, message)
        from .._manifest.yaml import format_path

        return ManifestIssue(message, file=self.file, path=format_path(path) or None)


def load_agentapp_config(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> AgentAppConfig:
    """Read ``agentapp.yaml``; every problem is a :class:`ManifestError` naming file and field."""
    file = os.fspath(path)
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise ManifestError(issues=[ManifestIssue(f"cannot read config: {exc.strerror}", file=file)]) from exc
    doc, issues = read_yaml(data, file)
    if doc is None:
        raise ManifestError(issues=issues)
    return parse_agentapp_config(doc, env)


def parse_agentapp_config(doc: Located, env: Mapping[str, str] | None = None) -> AgentAppConfig:
    """A parsed document (``read_yaml``, or a mapping a platform sent) -> AgentAppConfig."""
    from .._manifest.structure import converter, describe, issues_from

    file = doc.file
    if not isinstance(doc.value, dict):
        raise ManifestError(issues=[doc.issue((), f"the config must be a mapping, got {describe(doc.value)}")])
    env_issues = expand_env(doc, os.environ if env is None else env)
    issues = list(env_issues)
    value = {k: v for k, v in doc.value.items() if k not in ("file", "doc")}
    for key in ("file", "doc"):
        if key in doc.value:
            issues.append(doc.issue((key,), f"unknown field {key!r}"))
    config: AgentAppConfig | None = None
    try:
        config = converter().structure(value, AgentAppConfig)
    except Exception as exc:
        unexpanded = {i.path for i in env_issues}
        issues.extend(i for i in issues_from(exc, (), doc) if i.path not in unexpanded)
        app = value.get("app")
        if isinstance(app, str):  # still say what is wrong with it
            issues.extend(i for i in _check_config(AgentAppConfig(app=app), doc) if i.path == "app")
    if config is not None:
        config = attrs.evolve(config, file=file, doc=doc)
        issues.extend(_check_config(config, doc))
    if issues:
        issues.sort(key=lambda i: i.line or 0)
        raise ManifestError(issues=issues, code="AGENTAPP_CONFIG_INVALID")
    assert config is not None
    return config


def _check_config(config: AgentAppConfig, doc: Located) -> list[ManifestIssue]:
    config = attrs.evolve(config, doc=doc)
    out: list[ManifestIssue] = []
    module, sep, attr = config.app.partition(":")
    if not (sep and module and attr):
        out.append(config.issue(("app",), f"expected `module:Class`, got {config.app!r}"))
    for name, model in config.models.items():
        if not name or name.startswith("_"):
            out.append(config.issue(("models", name), "a model name must not be empty or start with '_'"))
        for key in model.client_kwargs:
            if key not in _CLIENT_KWARGS:
                out.append(config.issue(
                    ("models", name, "client_kwargs", key),
                    f"unknown client option {key!r}; allowed: {', '.join(_CLIENT_KWARGS)}",
                ))
    store = config.session.store
    if store != "memory" and ":" not in store:
        out.append(config.issue(("session", "store"), f"expected `memory` or `module:factory`, got {store!r}"))
    return out


# -- models -----------------------------------------------------------------------

_CALL_KWARGS = frozenset({"system", "tools", "tool_choice", "max_tokens", "temperature", "stop"})


class ModelHandle:
    """One configured model: the runtime's calls, bound to it."""

    def __init__(
        self, runtime: Runtime, name: str, key: str, config: ModelConfig, tools: ToolRegistry | None = None
    ) -> None:
        self.runtime = runtime
        #: the tools :meth:`run_tools` offers by default (the agent runtime's, MCP ones included)
        self.tools = tools
        #: the name in agentapp.yaml; ``key`` is the catalog's model name
        self.name = name
        self.key = key
        self.config = config

    def _kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in self.config.generate_kwargs.items():
            (out if key in _CALL_KWARGS else extra)[key] = value
        extra.update(kwargs.get("extra") or {})
        out.update({k: v for k, v in kwargs.items() if k != "extra"})
        if extra:
            out["extra"] = extra
        return out

    def stream(self, prompt: str | None = None, **kwargs: Any) -> AsyncIterator[Event]:
        """:meth:`Runtime.stream` on this model (the config's ``generate_kwargs`` as defaults)."""
        return self.runtime.stream(self.key, prompt, **self._kwargs(kwargs))

    async def generate(self, prompt: str | None = None, **kwargs: Any) -> Response:
        """:meth:`Runtime.generate` on this model."""
        return await self.runtime.generate(self.key, prompt, **self._kwargs(kwargs))

    async def embed(self, texts: Sequence[str] | str) -> list[list[float]]:
        """:meth:`Runtime.embed` on this model."""
        return await self.runtime.embed(self.key, texts)

    def run_tools(self, prompt: str | None = None, *, tools: Any = None, **kwargs: Any) -> AsyncIterator[Event]:
        """:func:`modelwire.tools.run_tools` on this model; ``tools`` defaults to the agent's (MCP ones included)."""
        from ..tools._loop import run_tools

        return run_tools(
            self.runtime, self.key, prompt, tools=self.tools if tools is None else tools, **self._kwargs(kwargs)
        )

    async def respond(self, prompt: str | None = None, **kwargs: Any) -> AsyncIterator[str]:
        """Text as it comes (config ``stream: true``) or whole in one piece (``stream: false``)."""
        from .._events import TextDelta

        if not self.config.stream:
            yield (await self.generate(prompt, **kwargs)).text
            return
        from contextlib import aclosing

        async with aclosing(self.stream(prompt, **kwargs)) as events:  # type: ignore[type-var]
            async for ev in events:
                if type(ev) is TextDelta:
                    yield ev.text

    def __repr__(self) -> str:
        return f"ModelHandle({self.name!r}, provider={self.config.provider!r}, model={self.config.model!r})"


class ModelRegistry:
    """The app's models: ``models.main``, ``models["main"]``, ``keys()``, ``in``, iteration, ``len``."""

    _handles: dict[str, ModelHandle]

    def __init__(self, handles: Mapping[str, ModelHandle]) -> None:
        object.__setattr__(self, "_handles", dict(handles))

    def _known(self) -> str:
        return ", ".join(sorted(self._handles)) or "none"

    def __getattr__(self, name: str) -> ModelHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._handles[name]
        except KeyError:
            raise AttributeError(f"no model named {name!r}; configured: {self._known()}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the model registry is read-only")

    def __getitem__(self, name: str) -> ModelHandle:
        try:
            return self._handles[name]
        except KeyError:
            raise KeyError(f"no model named {name!r}; configured: {self._known()}") from None

    def get(self, name: str, default: ModelHandle | None = None) -> ModelHandle | None:
        return self._handles.get(name, default)

    def keys(self) -> list[str]:
        return list(self._handles)

    def values(self) -> list[ModelHandle]:
        return list(self._handles.values())

    def items(self) -> list[tuple[str, ModelHandle]]:
        return list(self._handles.items())

    def __contains__(self, name: object) -> bool:
        return name in self._handles

    def __iter__(self) -> Iterator[str]:
        return iter(self._handles)

    def __len__(self) -> int:
        return len(self._handles)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(n for n in self._handles if n.isidentifier())})

    def __repr__(self) -> str:
        return f"ModelRegistry({self._known()})"


def _timeout(value: Any, where: tuple[str | int, ...], config: AgentAppConfig, base: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return attrs.evolve(base, connect=float(value), read=float(value), write=float(value))
    if isinstance(value, dict):
        fields = {f.name for f in attrs.fields(type(base))}
        bad = [k for k in value if k not in fields]
        if bad or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
            raise ManifestError(issues=[config.issue(where, f"expected numbers for {', '.join(sorted(fields))}")])
        return attrs.evolve(base, **{k: float(v) for k, v in value.items()})
    raise ManifestError(issues=[config.issue(where, "expected seconds, or a mapping of connect/read/write/total")])


def build_catalog(
    config: AgentAppConfig, env: Mapping[str, str] | None = None
) -> tuple[Catalog, dict[str, str], dict[str, str]]:
    """The runtime's catalog for ``config``: (catalog, env for keys, name -> catalog model key).

    Each configured model becomes model ``@NAME`` of a cloned provider
    ``PROVIDER@NAME`` (its base URL and key are the entry's own), so two
    entries on one provider with different endpoints or keys never clash.
    """
    from .._manifest.catalog import load_manifests
    from .._manifest.model import Model

    base_dir = Path(config.file).parent if config.file else Path.cwd()
    sources: list[str] = ["builtin:*"]
    for src in config.manifests:
        local = "://" not in src and not src.startswith(("builtin:", "git+"))
        sources.append(os.fspath(base_dir / src) if local and not os.path.isabs(src) else src)
    catalog = load_manifests(*sources, env=env, overridable=["builtin:*"])
    keys_env: dict[str, str] = dict(os.environ if env is None else env)
    providers = dict(catalog.providers)
    models = dict(catalog.models)
    keys: dict[str, str] = {}
    issues: list[ManifestIssue] = []
    aliases = provider_aliases()
    for name, entry in config.models.items():
        alias = aliases.get(entry.provider)
        target = alias.provider if alias is not None else entry.provider
        provider = catalog.providers.get(target)
        if provider is None:
            known = sorted({*aliases, *catalog.providers})
            issues.append(config.issue(
                ("models", name, "provider"), f"unknown provider {entry.provider!r}; known: {', '.join(known)}"
            ))
            continue
        base_url = entry.base_url or (alias.base_url if alias is not None else None) or provider.base_url
        changes: dict[str, Any] = {"base_url": base_url}
        var = f"MODELWIRE_AGENTAPP_KEY_{len(keys)}"
        if entry.api_key is not None:
            keys_env[var] = entry.api_key
            if provider.auth.type != "none":
                changes["auth"] = attrs.evolve(provider.auth, env=var, value=None, optional=False)
        elif alias is not None and alias.key_env is not None and provider.auth.type != "none":
            changes["auth"] = attrs.evolve(provider.auth, env=alias.key_env, value=None)
        ck = entry.client_kwargs
        if "headers" in ck:
            if not isinstance(ck["headers"], dict):
                issues.append(config.issue(("models", name, "client_kwargs", "headers"), "expected a mapping"))
            else:
                changes["headers"] = {**provider.headers, **{str(k): str(v) for k, v in ck["headers"].items()}}
        if "timeout" in ck:
            try:
                changes["timeout"] = _timeout(ck["timeout"], ("models", name, "client_kwargs", "timeout"), config, provider.timeout)
            except ManifestError as exc:
                issues.extend(exc.issues)
        clone = f"{target}@{name}"
        providers[clone] = attrs.evolve(provider, **changes)
        declared = next(
            (m for key, m in catalog.models.items() if m.provider == target and (m.id or key) == entry.model),
            None,
        )
        if declared is not None:
            spec = attrs.evolve(declared, provider=clone, id=declared.id or entry.model, fallback=[])
        else:
            spec = Model(provider=clone, id=entry.model, capabilities=list(provider.default_capabilities))
        key = f"@{name}"
        models[key] = spec
        keys[name] = key
    if issues:
        raise ManifestError(issues=issues, code="AGENTAPP_CONFIG_INVALID")
    return attrs.evolve(catalog, providers=providers, models=models), keys_env, keys


# -- sessions and the app -----------------------------------------------------------


@attrs.define
class Msg:
    """A message in or out of the app (AgentScope-style): role, content, name, metadata."""

    content: Any
    role: str = "assistant"
    name: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    @classmethod
    def coerce(cls, value: Any) -> Msg:
        """A Msg from a Msg, a string (assistant text) or a mapping."""
        if isinstance(value, Msg):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping):
            allowed = {"content", "role", "name", "metadata", "id"}
            return cls(**{k: v for k, v in value.items() if k in allowed})
        raise TypeError(f"an app must yield Msg, str or dict, not {type(value).__name__}")


@attrs.define
class SessionContext:
    """What one request knows: its session id, the request metadata, the session's state."""

    session_id: str
    metadata: dict[str, Any] = attrs.field(factory=dict)
    #: the session's stored state (saved back when the request ends)
    state: dict[str, Any] = attrs.field(factory=dict)

    def agent_context(self) -> Any:
        """An :class:`AgentContext` for tools, sharing this session's state."""
        from ..tools import AgentContext

        ctx = AgentContext(self.session_id, self.metadata)
        ctx._session = self.state
        return ctx


@runtime_checkable
class SessionStore(Protocol):
    """Where session state lives between requests (in memory by default)."""

    async def load(self, session_id: str) -> dict[str, Any]:
        """The session's state (an empty dict for a new session)."""
        ...

    async def save(self, session_id: str, state: dict[str, Any]) -> None: ...

    async def delete(self, session_id: str) -> None: ...

    async def count(self) -> int:
        """Sessions currently kept (the platform's active_sessions)."""
        ...

    async def aclose(self) -> None: ...


class InMemorySessionStore:
    """Sessions in a dict, expired after ``ttl`` seconds idle, at most ``max_sessions`` (LRU)."""

    def __init__(self, ttl: float | None = 3600.0, max_sessions: int | None = 10000) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._data: dict[str, tuple[float, dict[str, Any]]] = {}

    def _expire(self) -> None:
        if self.ttl is None:
            return
        cutoff = time.monotonic() - self.ttl
        for sid in [s for s, (seen, _) in self._data.items() if seen < cutoff]:
            del self._data[sid]

    async def load(self, session_id: str) -> dict[str, Any]:
        self._expire()
        item = self._data.pop(session_id, None)
        state = item[1] if item is not None else {}
        self._data[session_id] = (time.monotonic(), state)
        self._trim()
        return dict(state)

    async def save(self, session_id: str, state: dict[str, Any]) -> None:
        self._data.pop(session_id, None)
        self._data[session_id] = (time.monotonic(), dict(state))
        self._trim()

    def _trim(self) -> None:
        if self.max_sessions is not None:
            while len(self._data) > self.max_sessions:
                del self._data[next(iter(self._data))]

    async def delete(self, session_id: str) -> None:
        self._data.pop(session_id, None)

    async def count(self) -> int:
        self._expire()
        return len(self._data)

    async def aclose(self) -> None:
        self._data.clear()


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


# -- lifecycle --------------------------------------------------------------------


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
                _mcp = importlib.import_module("modelwire.tools._mcp")
            except ImportError as exc:
                raise InternalError(
                    f"MCP support is not available ({exc}); install modelwire[agent]", code="MCP_UNAVAILABLE"
                ) from exc
            config_cls, client_cls = _mcp.MCPServerConfig, _mcp.MCPClient

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
    async def invoke(
        self, msg: Msg | str, session_id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Msg]:
        """Run the app on one message in a session; the session's state is saved at the end."""
        from contextlib import aclosing

        message = Msg(msg, role="user") if isinstance(msg, str) else msg
        sid = session_id or uuid.uuid4().hex
        sessions = self.sessions
        ctx = SessionContext(sid, dict(metadata or {}), await sessions.load(sid))
        try:
            async with aclosing(self.app(message, ctx)) as out:  # type: ignore[type-var]
                async for item in out:
                    yield Msg.coerce(item)
        finally:
            import anyio

            with anyio.CancelScope(shield=True):
                await sessions.save(sid, ctx.state)


@attrs.frozen
class _SimpleMCPConfig:
    """What an injected MCP client factory receives (mirrors ``_mcp.MCPServerConfig``)."""

    name: str
    url: str
    transport: str = "streamable_http"
    headers: dict[str, str] = attrs.field(factory=dict)
    timeout: float = 30.0
    sse_read_timeout: float = 300.0
