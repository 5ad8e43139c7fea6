"""The agent's models: a catalog built from the config, handles that call the runtime.

:func:`build_catalog` turns the config's ``models`` into catalog entries
(clones of manifest providers with their ``base_url`` and key);
:class:`ModelHandle` calls the runtime's ``generate`` / ``stream`` / ``embed``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import ManifestError, ManifestIssue
from ._config import AgentAppConfig, ModelConfig, provider_aliases

if TYPE_CHECKING:
    from .._events import Event
    from .._manifest.catalog import Catalog
    from .._runtime.client import Response, Runtime
    from ..tools import ToolRegistry

__all__ = [
    "ModelHandle",
    "ModelRegistry",
    "build_catalog",
]


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
        from ..tools import run_tools

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
