"""The loopback server: a threaded HTTP/1.1 server replaying scripts.

It runs in background threads, so the caller's concurrency model does not
matter: asyncio, trio and blocking clients all talk to it over a real socket.
One thread accepts; each connection gets a daemon thread (keep-alive, so a
pooled client reuses it). Streams go out with ``Transfer-Encoding: chunked``,
one HTTP chunk per random-size piece: a client sees every piece as its own
read even when TCP coalesces them, so without a delay the pieces are written
in one batch and a long stream costs the server almost nothing (it shares
the GIL with the client a benchmark is measuring).
"""

from __future__ import annotations

import http
import http.server
import json
import random
import socket
import socketserver
import sys
import threading
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl

import attrs

from ._formats import Rendered, Route, error_body, render_embedding, render_script, resolve
from ._script import FORMATS, Item, Reply, Script, StreamError

__all__ = ["RecordedRequest", "ReplayServer"]

# Where the official SDKs put a provider's API under their base URL: the
# value url_for() returns is what `base_url=` of that SDK (and of a
# modelwire manifest for that provider) should be.
_BASE_PATHS = {
    "openai": "/openai/v1",
    "anthropic": "/anthropic",
    "cohere": "/cohere",
    "mistral": "/mistral/v1",
    "gemini": "/gemini",
    "ollama": "/ollama",
    "bedrock": "/bedrock",
    "vertex": "/vertex",
}


@attrs.frozen(eq=False)
class RecordedRequest:
    """One request as the server received it, for assertions in tests."""

    method: str
    #: The path without the query string (``/openai/v1/chat/completions``).
    path: str
    #: Query parameters (the last value wins for repeated names).
    query: dict[str, str]
    #: Header names in lower case (the last value wins).
    headers: dict[str, str]
    body: bytes
    #: The body parsed as JSON, or None if it is empty or not JSON.
    json: Any
    #: The format the path selected (``openai``...), or None if none matched.
    fmt: str | None


