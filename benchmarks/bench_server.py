"""Serve benchmark streams from ``modelwire.testing.ReplayServer`` in its own process.

Run as ``python bench_server.py NAME=PIECES [NAME=PIECES ...]``: one server
per name, each answering every request with a default script of ``PIECES``
text deltas (the benchmark corpus text), written in large pieces so the
server is never the bottleneck. It prints one JSON line ``{NAME: base_url}``
and serves until its standard input closes.

A separate process keeps the server's CPU out of the client's
``time.process_time()`` (threads of one process share that clock).
"""

from __future__ import annotations

import json
import sys

from bench_corpora import text_pieces

from modelwire.testing import ReplayServer, Script

#: Bytes per write: large, so one stream costs the server a few syscalls.
CHUNK_SIZE = (1024, 16384)


def main(argv: list[str]) -> int:
    servers: dict[str, ReplayServer] = {}
    try:
        for spec in argv:
            name, _, pieces = spec.partition("=")
            count = int(pieces)
            script = Script(text=text_pieces(count), usage=(12, count), chunk_size=CHUNK_SIZE)
            servers[name] = ReplayServer(seed=0, default=script).start()
        print(json.dumps({name: srv.base_url for name, srv in servers.items()}), flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin (or dies)
    finally:
        for srv in servers.values():
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
