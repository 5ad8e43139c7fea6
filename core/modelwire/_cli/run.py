"""``modelwire run``: serve an agent app (agentapp.yaml) over HTTP with uvicorn."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


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
    from ..agent import AgentRuntime, create_asgi_app, load_agentapp_config

    config = load_agentapp_config(config_path)  # a bad config: ModelError, printed by main()
    agent = AgentRuntime(config, project_path=project)
    app = create_asgi_app(agent, platform=not args.no_platform, drain_timeout=args.graceful_timeout)
    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on",
        timeout_graceful_shutdown=args.graceful_timeout, access_log=args.log_level == "debug",
    ))
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits with 3 when the lifespan startup failed
        return 1 if exc.code else 0
    return 0 if server.started else 1


def add_run_command(sub: Any) -> None:
    p = sub.add_parser("run", help="serve an agent app (agentapp.yaml) over HTTP: POST /invoke streams SSE")
    p.add_argument("project_path", nargs="?", default=".", metavar="PROJECT_PATH", help="the app's directory (default .)")
    p.add_argument("--config", default="agentapp.yaml", metavar="FILE", help="config file, relative to PROJECT_PATH")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug", "trace"])
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="S",
                   help="seconds in-flight streams may take to finish at shutdown (default 30)")
    p.add_argument("--no-platform", action="store_true", help="do not connect to the management platform")
    p.set_defaults(handler=_cmd_run)
