"""The gateway: OpenAI- and Anthropic-compatible HTTP endpoints over every manifest model.

``modelwire serve`` runs it; embedding apps use :class:`Gateway` and
:func:`create_gateway_app` (a plain ASGI app). Virtual keys, limits and
budgets come from ``gateway.yaml``; with a Redis URL every counter is shared
by all replicas. The server needs the ``gateway`` extra (uvicorn,
prometheus-client, redis), imported when it is used, not here.
"""

from __future__ import annotations

from ._app import Gateway, create_gateway_app
from ._config import (
    Budget,
    GatewayConfig,
    GatewayServer,
    VirtualKey,
    hash_key,
    load_gateway_config,
    parse_gateway_config,
)
from ._counters import Admission, LocalCounters, RedisCounters, Spend
from ._serve import serve, uvicorn_config

__all__ = [
    "Admission",
    "Budget",
    "Gateway",
    "GatewayConfig",
    "GatewayServer",
    "LocalCounters",
    "RedisCounters",
    "Spend",
    "VirtualKey",
    "create_gateway_app",
    "hash_key",
    "load_gateway_config",
    "parse_gateway_config",
    "serve",
    "uvicorn_config",
]
