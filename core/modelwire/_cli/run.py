"""``modelwire run``: serve an agent app (agentapp.yaml) over HTTP with uvicorn."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import attrs

from .._errors import InvalidRequestError


class InsecureBindError(InvalidRequestError):
    """``modelwire run`` would serve a non-loopback address without API tokens."""

    default_code = "INSECURE_BIND"


def _is_loopback_host(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _quiet_reraised_signals() -> None:
    """uvicorn re-raises SIGINT/SIGTERM once it has shut down: let that end the process with 0."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        print("error: `modelwire run` needs the agent extra: pip install 'modelwire[agent]'", file=sys.stderr)
        return 1
    project = Path(args.project_path).resolve()
    config_path = Path(args.config)
    if not config_path.is_absolute():
        config_path = project / config_path
    from ..agent import (
        AgentRuntime,
        create_asgi_app,
        load_agentapp_config,
        resolve_api_keys,
        uvicorn_options,
    )

    config = load_agentapp_config(config_path)  # a bad config: ModelError, printed by main()
    keys = resolve_api_keys(config)
    if not keys and not _is_loopback_host(args.host) and not args.insecure:
        raise InsecureBindError(
            f"refusing to serve {args.host} without API tokens: set MODELWIRE_API_KEYS (or server.api_keys_env "
            "in agentapp.yaml), bind a loopback address, or pass --insecure"
        )
    overrides: dict[str, Any] = {}
    if args.limit_concurrency is not None:
        overrides["limit_concurrency"] = args.limit_concurrency or None
    if args.timeout_keep_alive is not None:
        overrides["timeout_keep_alive"] = args.timeout_keep_alive
    if args.h11_max_incomplete_event_size is not None:
        overrides["h11_max_incomplete_event_size"] = args.h11_max_incomplete_event_size
    options = uvicorn_options(attrs.evolve(config.server, **overrides))
    agent = AgentRuntime(config, project_path=project)
    app = create_asgi_app(agent, platform=not args.no_platform, drain_timeout=args.graceful_timeout, api_keys=keys)
    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on",
        timeout_graceful_shutdown=args.graceful_timeout, access_log=args.log_level == "debug",
        **options,
    ))
    _quiet_reraised_signals()
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits with 3 when the lifespan startup failed, 1 when it cannot bind
        return 1 if exc.code else 0
    return 0 if server.started else 1


def add_run_command(sub: Any) -> None:
    p = sub.add_parser("run", help="serve an agent app (agentapp.yaml) over HTTP: POST /invoke streams SSE")
    p.add_argument("project_path", nargs="?", default=".", metavar="PROJECT_PATH", help="the app's directory (default .)")
    p.add_argument("--config", default="agentapp.yaml", metavar="FILE", help="config file, relative to PROJECT_PATH")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug", "trace"],
                   help="uvicorn's log level (debug also logs each request)")
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="S",
                   help="seconds in-flight streams may take to finish at shutdown (default 30)")
    p.add_argument("--no-platform", action="store_true", help="do not connect to the management platform")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without API tokens (MODELWIRE_API_KEYS)")
    p.add_argument("--limit-concurrency", type=int, default=None, metavar="N",
                   help="connections + requests at most, more get 503 (default: server.limit_concurrency, 1000; 0: none)")
    p.add_argument("--timeout-keep-alive", type=float, default=None, metavar="S",
                   help="seconds an idle keep-alive connection is kept (default: server.timeout_keep_alive, 5)")
    p.add_argument("--h11-max-incomplete-event-size", type=int, default=None, metavar="BYTES",
                   help="largest request line + headers (default: server.h11_max_incomplete_event_size, 16384)")
    p.set_defaults(handler=_cmd_run)
