"""Running a gateway for tests: uvicorn in a thread on a socket bound before it starts.

The listening socket is bound and listening before uvicorn runs, so a client
can connect at once (the kernel queues the connection): no polling for
readiness. ``gateway_env`` points every bundled provider at a ReplayServer.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelwire.gateway import Gateway, GatewayConfig, create_gateway_app, uvicorn_config

from core_helpers import provider_env

#: a safety net for joins, far above the expected time
TIMEOUT = 60.0


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextmanager
def running_gateway(
    srv: Any, config: GatewayConfig | None = None, *, manifests: list[str] | None = None,
    redis: str | None = None, env: dict[str, str] | None = None, http: str | None = None,
) -> Iterator[tuple[str, Gateway]]:
    """Serve a gateway over ``srv`` (a ReplayServer) in a thread; yields (base URL, gateway)."""
    import uvicorn

    sock = listening_socket()
    port = sock.getsockname()[1]
    gw = Gateway(config, manifests=manifests or ["builtin:*"], redis=redis,
                 env={**provider_env(srv), **(env or {})})
    options = uvicorn_config(create_gateway_app(gw), "127.0.0.1", port, config)
    if http is not None:  # another HTTP implementation than the gateway's own choice
        options["http"] = http
    server = uvicorn.Server(uvicorn.Config(**options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", gw
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