class ReplayServer:
    """A loopback HTTP server that answers like OpenAI, Anthropic, Gemini and Ollama.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`).
    Each request takes the next pushed :class:`Script` or :class:`Reply`;
    with nothing queued, ``default`` answers (a short text reply unless
    set). ``seed`` makes every random choice (write sizes, splits, ids)
    reproducible: response ``n`` of a server always gets the same bytes.

    The first path segment picks the format; :meth:`url_for` gives the base
    URL to configure::

        with ReplayServer(seed=0) as srv:
            srv.push(Script(text="Hi", usage=(3, 1)))
            client = openai.OpenAI(base_url=srv.url_for("openai"), api_key="x")
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        default: Script | Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.seed = seed
        #: Answers requests while the queue is empty; may be reassigned.
        self.default: Script | Reply = default if default is not None else Script()
        self._address = (host, port)
        self._lock = threading.Lock()
        self._queue: deque[Item] = deque()
        self._requests: list[RecordedRequest] = []
        self._count = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> ReplayServer:
        """Bind a free port on loopback and serve in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("ReplayServer is already running")
        self._stopping.clear()
        httpd = _HTTPServer(self._address, self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"modelwire-replay:{httpd.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and join the threads. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        httpd.join_connections(timeout=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the server must be running)."""
        if self._httpd is None:
            raise RuntimeError("ReplayServer is not running; call start() or use `with`")
        return self._httpd.server_port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._address[0]}:{self.port}"

    def url_for(self, fmt: str) -> str:
        """The base URL that an SDK or manifest for format ``fmt`` should use.

        The same base URL the official SDK uses for the real host:
        ``.../openai/v1`` (like ``https://api.openai.com/v1``),
        ``.../anthropic`` (``https://api.anthropic.com``), ``.../gemini``
        (``https://generativelanguage.googleapis.com``), ``.../ollama``
        (``http://localhost:11434``), ``.../bedrock``
        (``https://bedrock-runtime.REGION.amazonaws.com``) and ``.../vertex``
        (``https://LOCATION-aiplatform.googleapis.com``).
        """
        if fmt not in _BASE_PATHS:
            raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        return self.base_url + _BASE_PATHS[fmt]

    # --- script queue and records ---------------------------------------------

    def push(self, *items: Script | Reply) -> None:
        """Queue answers; each request takes the next one, in order.

        A :class:`Reply` answers whatever path comes; a :class:`Script` waits
        for a path the server knows (others get 404 and leave it queued).
        """
        for item in items:
            if not isinstance(item, (Script, Reply)):
                raise TypeError(f"push() takes Script or Reply, not {type(item).__name__}")
        with self._lock:
            self._queue.extend(items)

    @property
    def pending(self) -> int:
        """How many pushed answers are still queued."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget queued answers and recorded requests; restart the response count."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._count = 0

    # --- used by the handler --------------------------------------------------

    def _take(self, route: Route | None, record: RecordedRequest) -> tuple[Item | None, int]:
        with self._lock:
            self._requests.append(record)
            index = self._count
            self._count += 1
            if self._queue and (route is not None or isinstance(self._queue[0], Reply)):
                return self._queue.popleft(), index
            return (self.default if route is not None else None), index


class _HTTPServer(http.server.HTTPServer):
    # 200 clients connecting at once must not overflow the accept backlog
    # (the kernel would drop SYNs and the client would retry after 1 s).
    request_queue_size = 1024
    # SO_REUSEADDR: ReplayServer(port=N) restarts at once on the port it just
    # left (connections in TIME_WAIT). Not on Windows, where it lets two
    # servers bind one port.
    allow_reuse_address = sys.platform != "win32"

    def __init__(self, address: tuple[str, int], owner: ReplayServer) -> None:
        self.owner = owner
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup
        # that can take seconds on a badly configured machine.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True
        )
        with self._conn_lock:
            self._connections.add(request)
            self._threads.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._conn_lock:
                self._connections.discard(request)
                self._threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return  # the client went away: normal for a test server
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Unblock every connection thread (idle keep-alive reads included)."""
        with self._conn_lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join_connections(self, timeout: float) -> None:
        with self._conn_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "modelwire-replay"
    sys_version = ""
    # Small writes must leave at once: without this, Nagle plus delayed ACKs
    # stall keep-alive exchanges for 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read srv.requests, not a log

    def _handle(self) -> None:
        owner = cast(_HTTPServer, self.server).owner
        path, _, query_string = self.path.partition("?")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        body = self._read_body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        route = resolve(path)
        record = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            json=parsed,
            fmt=route.fmt if route is not None else None,
        )
        item, index = owner._take(route, record)
        if item is None:
            message = f"modelwire.testing has no route for {self.command} {path}"
            rendered = error_body(None, 404, StreamError("not_found_error", message))
            self._send(rendered, Reply(), index, owner)
            return
        self._send(self._render(item, route, parsed, query, owner), item, index, owner)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _render(
        self,
        item: Item,
        route: Route | None,
        request: Any,
        query: dict[str, str],
        owner: ReplayServer,
    ) -> Rendered:
        if isinstance(item, Reply):
            return Rendered(item.status, item.content_type or "", item.body, item.stream)
        assert route is not None
        req: dict[str, Any] = request if isinstance(request, dict) else {}
        model = route.model or str(req.get("model") or "replay-model")
        if route.op == "embed":
            if item.status >= 400:
                return error_body(route.fmt, item.status, item.error)
            return render_embedding(route, req, model, item.status)
        if route.fmt == "gemini":
            stream = route.method == "streamGenerateContent"
        elif route.fmt == "ollama":
            stream = req.get("stream", True) is not False
        elif route.fmt == "bedrock":
            stream = route.method == "converse-stream"
        else:
            stream = req.get("stream") is True
        options = req.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        seed = item.seed if item.seed is not None else owner.seed
        return render_script(
            route, item, model, stream, include_usage, query.get("alt") == "sse", seed
        )

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, rendered: Rendered, knobs: Item, index: int, owner: ReplayServer) -> None:
        body = rendered.body
        limit = knobs.disconnect_after
        if limit is not None:
            self.close_connection = True
        content_type = knobs.content_type if isinstance(knobs, Script) else None
        content_type = content_type or rendered.content_type
        lines = [
            f"HTTP/1.1 {rendered.status} {_phrase(rendered.status)}",
            "server: modelwire-replay",
        ]
        if content_type:
            lines.append(f"content-type: {content_type}")
        if rendered.stream:
            lines.append("transfer-encoding: chunked")
        else:
            lines.append(f"content-length: {len(body)}")
        lines.append(f"x-request-id: req_replay_{index}")
        lines += [f"{name}: {value}" for name, value in (*rendered.headers, *knobs.headers)]
        if self.close_connection:
            lines.append("connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        rng = random.Random(f"modelwire.testing.chunks:{owner.seed}:{index}")
        cuts = _cuts(rendered, knobs.chunk_size, rng)
        try:
            if knobs.delay <= 0 and limit is None:
                self.request.sendall(_batch(head, body, cuts, rendered.stream))
                return
            self.request.sendall(head)
            start = sent = 0
            for n, end in enumerate(cuts):
                if limit is not None and end > limit:
                    end = max(start, limit)
                if end > start:
                    piece = body[start:end]
                    self.request.sendall(_chunk(piece) if rendered.stream else piece)
                    sent = end
                start = end
                if limit is not None and sent >= limit:
                    return
                if knobs.delay > 0 and n + 1 < len(cuts) and owner._stopping.wait(knobs.delay):
                    self.close_connection = True
                    return
            if limit is None and rendered.stream:
                self.request.sendall(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Scripted"


def _cuts(rendered: Rendered, chunk_size: tuple[int, int] | None, rng: random.Random) -> list[int]:
    """End offsets of the write pieces."""
    total = len(rendered.body)
    if chunk_size is None:
        return list(rendered.frames) if rendered.frames else ([total] if total else [])
    low, high = chunk_size
    cuts: list[int] = []
    pos = 0
    randint = rng.randint
    while pos < total:
        pos = min(total, pos + (low if low == high else randint(low, high)))
        cuts.append(pos)
    return cuts


def _chunk(piece: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(piece), piece)


def _batch(head: bytes, body: bytes, cuts: Iterable[int], chunked: bool) -> bytes:
    if not chunked:
        return head + body
    out = bytearray(head)
    view = memoryview(body)
    start = 0
    for end in cuts:
        out += b"%x\r\n" % (end - start)
        out += view[start:end]
        out += b"\r\n"
        start = end
    out += b"0\r\n\r\n"
    return bytes(out)
