"""A small real MCP server (the official SDK's ``MCPServer``, formerly FastMCP).

Run as ``python mcp_server.py {streamable-http|sse} PORT``: serves on
127.0.0.1:PORT, at ``/mcp`` (streamable HTTP) or ``/sse`` (SSE). The tests
start it in a subprocess and wait for the port to accept connections.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("modelwire-test")


@server.tool()
def add(a: int, b: int = 1) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def greet(name: str) -> str:
    """Greet someone by name."""
    return f"Hello, {name}!"


@server.tool()
def weather(city: str) -> dict[str, str]:
    """The forecast for a city."""
    return {"city": city, "forecast": f"sunny in {city}"}


@server.tool()
def fail(reason: str) -> str:
    """Always fails with ``reason``."""
    raise ValueError(reason)


def main(argv: list[str]) -> None:
    transport, port = argv[1], int(argv[2])
    if transport not in ("streamable-http", "sse"):
        raise SystemExit(f"unknown transport {transport!r}")
    server.settings.log_level = "WARNING"
    server.run(transport, host="127.0.0.1", port=port)  # type: ignore[call-overload]


if __name__ == "__main__":
    main(sys.argv)
