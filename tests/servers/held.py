"""An OpenAI-format loopback provider that holds each stream open after its first text.

For tests that need a request in flight for as long as they say: each
``POST .../chat/completions`` streams one text chunk (``first``), sets
``first_sent``, then waits until ``release`` is set (and then finishes the
answer with usage and ``[DONE]``) or until the client closes the connection,
which sets ``closed``. So a test can wait on events, never on time.
"""

from __future__ import annotations

import http.server
import json
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["HeldServer", "held_server"]


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {"id": "chatcmpl-held", "object": "chat.completion.chunk", "created": 0, "model": "held",
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        body = {**body, "choices": [], "usage": usage}
    data = b"data: " + json.dumps(body).encode() + b"\n\n"
    return b"%x\r\n%b\r\n" % (len(data), data)


class HeldServer:
    def __init__(self, first: str = "Hello", rest: str = " world") -> None:
        self.first, self.rest = first, rest
        self.first_sent = threading.Semaphore(0)  # released once per stream that sent its first text
        self.release = threading.Event()
        self.closed = threading.Event()
        self.finished = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.close_connection = True
                self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
                self.wfile.write(_chunk({"role": "assistant", "content": owner.first}))
                self.wfile.flush()
                owner.first_sent.release()
                sock: socket.socket = self.connection
                while not owner.release.is_set():
                    # the select timeout only paces this loop; the test waits on events
                    readable, _, _ = select.select([sock], [], [], 0.02)
                    if readable:
                        try:
                            gone = sock.recv(1, socket.MSG_PEEK) == b""
                        except OSError:
                            gone = True
                        if gone:
                            owner.closed.set()
                            return
                try:
                    self.wfile.write(_chunk({"content": owner.rest}))
                    self.wfile.write(_chunk({}, "stop"))
                    self.wfile.write(_chunk({}, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}))
                    data = b"data: [DONE]\n\n"
                    self.wfile.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(data), data))
                    self.wfile.flush()
                except OSError:
                    owner.closed.set()
                    return
                owner.finished.set()

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)


@contextmanager
def held_server(**kwargs: Any) -> Iterator[HeldServer]:
    srv = HeldServer(**kwargs)
    srv._thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv._httpd.shutdown()
        srv._httpd.server_close()
