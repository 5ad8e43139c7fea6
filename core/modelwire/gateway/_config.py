"""``gateway.yaml``: the gateway's manifests, virtual keys, limits, budgets and server limits.

Keys are stored as hashes (``sha256:<hex>`` of the key the client sends),
never as the keys themselves; :func:`hash_key` makes one. Every problem is a
:class:`ManifestIssue` naming the file, field path and line, all raised
together as one :class:`ManifestError`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import attrs

from .._errors import ManifestError, ManifestIssue
from .._manifest.model import doc
from .._manifest.yaml import Located, expand_env, format_path, read_yaml

__all__ = [
    "Budget",
    "GatewayConfig",
    "GatewayServer",
    "VirtualKey",
    "hash_key",
    "key_from_json",
    "load_gateway_config",
    "parse_gateway_config",
]

_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def hash_key(key: str) -> str:
    """The form a key is stored in: ``sha256:`` and the hex digest of its UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected a decimal amount, got {value!r}")
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"expected a decimal amount, got {value!r}") from None
    if not out.is_finite() or out < 0:
        raise ValueError(f"expected a finite amount >= 0, got {value!r}")
    return out


@attrs.frozen
class Budget:
    """How much a key may spend per period (UTC days or calendar months)."""

    amount: Any = attrs.field(metadata=doc("the most a key may spend per period, a decimal (write it as a string: \"10.00\")"))
    currency: str = attrs.field(default="USD", metadata=doc("the currency of the models' pricing this budget counts"))
    period: Literal["day", "month"] = attrs.field(default="day", metadata=doc("`day` or `month` (UTC)"))

    @property
    def value(self) -> Decimal:
        """The amount as an exact Decimal (checked when the config loads)."""
        return _decimal(self.amount)


@attrs.frozen
class VirtualKey:
    """One client key: what it may call and how much."""

    hash: str = attrs.field(repr=False, metadata=doc("`sha256:<hex>` of the key (`modelwire serve --hash-key KEY` prints it)"))
    models: list[str] | None = attrs.field(default=None, metadata=doc("models this key may call (`*` patterns allowed); null: all"))
    rpm: int | None = attrs.field(default=None, metadata=doc("requests per minute, shared by all replicas with --redis"))
    tpm: int | None = attrs.field(default=None, metadata=doc("tokens per minute (prompt estimate + max_tokens reserved, actual usage counted)"))
    concurrency: int | None = attrs.field(default=None, metadata=doc("requests in flight at once"))
    budget: Budget | None = attrs.field(default=None, metadata=doc("spend limit per period"))
    admin: bool = attrs.field(default=False, metadata=doc("may read /v1/usage and /metrics"))


@attrs.frozen
class GatewayServer:
    """Request and connection limits of the HTTP server."""

    max_body_bytes: int = attrs.field(default=4 * 2**20, metadata=doc("largest request body in bytes (413 above)"))
    max_json_depth: int = attrs.field(default=64, metadata=doc("deepest nesting of a JSON body (400 above)"))
    limit_concurrency: int | None = attrs.field(default=1000, metadata=doc("connections + requests at most per process; more are answered 503"))
    timeout_keep_alive: float = attrs.field(default=5.0, metadata=doc("seconds an idle keep-alive connection is kept"))
    h11_max_incomplete_event_size: int = attrs.field(default=16 * 1024, metadata=doc("largest request line + headers in bytes"))


@attrs.frozen
class GatewayConfig:
    """``gateway.yaml``."""

    manifests: list[str] = attrs.field(factory=list, metadata=doc("manifest sources (paths relative to this file); default: every built-in"))
    keys: dict[str, VirtualKey] = attrs.field(factory=dict, metadata=doc("virtual keys by name; none: the gateway is open (loopback only)"))
    server: GatewayServer = attrs.field(factory=GatewayServer, metadata=doc("HTTP server limits"))
    redis: str | None = attrs.field(default=None, repr=False, metadata=doc("Redis URL shared by all replicas (`--redis` overrides)"))
    prefix: str = attrs.field(default="modelwire:gw:", metadata=doc("Redis key prefix (replicas sharing counters use the same)"))
    redis_keys: bool = attrs.field(default=False, metadata=doc("also accept keys stored in Redis (hash `<prefix>keys`: key hash hex -> JSON with `name` and the fields of a key)"))
    version: int = attrs.field(default=1, metadata=doc("format version (1)"))
    file: str | None = attrs.field(default=None, metadata=doc("(set by the loader)"))
    doc: Located | None = attrs.field(default=None, eq=False, repr=False, metadata=doc("(set by the loader)"))

    def issue(self, path: tuple[str | int, ...], message: str) -> ManifestIssue:
        if self.doc is not None:
            return self.doc.issue(path, message)
        return ManifestIssue(message, file=self.file, path=format_path(path) or None)

    def sources(self) -> list[str]:
        """Manifest sources, relative paths resolved against the config's directory."""
        base = Path(self.file).resolve().parent if self.file else None
        out = []
        for src in self.manifests:
            if base is not None and ":" not in src and not Path(src).is_absolute():
                src = str(base / src)
            out.append(src)
        return out


