"""The agent runtime: ``agentapp.yaml``, models, MCP tools, sessions, and the HTTP server.

``from modelwire.agent import AgentApp, AgentRuntime, create_asgi_app``.
The server needs the ``agent`` extra (starlette, uvicorn), imported when an
app is created, not here.
"""

from __future__ import annotations

from ._app import AgentApp, AgentRuntime, AgentStartupError, SessionOwnerError, get_agent_runtime
from ._config import (
    AgentAppConfig,
    MCPServerSpec,
    ModelConfig,
    PlatformSettings,
    ServerSettings,
    SessionSettings,
    load_agentapp_config,
    parse_agentapp_config,
    provider_aliases,
)
from ._models import ModelHandle, ModelRegistry
from ._platform import PlatformClient
from ._server import create_asgi_app, parse_invoke_body, resolve_api_keys, uvicorn_options
from ._sessions import InMemorySessionStore, Msg, SessionContext, SessionStore

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
    "PlatformClient",
    "PlatformSettings",
    "ServerSettings",
    "SessionContext",
    "SessionOwnerError",
    "SessionSettings",
    "SessionStore",
    "create_asgi_app",
    "get_agent_runtime",
    "load_agentapp_config",
    "parse_agentapp_config",
    "parse_invoke_body",
    "provider_aliases",
    "resolve_api_keys",
    "uvicorn_options",
]
