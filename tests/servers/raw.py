"""A loopback HTTP server that answers every request with one canned reply.

For tests that need exact control over status, headers and body bytes (the
protocol-detection table); provider formats live in ``modelwire.testing``.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RawServer:
    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self.body = b""
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                server.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers),
                     "body": self.rfile.read(length)}
                )
                self.send_response(server.status)
                for key, value in server.headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            do_GET = do_POST = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def reply(self, body: bytes, content_type: str | None = None, status: int = 200, **headers: str) -> None:
        self.status, self.body = status, body
        self.headers = {k.replace("_", "-"): v for k, v in headers.items()}
        if content_type is not None:
            self.headers["content-type"] = content_type


@contextmanager
def raw_server() -> Iterator[RawServer]:
    srv = RawServer()
    srv._thread.start()
    try:
        yield srv
    finally:
        srv._httpd.shutdown()
        srv._httpd.server_close()
        srv._thread.join()


@contextmanager
def closing_server() -> Iterator[str]:
    """A server that accepts each connection and closes it before any response."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        sock.close()