def load_gateway_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read ``gateway.yaml``; every problem is a :class:`ManifestError` naming file, field and line."""
    file = os.fspath(path)
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise ManifestError(issues=[ManifestIssue(f"cannot read config: {exc.strerror}", file=file)]) from exc
    located, issues = read_yaml(data, file)
    if located is None:
        raise ManifestError(issues=issues, code="GATEWAY_CONFIG_INVALID")
    return parse_gateway_config(located, env)


def parse_gateway_config(located: Located, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """A parsed document -> :class:`GatewayConfig` (``${VAR}`` expanded from ``env``)."""
    from .._manifest.structure import converter, describe, issues_from

    if not isinstance(located.value, dict):
        raise ManifestError(
            issues=[located.issue((), f"the config must be a mapping, got {describe(located.value)}")],
            code="GATEWAY_CONFIG_INVALID",
        )
    issues = list(expand_env(located, os.environ if env is None else env))
    value = {k: v for k, v in located.value.items() if k not in ("file", "doc")}
    for key in ("file", "doc"):
        if key in located.value:
            issues.append(located.issue((key,), f"unknown field {key!r}"))
    config: GatewayConfig | None = None
    try:
        config = converter().structure(value, GatewayConfig)
    except Exception as exc:
        issues.extend(issues_from(exc, (), located))
    if config is not None:
        config = attrs.evolve(config, file=located.file, doc=located)
        issues.extend(_check(config))
    if issues:
        issues.sort(key=lambda i: i.line or 0)
        raise ManifestError(issues=issues, code="GATEWAY_CONFIG_INVALID")
    assert config is not None
    return config


def _check(config: GatewayConfig) -> list[ManifestIssue]:
    out: list[ManifestIssue] = []
    if config.version != 1:
        out.append(config.issue(("version",), f"unsupported version {config.version}; this modelwire reads 1"))
    seen: dict[str, str] = {}
    for name, key in config.keys.items():
        where = ("keys", name)
        if not _NAME.fullmatch(name):
            out.append(config.issue(where, "a key name is 1-64 characters of A-Z a-z 0-9 . _ - (not starting with . _ -)"))
        if not _HASH.fullmatch(key.hash):
            # never echo the value: it may be a key pasted by mistake
            out.append(config.issue((*where, "hash"), "expected `sha256:` and 64 lower-case hex digits (store the key's hash, not the key)"))
        elif key.hash in seen:
            out.append(config.issue((*where, "hash"), f"the same key as keys.{seen[key.hash]}"))
        else:
            seen[key.hash] = name
        for field in ("rpm", "tpm", "concurrency"):
            v = getattr(key, field)
            if v is not None and v < 0:
                out.append(config.issue((*where, field), "must be >= 0 (or null: no limit)"))
        if key.budget is not None:
            try:
                _decimal(key.budget.amount)
            except ValueError as exc:
                out.append(config.issue((*where, "budget", "amount"), str(exc)))
        if key.models is not None and not all(isinstance(m, str) and m for m in key.models):
            out.append(config.issue((*where, "models"), "expected a list of model names or patterns"))
    srv = config.server
    for field in ("max_body_bytes", "max_json_depth", "h11_max_incomplete_event_size"):
        if getattr(srv, field) < 1:
            out.append(config.issue(("server", field), "must be at least 1"))
    if srv.limit_concurrency is not None and srv.limit_concurrency < 1:
        out.append(config.issue(("server", "limit_concurrency"), "must be at least 1 (or null)"))
    return out


def key_from_json(digest: str, text: str | bytes) -> tuple[str, VirtualKey]:
    """A key stored in Redis: ``{"name": ..., "models": [...], "rpm": ..., "budget": {...}, ...}``.

    Raises ValueError naming the problem (the entry is then ignored, with a warning).
    """
    import json

    from .._manifest.structure import converter

    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not _NAME.fullmatch(data["name"]):
        raise ValueError("expected a JSON object with a valid `name`")
    name = data.pop("name")
    data.pop("hash", None)
    key = converter().structure({**data, "hash": f"sha256:{digest}"}, VirtualKey)
    if key.budget is not None:
        _decimal(key.budget.amount)
    for field in ("rpm", "tpm", "concurrency"):
        v = getattr(key, field)
        if v is not None and v < 0:
            raise ValueError(f"{field} must be >= 0")
    return name, key
