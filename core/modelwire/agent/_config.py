"""``agentapp.yaml``: the agent app's configuration, parsed and checked.

Every problem is a :class:`ManifestIssue` naming the file, field path and
line; all are raised together as one :class:`ManifestError`. Provider names
in ``models`` map to manifest providers through ``providers.yaml`` (data).
"""

from __future__ import annotations

import os
from collections.abc import Container, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._errors import ManifestError, ManifestIssue
from .._manifest.model import doc
from .._manifest.yaml import Located, expand_env, read_yaml

if TYPE_CHECKING:
    pass

__all__ = [
    "AgentAppConfig",
    "MCPServerSpec",
    "ModelConfig",
    "PlatformSettings",
    "ProviderAlias",
    "ServerSettings",
    "SessionSettings",
    "is_loopback_url",
    "load_agentapp_config",
    "parse_agentapp_config",
    "provider_aliases",
]


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

    provider: str = attrs.field(metadata=doc("a provider alias (see modelwire/agent/providers.yaml) or a manifest's provider"))
    model: str = attrs.field(metadata=doc("the provider's model id"))
    api_key: str | None = attrs.field(default=None, repr=False, metadata=doc("the key (use ${VAR}); default: the provider's variable"))
    base_url: str | None = attrs.field(default=None, metadata=doc("override the provider's base URL"))
    stream: bool = attrs.field(default=True, metadata=doc("ModelHandle.respond streams (true) or answers whole (false)"))
    generate_kwargs: dict[str, Any] = attrs.field(factory=dict, metadata=doc("defaults for every call: max_tokens, temperature, ...; others go into the body"))
    client_kwargs: dict[str, Any] = attrs.field(factory=dict, metadata=doc("timeout (seconds or {connect, read, write, total}) and headers"))


@attrs.frozen
class MCPServerSpec:
    """An MCP server whose tools the app may call."""

    url: str = attrs.field(metadata=doc("the server's URL"))
    transport: Literal["streamable_http", "sse"] = attrs.field(default="streamable_http", metadata=doc("streamable_http or sse"))
    headers: dict[str, str] = attrs.field(factory=dict, metadata=doc("HTTP headers sent to the server"))
    timeout: float = attrs.field(default=30.0, metadata=doc("seconds for a request"))
    sse_read_timeout: float = attrs.field(default=300.0, metadata=doc("seconds between two SSE reads"))


@attrs.frozen
class SessionSettings:
    """Where sessions live."""

    store: str = attrs.field(default="memory", metadata=doc("`memory`, or `module:factory` of a SessionStore"))
    ttl: float | None = attrs.field(default=3600.0, metadata=doc("seconds a session is kept after its last use (null: forever)"))
    max_sessions: int | None = attrs.field(default=10000, metadata=doc("sessions kept at most (least recently used go first)"))
    options: dict[str, Any] = attrs.field(factory=dict, metadata=doc("keyword options for a custom store"))


@attrs.frozen
class PlatformSettings:
    """The management platform: heartbeats and configuration updates."""

    url: str = attrs.field(metadata=doc("the platform's base URL (POST /heartbeat, GET /config)"))
    heartbeat_interval: float = attrs.field(default=30.0, metadata=doc("seconds between heartbeats"))
    poll_interval: float = attrs.field(default=60.0, metadata=doc("seconds between configuration polls"))
    headers: dict[str, str] = attrs.field(factory=dict, metadata=doc("HTTP headers sent to the platform"))
    timeout: float = attrs.field(default=10.0, metadata=doc("seconds per platform request"))
    max_backoff: float = attrs.field(default=300.0, metadata=doc("longest wait between tries while the platform is down"))


