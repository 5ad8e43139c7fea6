"""``modelwire serve``: the gateway (OpenAI- and Anthropic-compatible endpoints over every manifest model)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._errors import InvalidRequestError
from .run import _is_loopback_host  # the same bind check as `modelwire run`


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..gateway import hash_key, load_gateway_config, serve

    if args.hash_key is not None:
        key = sys.stdin.readline().rstrip("\r\n") if args.hash_key == "-" else args.hash_key
        if not key:
            print("error: --hash-key: the key is empty", file=sys.stderr)
            return 2
        print(hash_key(key))
        return 0
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        print("error: `modelwire serve` needs the gateway extra: pip install 'modelwire[gateway]'", file=sys.stderr)
        return 1
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    config = load_gateway_config(args.config) if args.config else None  # a bad file: ModelError, printed by main()
    if (config is None or not config.keys) and not _is_loopback_host(args.host) and not args.insecure:
        raise InvalidRequestError(
            f"refusing to serve {args.host} without virtual keys: add keys to gateway.yaml (--config), "
            "bind a loopback address, or pass --insecure",
            code="INSECURE_BIND",
        )
    redis = args.redis or (config.redis if config is not None else None)
    if args.workers > 1 and not redis and config is not None and any(
        k.rpm is not None or k.tpm is not None or k.concurrency is not None or k.budget is not None
        for k in config.keys.values()
    ):
        print("warning: without --redis each worker keeps its own counters: limits and budgets apply per worker",
              file=sys.stderr)
    return serve(args.config, manifests=args.manifest or None, host=args.host, port=args.port,
                 redis=redis, workers=args.workers)


def add_serve_command(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the gateway: OpenAI/Anthropic-compatible endpoints over every manifest model")
    p.add_argument("--config", "-c", metavar="FILE", help="gateway.yaml: manifests, virtual keys, limits, budgets")
    p.add_argument("--manifest", "-m", action="append", metavar="SOURCE",
                   help="manifest source (repeatable; default: the config's, else every built-in)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4000, help="port (default 4000)")
    p.add_argument("--redis", metavar="URL", help="share every counter (limits, budgets, spend) through this Redis")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without virtual keys")
    p.add_argument("--hash-key", metavar="KEY", help="print the hash to store in gateway.yaml for KEY (- reads stdin) and exit")
    p.set_defaults(handler=_cmd_serve)
