"""Running the gateway with uvicorn: one process, or ``--workers N`` processes on one port.

Worker processes are started by uvicorn from an import string, so the
settings travel in one environment variable (:data:`SETTINGS_ENV`, JSON) and
:func:`app_from_env` builds each worker's app. Each worker owns its runtime
and, without Redis, its own counters: limits are exact across workers and
replicas only with ``--redis``.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["SETTINGS_ENV", "app_from_env", "serve", "uvicorn_config"]

SETTINGS_ENV = "MODELWIRE_GATEWAY_SETTINGS"


def _build(config_path: str | None, manifests: list[str] | None, redis: str | None) -> Any:
    from ._app import Gateway, create_gateway_app
    from ._config import GatewayConfig, load_gateway_config

    config = load_gateway_config(config_path) if config_path else GatewayConfig()
    return create_gateway_app(Gateway(config, manifests=manifests, redis=redis))


def app_from_env() -> Any:
    """The app of one worker process, from :data:`SETTINGS_ENV` (``uvicorn --factory``)."""
    settings = json.loads(os.environ[SETTINGS_ENV])
    return _build(settings.get("config"), settings.get("manifests"), settings.get("redis"))


def uvicorn_config(app: Any, host: str, port: int, config: Any = None, **kwargs: Any) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments: the server section's connection limits, quiet access log."""
    from ._config import GatewayServer

    srv = config.server if config is not None else GatewayServer()
    limit = srv.limit_concurrency
    return {
        "app": app, "host": host, "port": port, "log_level": "warning", "access_log": False,
        "http": _http_protocol(),
        "limit_concurrency": limit + 1 if limit is not None else None,
        "timeout_keep_alive": srv.timeout_keep_alive,
        "h11_max_incomplete_event_size": srv.h11_max_incomplete_event_size,
        "lifespan": "on", **kwargs,
    }


def _http_protocol() -> Any:
    """httptools (faster) with the head limit added, when installed; else h11, which has its own."""
    try:
        from ._httptools import BoundedHttpToolsProtocol
    except ImportError:  # httptools is in the gateway extra; without it uvicorn falls back too
        return "h11"
    return BoundedHttpToolsProtocol


def serve(
    config_path: str | None = None, *, manifests: list[str] | None = None, host: str = "127.0.0.1",
    port: int = 4000, redis: str | None = None, workers: int = 1,
) -> int:
    """Serve until interrupted (the ``modelwire serve`` command); the exit status."""
    import uvicorn

    from ._config import load_gateway_config

    config = load_gateway_config(config_path) if config_path else None  # a bad file fails here, once
    _quiet_reraised_signals()
    try:
        if workers > 1:
            os.environ[SETTINGS_ENV] = json.dumps({"config": config_path, "manifests": manifests, "redis": redis})
            options = uvicorn_config("modelwire.gateway._serve:app_from_env", host, port, config,
                                     factory=True, workers=workers)
            uvicorn.run(**options)
            return 0
        app = _build(config_path, manifests, redis)
        server = uvicorn.Server(uvicorn.Config(**uvicorn_config(app, host, port, config)))
        server.run()
    except SystemExit as exc:  # uvicorn exits with 3 when the lifespan startup failed, 1 when it cannot bind
        return 1 if exc.code else 0
    return 0 if server.started else 1


def _quiet_reraised_signals() -> None:
    """uvicorn re-raises SIGINT/SIGTERM once it has shut down: let that end the process with 0."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)
