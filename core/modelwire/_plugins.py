"""The plugin manager: entry-point discovery and the named registries.

One :class:`Plugins` object holds a ``pluggy.PluginManager`` and the names its
hooks registered. A process-wide default exists for convenience
(:func:`get_plugins`), but an embedding app can build its own isolated
``Plugins(entry_points=False)`` and hand it to a runtime, or replace the
default with :func:`set_plugins`.

``MODELWIRE_LOAD_PLUGINS`` restricts which entry points load: a comma
separated list of distribution or entry-point names; empty loads none.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

import attrs
import pluggy

from . import _builtins, _hookspecs
from ._errors import NotFoundError, PluginError
from ._frames import Parser
from ._version import __version__

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
        self._registry: dict[str, dict[str, Registration]] | None = None
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
    def _build(self) -> dict[str, dict[str, Registration]]:
        registry: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        for kind, hook_name in KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            # Oldest registration first, so "first claim" reads naturally.
            for impl in reversed(hook.get_hookimpls()):
                dist, version = self._origins.get(impl.plugin_name, (None, None))
                table = registry[kind]

                def register(
                    name: str,
                    obj: Any,
                    media_types: Iterable[str] = (),
                    *,
                    _kind: str = kind,
                    _table: dict[str, Registration] = table,
                    _plugin: str = impl.plugin_name,
                    _dist: str | None = dist,
                    _version: str | None = version,
                ) -> None:
                    new = Registration(
                        kind=_kind,
                        name=name,
                        obj=obj,
                        plugin=_plugin,
                        distribution=_dist,
                        version=_version,
                        media_types=tuple(_media_key(m) for m in media_types),
                    )
                    old = _table.get(name)
                    if old is not None:
                        raise PluginError(
                            f"{_kind.replace('_', ' ')} name {name!r} is claimed twice: "
                            f"by {old.origin()} and by {new.origin()}",
                            code="PLUGIN_CONFLICT",
                        )
                    _table[name] = new

                impl.function(register=register)
        return registry

    def registry(self, kind: str) -> dict[str, Registration]:
        """Every registration of one kind (``parser``, ``auth_injector``, ...)."""
        if self._registry is None:
            self._registry = self._build()
        return self._registry[kind]

    def names(self, kind: str) -> list[str]:
        return sorted(self.registry(kind))

    def get(self, kind: str, name: str) -> Registration:
        """Look a name up; an unknown name lists the installed ones."""
        table = self.registry(kind)
        try:
            return table[name]
        except KeyError:
            pass
        label = kind.replace("_", " ")
        installed = ", ".join(sorted(table)) or "none"
        msg = f"no {label} named {name!r}; installed: {installed}"
        close = difflib.get_close_matches(name, list(table), n=1)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        for err in self.load_errors:
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
        first registered wins.
        """
        key = _media_key(content_type)
        if not key:
            return None
        major = key.split("/", 1)[0] + "/*"
        best: tuple[int, Registration] | None = None
        for reg in self.registry("parser").values():
            for mt in reg.media_types:
                rank = 3 if mt == key else 2 if mt == major else 1 if mt == "*/*" else 0
                if rank and (best is None or rank > best[0]):
                    best = (rank, reg)
        return None if best is None else best[1]

    def get_auth_injector(self, name: str) -> Callable[..., Any]:
        obj: Callable[..., Any] = self.get("auth_injector", name).obj
        return obj

    def get_tokenizer(self, name: str) -> Any:
        return self.get("tokenizer", name).obj

    def get_fallback_policy(self, name: str) -> Any:
        return self.get("fallback_policy", name).obj

    def describe(self) -> list[dict[str, Any]]:
        """Every registration of every kind, for ``modelwire plugins``."""
        return [
            self.registry(kind)[name].to_dict() for kind in KINDS for name in self.names(kind)
        ]


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
