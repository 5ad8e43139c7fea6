"""Offline stand-ins for the example: a replayed OpenAI and a small MCP server.

    python offline_backends.py     # model on :8765, MCP (streamable HTTP) on :8766

(``MODEL_PORT`` / ``MCP_PORT`` change the ports.)

The model is ``modelwire.testing.ReplayServer`` (real OpenAI wire format,
no network, no key); the MCP server is the official ``mcp`` SDK's.
"""

from __future__ import annotations

import datetime
import os
import sys

from mcp.server.mcpserver import MCPServer

from modelwire.testing import ReplayServer, Script

MODEL_PORT = int(os.environ.get("MODEL_PORT", "8765"))
MCP_PORT = int(os.environ.get("MCP_PORT", "8766"))

clock = MCPServer("clock")


@clock.tool()
def current_time(timezone: str = "UTC") -> str:
    """The current time, ISO 8601 (only UTC is known here)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def main() -> None:
    answer = Script(text="Right now it is the time the clock tool reported. Anything else?", usage=(30, 14))
    model = ReplayServer(port=MODEL_PORT, default=answer).start()
    print(f"model (OpenAI format) on {model.url_for('openai')}", file=sys.stderr)
    print(f"MCP clock on http://127.0.0.1:{MCP_PORT}/mcp", file=sys.stderr)
    clock.settings.log_level = "WARNING"
    try:
        clock.run("streamable-http", host="127.0.0.1", port=MCP_PORT)  # type: ignore[call-overload]
    finally:
        model.stop()


if __name__ == "__main__":
    main()