@attrs.frozen
class ServerSettings:
    """The HTTP server: authentication, request limits, connection limits."""

    api_keys_env: str | None = attrs.field(default=None, metadata=doc("name of an env var holding comma-separated bearer tokens (besides MODELWIRE_API_KEYS)"))
    max_body_bytes: int = attrs.field(default=2**20, metadata=doc("largest /invoke body in bytes (413 above)"))
    max_json_depth: int = attrs.field(default=32, metadata=doc("deepest nesting of arrays/objects in an /invoke body (400 above)"))
    max_session_id_length: int = attrs.field(default=128, metadata=doc("longest session_id (characters A-Z a-z 0-9 . _ : -)"))
    client_roles: list[str] = attrs.field(factory=lambda: ["user"], metadata=doc("message roles clients may send (default: user only)"))
    limit_concurrency: int | None = attrs.field(default=1000, metadata=doc("connections + requests at most; more are answered 503"))
    timeout_keep_alive: float = attrs.field(default=5.0, metadata=doc("seconds an idle keep-alive connection is kept"))
    h11_max_incomplete_event_size: int = attrs.field(default=16 * 1024, metadata=doc("largest request line + headers in bytes"))


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is a loopback name or address."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen
class AgentAppConfig:
    """``agentapp.yaml``."""

    app: str = attrs.field(metadata=doc("the app class, `module:Class` (imported from the project directory)"))
    name: str = attrs.field(default="agent", metadata=doc("the app's name"))
    models: dict[str, ModelConfig] = attrs.field(factory=dict, metadata=doc("models by the name the app uses"))
    mcp_servers: dict[str, MCPServerSpec] = attrs.field(factory=dict, metadata=doc("MCP servers by name"))
    session: SessionSettings = attrs.field(factory=SessionSettings, metadata=doc("session store settings"))
    manifests: list[str] = attrs.field(factory=list, metadata=doc("extra manifest sources (paths relative to this file)"))
    platform: PlatformSettings | None = attrs.field(default=None, metadata=doc("management platform (off with --no-platform)"))
    server: ServerSettings = attrs.field(factory=ServerSettings, metadata=doc("HTTP server: auth, limits, client roles"))
    #: the file it came from (None when built in code), and its parsed document
    file: str | None = attrs.field(default=None, metadata=doc("(set by the loader)"))
    doc: Located | None = attrs.field(default=None, eq=False, repr=False, metadata=doc("(set by the loader)"))

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


def parse_agentapp_config(
    doc: Located, env: Mapping[str, str] | None = None, *, allowed_env: Container[str] | None = None
) -> AgentAppConfig:
    """A parsed document (``read_yaml``, or a mapping a platform sent) -> AgentAppConfig.

    ``allowed_env``: for a config from elsewhere (a platform push), the only
    variables ``${VAR}`` may read (the remote-manifest policy, docs/security.md).
    """
    from .._manifest.structure import converter, describe, issues_from

    file = doc.file
    if not isinstance(doc.value, dict):
        raise ManifestError(issues=[doc.issue((), f"the config must be a mapping, got {describe(doc.value)}")])
    env_issues = expand_env(doc, os.environ if env is None else env, allowed=allowed_env)
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
    if config.platform is not None:
        url = config.platform.url
        scheme = url.split(":", 1)[0].lower()
        if not (scheme == "https" or (scheme == "http" and is_loopback_url(url))):
            out.append(config.issue(
                ("platform", "url"), f"the platform URL must be https:// (http:// only on loopback), got {url!r}",
            ))
    srv = config.server
    for key in ("max_body_bytes", "max_json_depth", "max_session_id_length", "h11_max_incomplete_event_size"):
        if getattr(srv, key) < 1:
            out.append(config.issue(("server", key), "must be at least 1"))
    if srv.limit_concurrency is not None and srv.limit_concurrency < 1:
        out.append(config.issue(("server", "limit_concurrency"), "must be at least 1 (or null)"))
    if not srv.client_roles:
        out.append(config.issue(("server", "client_roles"), "allow at least one role"))
    store = config.session.store
    if store != "memory" and ":" not in store:
        out.append(config.issue(("session", "store"), f"expected `memory` or `module:factory`, got {store!r}"))
    return out
