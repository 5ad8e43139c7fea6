"""Offline stand-ins for the example: a replayed OpenAI and a small MCP server.

    python offline_backends.py -- modelwire run examples/agent_app --no-platform
        # starts both on free ports, runs the command with MODEL_BASE_URL and
        # CLOCK_MCP_URL pointing at them, stops them when it exits
    python offline_backends.py
        # starts both and prints those two variables; Ctrl-C stops them

Ports are free ones the system picks, so two copies (or a test run) never
collide; ``MODEL_PORT`` / ``MCP_PORT`` pin them instead. The model is
``modelwire.testing.ReplayServer`` (real OpenAI wire format, no network, no
key); the MCP server is the official ``mcp`` SDK's, served by uvicorn on a
socket bound before anything else starts, so the URLs work once printed.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import socket
import subprocess
import sys
import threading

import uvicorn
from mcp.server.mcpserver import MCPServer

from modelwire.testing import ReplayServer, Script

clock = MCPServer("clock")


@clock.tool()
def current_time(timezone: str = "UTC") -> str:
    """The current time, ISO 8601 (only UTC is known here)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    answer = Script(text="Right now it is the time the clock tool reported. Anything else?", usage=(30, 14))
    model = ReplayServer(port=int(os.environ.get("MODEL_PORT", "0")), default=answer).start()
    sock = _listen(int(os.environ.get("MCP_PORT", "0")))
    logging.getLogger("mcp").setLevel(logging.WARNING)
    config = uvicorn.Config(clock.streamable_http_app(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="mcp-clock", daemon=True)
    thread.start()
    urls = {
        "MODEL_BASE_URL": model.url_for("openai"),
        "CLOCK_MCP_URL": f"http://127.0.0.1:{sock.getsockname()[1]}/mcp",
    }
    try:
        if command:
            child = subprocess.Popen(command, env={**os.environ, **urls})
            signal.signal(signal.SIGTERM, lambda *_: child.terminate())  # pass a stop on
            try:
                return child.wait()
            except KeyboardInterrupt:  # the terminal interrupted the child too
                return child.wait()
        for name, url in urls.items():
            print(f"{name}={url}", flush=True)
        print("Ctrl-C stops the backends", file=sys.stderr, flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        model.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
