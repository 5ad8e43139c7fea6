"""The plugin manager: entry-point discovery and the named registries.

One :class:`Plugins` object holds a ``pluggy.PluginManager`` and the names its
hooks registered. A process-wide default exists for convenience
(:func:`get_plugins`), but an embedding app can build its own isolated
``Plugins(entry_points=False)`` and hand it to a runtime, or replace the
default with :func:`set_plugins`.

``MODELWIRE_LOAD_PLUGINS`` restricts which entry points load: a comma
separated list of distribution or entry-point names; empty loads none.

Problems never stop the other plugins from loading. A plugin that fails to
import, or whose hook raises, is recorded (naming the plugin and its
distribution) and shown by ``modelwire plugins`` and in not-found messages.
A name claimed by two plugins is left out of the registry; using it (a
lookup, or media-type detection choosing it) raises ``PLUGIN_CONFLICT``
naming both distributions, while every other name keeps working.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

import attrs
import pluggy

from .._errors import NotFoundError, PluginError
from .._frames import Parser
from .._version import __version__
from . import builtins as _builtins
from . import hookspecs as _hookspecs

__all__ = [
    "KINDS",
    "Plugins",
    "Registration",
    "get_parser",
    "get_plugins",
    "set_plugins",
]

GROUP = "modelwire"

#: registry kind -> (hook name, error code prefix)
KINDS: dict[str, str] = {
    "parser": "register_parsers",
    "auth_injector": "register_auth_injectors",
    "tokenizer": "register_tokenizers",
    "fallback_policy": "register_fallback_policies",
    "limiter": "register_limiters",
}


@attrs.frozen
class Registration:
    """One name one plugin registered, and where it came from."""

    kind: str
    name: str
    obj: Any
    plugin: str
    distribution: str | None = None
    version: str | None = None
    media_types: tuple[str, ...] = ()

    def origin(self) -> str:
        """``dist 1.0`` or the plugin name when it was registered directly."""
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip()
        return f"plugin {self.plugin!r}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
        }
        if self.kind == "parser":
            out["media_types"] = list(self.media_types)
        return out


def _media_key(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class _Tables:
    """Every claim of every kind, in registration order, split into usable and clashing names."""

    def __init__(self, claims: dict[str, list[Registration]], hook_errors: list[PluginError]) -> None:
        self.claims = claims
        self.hook_errors = hook_errors
        self.unique: dict[str, dict[str, Registration]] = {}
        self.clashes: dict[str, dict[str, list[Registration]]] = {}
        for kind, regs in claims.items():
            by_name: dict[str, list[Registration]] = {}
            for reg in regs:
                by_name.setdefault(reg.name, []).append(reg)
            self.unique[kind] = {n: rs[0] for n, rs in by_name.items() if len(rs) == 1}
            self.clashes[kind] = {n: rs for n, rs in by_name.items() if len(rs) > 1}


def _conflict_error(kind: str, name: str, regs: list[Registration]) -> PluginError:
    origins = [r.origin() for r in regs]
    times = "twice" if len(regs) == 2 else f"{len(regs)} times"
    claimants = ", by ".join(origins[:-1]) + f" and by {origins[-1]}"
    return PluginError(
        f"{kind.replace('_', ' ')} name {name!r} is claimed {times}: by {claimants}; "
        "uninstall one of them, or choose which load with MODELWIRE_LOAD_PLUGINS",
        code="PLUGIN_CONFLICT",
        name=name,
        distributions=[r.distribution for r in regs],
    )


class Plugins:
    """A plugin manager and the registries filled by its hooks."""

    def __init__(
        self,
        *,
        entry_points: bool = True,
        builtins: bool = True,
        only: Iterable[str] | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager("modelwire")
        self.pm.add_hookspecs(_hookspecs)
        self.load_errors: list[PluginError] = []
        self._origins: dict[str, tuple[str | None, str | None]] = {}
        self._registry: _Tables | None = None
        if builtins:
            self.register(_builtins, name="modelwire", distribution="modelwire", version=__version__)
        if entry_points:
            if only is None:
                env = os.environ.get("MODELWIRE_LOAD_PLUGINS")
                if env is not None:
                    only = [p.strip() for p in env.split(",") if p.strip()]
            self.load_entry_points(only=only)

    # -- registration -------------------------------------------------
    def register(
        self,
        plugin: object,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> str:
        """Register a plugin object (a module or any object with hookimpls)."""
        registered = self.pm.register(plugin, name=name)
        if registered is None:  # pragma: no cover - pluggy returns None for blocked names
            raise PluginError(f"plugin {name!r} is blocked", code="PLUGIN_BLOCKED")
        self._origins[registered] = (distribution, version)
        self._registry = None
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> None:
        """Remove a plugin registered earlier, by object or by name."""
        key = name if name is not None else self.pm.get_name(plugin) if plugin else None
        self.pm.unregister(plugin, name=name)
        if key is not None:
            self._origins.pop(key, None)
        self._registry = None

    def load_entry_points(self, only: Iterable[str] | None = None) -> None:
        """Load every plugin of the ``modelwire`` entry-point group.

        A plugin that fails to import is recorded in ``load_errors`` (naming
        the plugin and its distribution); the others still load.
        """
        wanted = None if only is None else set(only)
        for ep in metadata.entry_points(group=GROUP):
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if wanted is not None and ep.name not in wanted and dist not in wanted:
                continue
            if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name, distribution=dist, version=version)
            except Exception as exc:
                err = PluginError(
                    f"plugin {ep.name!r} from distribution {dist!r} failed to load: "
                    f"{type(exc).__name__}: {exc}",
                    code="PLUGIN_LOAD_FAILED",
                    plugin=ep.name,
                    distribution=dist,
                )
                err.__cause__ = exc
                self.load_errors.append(err)

    # -- registries ---------------------------------------------------
    def _build(self) -> _Tables:
        claims: dict[str, list[Registration]] = {kind: [] for kind in KINDS}
        hook_errors: list[PluginError] = []
        for kind, hook_name in KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            # pluggy lists implementations oldest registration first.
            for impl in hook.get_hookimpls():
                dist, version = self._origins.get(impl.plugin_name, (None, None))

                def register(
                    name: str,
                    obj: Any,
                    media_types: Iterable[str] = (),
                    *,
                    _kind: str = kind,
                    _plugin: str = impl.plugin_name,
                    _dist: str | None = dist,
                    _version: str | None = version,
                ) -> None:
                    if not isinstance(name, str) or not name:
                        label = _kind.replace("_", " ")
                        raise TypeError(f"a {label} name must be a non-empty string, got {name!r}")
                    if isinstance(media_types, str):
                        media_types = [media_types]
                    claims[_kind].append(
                        Registration(
                            kind=_kind,
                            name=name,
                            obj=obj,
                            plugin=_plugin,
                            distribution=_dist,
                            version=_version,
                            media_types=tuple(_media_key(m) for m in media_types),
                        )
                    )

                try:
                    impl.function(register=register)
                except Exception as exc:
                    origin = f"distribution {dist!r}" if dist else "no distribution"
                    err = PluginError(
                        f"plugin {impl.plugin_name!r} ({origin}) failed in {hook_name}: "
                        f"{type(exc).__name__}: {exc}",
                        code="PLUGIN_HOOK_FAILED",
                        plugin=impl.plugin_name,
                        distribution=dist,
                    )
                    err.__cause__ = exc
                    hook_errors.append(err)
        return _Tables(claims, hook_errors)

    def _tables(self) -> _Tables:
        if self._registry is None:
            self._registry = self._build()
        return self._registry

    def registry(self, kind: str) -> dict[str, Registration]:
        """Every usable registration of one kind (``parser``, ``auth_injector``, ...).

        A name two plugins claimed is left out; looking it up with :meth:`get`
        raises the ``PLUGIN_CONFLICT`` error naming both distributions.
        """
        return self._tables().unique[kind]

    def conflicts(self) -> list[PluginError]:
        """One ``PLUGIN_CONFLICT`` error per name claimed by more than one plugin."""
        tables = self._tables()
        return [
            _conflict_error(kind, name, regs)
            for kind in KINDS
            for name, regs in sorted(tables.clashes[kind].items())
        ]

    def errors(self) -> list[PluginError]:
        """Every plugin problem: failed imports, failed hooks, name conflicts."""
        return [*self.load_errors, *self._tables().hook_errors, *self.conflicts()]

    def names(self, kind: str) -> list[str]:
        return sorted(self.registry(kind))

    def get(self, kind: str, name: str) -> Registration:
        """Look a name up; an unknown name lists the installed ones."""
        tables = self._tables()
        table = tables.unique[kind]
        try:
            return table[name]
        except KeyError:
            pass
        if name in tables.clashes[kind]:
            raise _conflict_error(kind, name, tables.clashes[kind][name])
        label = kind.replace("_", " ")
        installed = ", ".join(sorted(table)) or "none"
        msg = f"no {label} named {name!r}; installed: {installed}"
        close = difflib.get_close_matches(name, list(table), n=1)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        for err in (*self.load_errors, *tables.hook_errors):
            msg += f"; note: {err.message}"
        raise NotFoundError(msg, code=f"{kind.upper()}_NOT_FOUND", name=name)

    def get_parser(self, name: str, **options: Any) -> Parser:
        """A fresh parser instance by name."""
        factory = self.get("parser", name).obj
        parser: Parser = factory(**options)
        return parser

    def parser_for_media_type(self, content_type: str) -> Registration | None:
        """The parser whose declared media types best match a Content-Type.

        An exact type beats ``type/*``, which beats ``*/*``; among equals the
        first registered wins. If the winner's name is claimed by two plugins,
        the ``PLUGIN_CONFLICT`` error is raised rather than guessing.
        """
        key = _media_key(content_type)
        if not key:
            return None
        major = key.split("/", 1)[0] + "/*"
        best: tuple[int, Registration] | None = None
        for reg in self._tables().claims["parser"]:
            for mt in reg.media_types:
                rank = 3 if mt == key else 2 if mt == major else 1 if mt == "*/*" else 0
                if rank and (best is None or rank > best[0]):
                    best = (rank, reg)
        if best is None:
            return None
        return self.get("parser", best[1].name)

    def get_auth_injector(self, name: str) -> Callable[..., Any]:
        obj: Callable[..., Any] = self.get("auth_injector", name).obj
        return obj

    def get_tokenizer(self, name: str) -> Any:
        return self.get("tokenizer", name).obj

    def get_fallback_policy(self, name: str) -> Any:
        return self.get("fallback_policy", name).obj

    def describe(self) -> list[dict[str, Any]]:
        """Every registration of every kind, for ``modelwire plugins``.

        Both sides of a name conflict are listed, marked ``"conflict": true``.
        """
        tables = self._tables()
        rows = []
        for kind in KINDS:
            for reg in sorted(tables.claims[kind], key=lambda r: r.name):
                rows.append({**reg.to_dict(), "conflict": reg.name in tables.clashes[kind]})
        return rows


_default: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin manager, created (and entry points loaded) on first use."""
    global _default
    if _default is None:
        _default = Plugins()
    return _default


def set_plugins(plugins: Plugins | None) -> Plugins | None:
    """Replace the process-wide plugin manager; returns the previous one.

    ``None`` resets it so the next :func:`get_plugins` rediscovers entry points.
    """
    global _default
    previous, _default = _default, plugins
    return previous


def get_parser(name: str, **options: Any) -> Parser:
    """A fresh parser from the default plugin manager (``PARSER_NOT_FOUND`` if unknown)."""
    return get_plugins().get_parser(name, **options)
