"""The tool registry: tools by name, checked when registered, sharing one resource manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .._errors import InvalidRequestError, ManifestError, NotFoundError
from ._checks import check_tool_manifest, signature_issues
from ._context import AgentContext, ToolContext
from ._resources import ResourceManager
from ._signature import tool as tool_from_function
from ._tool import Tool, call_tool

__all__ = [
    "ToolRegistry",
]


class ToolRegistry:
    """Tools by name; registering a name twice is an error.

    Registering checks the manifest (:func:`check_tool_manifest`), including
    that each resource kind is one the registry's resource manager knows.
    ``resources`` is the :class:`ResourceManager` whose pools calls through
    :meth:`call` share; without one the registry makes its own on first use
    and closes it in :meth:`aclose`.
    """

    def __init__(self, tools: Iterable[Tool] = (), *, resources: ResourceManager | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._resources = resources
        self._owns_resources = resources is None
        for t in tools:
            self.register(t)

    @property
    def resources(self) -> ResourceManager:
        if self._resources is None:
            self._resources = ResourceManager()
        return self._resources

    def register(self, tool: Tool | Callable[..., Any]) -> Tool:
        """Check and add a tool (a plain typed function is turned into one by :func:`tool`)."""
        t = tool if isinstance(tool, Tool) else tool_from_function(tool)
        if t.name in self._tools:
            raise InvalidRequestError(f"tool {t.name!r} is registered twice", code="TOOL_DUPLICATE")
        kinds = self._resources.kinds() if self._resources is not None else None
        issues = check_tool_manifest(t.manifest, resource_kinds=kinds, origin=t.origin, check_kinds=True)
        if t._fn is not None:
            issues.extend(signature_issues(t.manifest, t._fn, t.origin))
        if issues:
            raise ManifestError(issues=issues, code="TOOL_MANIFEST_INVALID", tool=t.name)
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise NotFoundError(
                f"no tool named {name!r}; registered: {', '.join(sorted(self._tools)) or 'none'}",
                code="TOOL_NOT_FOUND", name=name,
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def with_capability(self, tag: str) -> list[Tool]:
        """The tools whose manifest lists capability ``tag``."""
        return [t for t in self._tools.values() if tag in t.manifest.capabilities]

    async def call(
        self,
        name: str,
        inputs: Mapping[str, Any],
        ctx: ToolContext | AgentContext | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """:func:`call_tool` on the tool called ``name``, with this registry's resources."""
        return await call_tool(self.get(name), inputs, ctx, timeout=timeout, resources=self.resources)

    async def aclose(self) -> None:
        """Close the resource pools, if the registry made the manager."""
        manager, self._resources = self._resources, None
        if manager is not None and self._owns_resources:
            await manager.aclose()

    async def __aenter__(self) -> ToolRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
