"""Tool permissions: the host decides whether a tool that declares permissions may run.

A tool's manifest lists what it may do (``permissions: [net, fs.write]``).
Whoever runs tools (:func:`~modelwire.tools.call_tool`, the model loop
:func:`~modelwire.tools.run_tools`, the pipeline
:class:`~modelwire.Orchestrator`) takes a ``permit`` check: a function of a
:class:`PermissionRequest` returning ``True`` (grant) or ``False`` (deny),
or an awaitable of one (ask the host: a prompt, a policy service). It is
consulted after the inputs were validated, before any resource is acquired
or the tool runs; a tool that declares no permission needs none. A denial
is a :class:`~modelwire.tools.ToolError` ``TOOL_PERMISSION_DENIED`` naming
the tool and its permissions. Without a ``permit`` nothing is checked (the
behaviour before permissions were enforced); :func:`grant` builds the
common check, a fixed set of granted permissions.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias

import attrs

from ._errors import ToolError

__all__ = ["PermissionRequest", "Permit", "check_permission", "grant"]


@attrs.frozen
class PermissionRequest:
    """One tool call asking to run: the tool, the permissions it declares, its (validated) inputs."""

    tool: str
    permissions: tuple[str, ...]
    inputs: Mapping[str, Any] = attrs.field(repr=False)  # may hold a user's data: kept out of reprs


#: grant (True) or deny (False), at once or after asking someone
Permit: TypeAlias = Callable[[PermissionRequest], "bool | Awaitable[bool]"]


def grant(*permissions: str | Iterable[str]) -> Permit:
    """A check granting a call when every permission its tool declares is one of ``permissions``."""
    granted: set[str] = set()
    for p in permissions:
        granted.update([p] if isinstance(p, str) else p)

    def permit(request: PermissionRequest) -> bool:
        return set(request.permissions) <= granted

    return permit


async def check_permission(permit: Permit | None, tool: str, permissions: Iterable[str], inputs: Mapping[str, Any]) -> None:
    """Ask ``permit`` about one call; return if granted, raise ``TOOL_PERMISSION_DENIED`` if not.

    A check that fails (raises) denies: the error says so, with the cause chained.
    """
    needed = tuple(permissions)
    if permit is None or not needed:
        return
    request = PermissionRequest(tool, needed, inputs)
    try:
        answer = permit(request)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception as exc:
        raise ToolError(
            f"tool {tool!r}: the permission check failed ({type(exc).__name__}), so it was denied "
            f"(permissions: {', '.join(needed)})",
            code="TOOL_PERMISSION_DENIED", tool=tool,
        ) from exc
    if answer is not True:
        raise ToolError(
            f"tool {tool!r} was denied permission to run (it needs: {', '.join(needed)})",
            code="TOOL_PERMISSION_DENIED", tool=tool,
        )
