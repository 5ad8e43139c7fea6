"""``python -m modelwire.testing serve``: the replay server for curl and manual tests.

Prints one line, ``<format> <base URL>``, once the server listens (a script
may read it to synchronise), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from ._script import DEFAULT_TEXT, FORMATS, Script
from ._server import ReplayServer


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m modelwire.testing", description="Serve scripted provider answers on loopback."
    )
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("serve", help="serve until interrupted; print the base URL first")
    p.add_argument("--format", choices=FORMATS, default="openai", help="the base URL to print (all formats are served)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument(
        "--text", action="append", metavar="TEXT",
        help="an answer (repeatable: one per request in order, the last one repeats)",
    )
    p.add_argument("--usage", nargs=2, type=int, metavar=("IN", "OUT"), help="usage to report with each answer")
    p.add_argument("--seed", type=int, default=0, help="seed for chunking and ids")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    texts = args.text or [DEFAULT_TEXT]
    usage = tuple(args.usage) if args.usage else None
    scripts = [Script(text=t, usage=usage) for t in texts]
    srv = ReplayServer(seed=args.seed, default=scripts[-1], host=args.host, port=args.port)
    try:
        srv.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    srv.push(*scripts[:-1])
    print(f"{args.format} {srv.url_for(args.format)}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
