"""Tools: data plus a function, checked at both ends; the registry, resources and the model loop.

``from modelwire.tools import tool, ToolRegistry, run_tools``. The MCP client
(:class:`MCPClient`, :class:`MCPServerConfig`) loads on first use, since it
needs the optional ``mcp`` SDK (``modelwire[agent]``).
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

from ._checks import check_tool_manifest
from ._context import AgentContext, ToolContext
from ._errors import ToolError, ToolTimeout
from ._files import load_tools, parse_tools, read_tools
from ._loop import ToolLoopDone, ToolResult, ToolStarted, run_tools, run_tools_sync
from ._manifest import Port, ResourceSpec, ToolManifest
from ._permissions import PermissionRequest, Permit, grant
from ._ports import validate_ports
from ._registry import ToolRegistry
from ._resources import (
    FileCache,
    ResourceKind,
    ResourceManager,
    ResourcePool,
    SharedPool,
    SqlitePool,
)
from ._schema import schema_for
from ._signature import ToolBuilder, tool
from ._tool import Tool, call_tool

if TYPE_CHECKING:
    from ._mcp import MCPClient, MCPServerConfig

_LAZY = {"MCPClient": "._mcp", "MCPServerConfig": "._mcp"}

__all__ = [
    "AgentContext",
    "FileCache",
    "MCPClient",
    "MCPServerConfig",
    "PermissionRequest",
    "Permit",
    "Port",
    "ResourceKind",
    "ResourceManager",
    "ResourcePool",
    "ResourceSpec",
    "SharedPool",
    "SqlitePool",
    "Tool",
    "ToolBuilder",
    "ToolContext",
    "ToolError",
    "ToolLoopDone",
    "ToolManifest",
    "ToolRegistry",
    "ToolResult",
    "ToolStarted",
    "ToolTimeout",
    "call_tool",
    "check_tool_manifest",
    "grant",
    "load_tools",
    "parse_tools",
    "read_tools",
    "run_tools",
    "run_tools_sync",
    "schema_for",
    "tool",
    "validate_ports",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelwire.tools' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
