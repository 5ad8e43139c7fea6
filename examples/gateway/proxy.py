"""A small round-robin TCP load balancer for the gateway example (standard library only).

    python proxy.py --port 4000 127.0.0.1:4001 127.0.0.1:4002

Each new client connection goes to the next backend in turn and is piped
both ways until either side closes. It prints ``listening on HOST:PORT``
once it accepts connections (scripts and tests wait for that line). Use a
real load balancer (nginx, HAProxy, a cloud LB) in production.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main(host: str, port: int, backends: list[tuple[str, int]]) -> None:
    turn = itertools.cycle(backends)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        backend = next(turn)
        try:
            up_r, up_w = await asyncio.open_connection(*backend)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))

    server = await asyncio.start_server(handle, host, port)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def _backend(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4000, help="0 picks a free port (printed)")
    ap.add_argument("backends", nargs="+", metavar="HOST:PORT")
    args = ap.parse_args()
    try:
        asyncio.run(main(args.host, args.port, [_backend(b) for b in args.backends]))
    except KeyboardInterrupt:
        sys.exit(0)
