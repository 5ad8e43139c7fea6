"""Serving an :class:`AgentRuntime` over HTTP: a Starlette app, run by uvicorn.

``POST /invoke`` streams the app's messages as server-sent events, one
``data: {msg}`` event each, and always ends with
``data: {"metadata": {"done": true}}``; an error mid-stream is sent as an
``event: error`` first. ``GET /health`` and ``GET /metrics`` (Prometheus)
sit beside it. A client that goes away cancels the app's work; uvicorn's
graceful shutdown lets streams in flight finish up to ``graceful_timeout``.

Starlette and uvicorn are imported here only (``modelwire[agent]``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import ModelError
from .._frames import json_depth_ok
from ._app import AgentRuntime
from ._config import AgentAppConfig, ServerSettings
from ._platform import PlatformClient
from ._sessions import Msg

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["create_asgi_app", "parse_invoke_body", "resolve_api_keys", "uvicorn_options"]

log = logging.getLogger("modelwire.server")

DONE = b'data: {"metadata": {"done": true}}\n\n'
_BODY_FIELDS = ("message", "session_id", "metadata")
_MSG_FIELDS = ("role", "content", "name", "metadata")
_SESSION_ID = re.compile(r"[A-Za-z0-9._:-]+")
API_KEYS_ENV = "MODELWIRE_API_KEYS"


def _split_keys(value: str | None) -> list[str]:
    return [k.strip() for k in (value or "").split(",") if k.strip()]


def resolve_api_keys(config: AgentAppConfig | None, env: Mapping[str, str] | None = None) -> list[str]:
    """Bearer tokens: ``MODELWIRE_API_KEYS`` and the variable ``server.api_keys_env`` names (comma-separated)."""
    env = os.environ if env is None else env
    keys = _split_keys(env.get(API_KEYS_ENV))
    name = config.server.api_keys_env if config is not None else None
    if name:
        keys.extend(k for k in _split_keys(env.get(name)) if k not in keys)
    return keys


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments for the server section's connection limits.

    ``limit_concurrency`` N serves N concurrent connections (or requests) and
    answers the N+1th 503: uvicorn counts the new connection itself, hence N + 1.
    The HTTP implementation is pinned to h11: uvicorn picks httptools when it
    is installed (``uvicorn[standard]``, the gateway extra), and httptools
    ignores ``h11_max_incomplete_event_size``, so the request-head limit
    would silently go away.
    """
    limit = settings.limit_concurrency
    return {
        "http": "h11",
        "limit_concurrency": limit + 1 if limit is not None else None,
        "timeout_keep_alive": settings.timeout_keep_alive,
        "h11_max_incomplete_event_size": settings.h11_max_incomplete_event_size,
    }



class BodyError(ValueError):
    """A bad /invoke body; ``field`` is the path of the bad field."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def parse_invoke_body(
    body: Any, settings: ServerSettings | None = None
) -> tuple[Msg, str | None, dict[str, Any]]:
    """Validate an /invoke body -> (message, session_id, metadata); BodyError names the field.

    ``{"message": "text" | {"role", "content", "name", "metadata"},
    "session_id": "...", "metadata": {...}}``. The role must be one of
    ``settings.client_roles`` (default: ``user`` only); the session id at
    most ``settings.max_session_id_length`` characters of ``A-Z a-z 0-9 . _ : -``.
    """
    settings = settings or ServerSettings()
    if not isinstance(body, dict):
        raise BodyError(None, "the body must be a JSON object")
    extra = sorted(set(body) - set(_BODY_FIELDS))
    if extra:
        raise BodyError(extra[0], f"unknown field; allowed: {', '.join(_BODY_FIELDS)}")
    if "message" not in body:
        raise BodyError("message", "required field is missing")
    raw = body["message"]
    if isinstance(raw, str):
        msg = Msg(raw, role="user")
    elif isinstance(raw, dict):
        extra = sorted(set(raw) - set(_MSG_FIELDS))
        if extra:
            raise BodyError(f"message.{extra[0]}", f"unknown field; allowed: {', '.join(_MSG_FIELDS)}")
        if "content" not in raw:
            raise BodyError("message.content", "required field is missing")
        content = raw["content"]
        if not isinstance(content, (str, list)):
            raise BodyError("message.content", "expected a string or a list of content parts")
        role = raw.get("role", "user")
        if not isinstance(role, str):
            raise BodyError("message.role", "expected a string")
        if role not in settings.client_roles:
            raise BodyError(
                "message.role", f"role {role[:32]!r} is not allowed from clients; allowed: {', '.join(settings.client_roles)}"
            )
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise BodyError("message.name", "expected a string")
        meta = raw.get("metadata", {})
        if not isinstance(meta, dict):
            raise BodyError("message.metadata", "expected an object")
        msg = Msg(content, role=role, name=name, metadata=meta)
    else:
        raise BodyError("message", "expected a string or an object")
    session_id = body.get("session_id")
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise BodyError("session_id", "expected a non-empty string")
    if session_id is not None and (
        len(session_id) > settings.max_session_id_length or not _SESSION_ID.fullmatch(session_id)
    ):
        raise BodyError(
            "session_id",
            f"expected at most {settings.max_session_id_length} characters of A-Z a-z 0-9 . _ : -",
        )
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BodyError("metadata", "expected an object")
    return msg, session_id, metadata


def _event(data: Mapping[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()


def _error_payload(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ModelError):
        return {"error": {"kind": exc.kind, "code": exc.code, "message": exc.message}}
    return {"error": {"kind": "internal", "code": "APP_ERROR", "message": f"{type(exc).__name__}: {exc}"}}


class _Stats:
    """Server counters (exposed on /metrics, and to the platform client)."""

    def __init__(self, registry: Any) -> None:
        self.total_requests = 0
        self.in_flight = 0
        self.counters: Any = None
        if registry is not None:
            import prometheus_client as prom

            self.counters = {
                "requests": prom.Counter("modelwire_agent_requests", "Invoke requests.", ["outcome"], registry=registry),
                "in_flight": prom.Gauge("modelwire_agent_streams_in_flight", "Invoke streams in flight.", registry=registry),
                "duration": prom.Histogram(
                    "modelwire_agent_invoke_duration_seconds", "Invoke request to done marker.", registry=registry,
                ),
            }

    def outcome(self, name: str) -> None:
        if self.counters is not None:
            self.counters["requests"].labels(name).inc()


class _SSEResponse:
    """Streams SSE from the app and cancels it when the client disconnects."""

    def __init__(
        self, serving: _Serving, msg: Msg, session_id: str | None, metadata: dict[str, Any], owner: str | None = None,
    ) -> None:
        self.serving, self.msg, self.session_id, self.metadata = serving, msg, session_id, metadata
        self.owner = owner
        #: the runtime at the time of the request: a config swap lets it finish on this one
        self.agent = serving.agent

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        serving, stats = self.serving, self.serving.stats
        key = id(self.agent)
        serving.inflight[key] = serving.inflight.get(key, 0) + 1
        stats.total_requests += 1
        stats.in_flight += 1
        if stats.counters is not None:
            stats.counters["in_flight"].inc()
        started = anyio.current_time()
        outcome = "disconnected"
        try:
            await send({
                "type": "http.response.start", "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            })
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch)
                outcome = await self._stream(send)
                tg.cancel_scope.cancel()
        except OSError:  # the client went away while we wrote
            outcome = "disconnected"
        finally:
            serving.inflight[key] -= 1
            stats.in_flight -= 1
            stats.outcome(outcome)
            if stats.counters is not None:
                stats.counters["in_flight"].dec()
                stats.counters["duration"].observe(anyio.current_time() - started)

    async def _stream(self, send: Any) -> str:
        outcome = "ok"
        try:
            async with aclosing(self.agent.invoke(self.msg, self.session_id, self.metadata, owner=self.owner)) as out:  # type: ignore[type-var]
                async for m in out:
                    await send({"type": "http.response.body", "body": _event(m.to_dict()), "more_body": True})
        except Exception as exc:
            outcome = "error"
            log.warning("modelwire: /invoke failed: %s", exc, exc_info=not isinstance(exc, ModelError))
            await send({"type": "http.response.body", "body": _event(_error_payload(exc), "error"), "more_body": True})
        await send({"type": "http.response.body", "body": DONE, "more_body": False})
        return outcome


class _Serving:
    """What the HTTP app serves: the current agent runtime (swappable), counters, runtime owners."""

    def __init__(self, agent: AgentRuntime) -> None:
        self.agent = agent
        self.stats = _Stats(None)
        self.inflight: dict[int, int] = {}
        self.tg: Any = None
        self._stops: dict[int, anyio.Event] = {}
        self._done: dict[int, anyio.Event] = {}

    def bind_metrics(self) -> None:
        totals = self.stats.total_requests
        if self.stats.counters is None and self.agent.started and self.agent.metrics is not None:
            self.stats = _Stats(self.agent.metrics.registry)
            self.stats.total_requests = totals

    async def start(self, agent: AgentRuntime) -> None:
        """Start ``agent`` in a task of its own (MCP clients must close in the task that opened them)."""
        ready, stop, done = anyio.Event(), anyio.Event(), anyio.Event()
        failed: list[BaseException] = []

        async def own() -> None:
            # start() and aclose() run in this task at the same cancel-scope depth: MCP clients
            # enter task groups in start() that must be left in the same task and scope (a
            # shielded scope around aclose() alone would exit them out of order). The whole
            # life is shielded; only ``stop`` ends it, and the lifespan always sets it.
            try:
                with anyio.CancelScope(shield=True):
                    try:
                        await agent.start()
                    except BaseException as exc:
                        failed.append(exc)
                        return
                    finally:
                        ready.set()
                    try:
                        await stop.wait()
                    finally:
                        await agent.aclose()
            finally:
                done.set()

        self.tg.start_soon(own)
        await ready.wait()
        if failed:
            raise failed[0]
        self._stops[id(agent)], self._done[id(agent)] = stop, done

    def release(self) -> None:
        """Tell every runtime task to close its runtime (they are shielded until told)."""
        for stop in self._stops.values():
            stop.set()

    async def stop(self, agent: AgentRuntime, drain: float = 0.0) -> None:
        """Let requests on ``agent`` finish (up to ``drain`` seconds), then close it."""
        key = id(agent)
        with anyio.move_on_after(drain):
            while self.inflight.get(key, 0) > 0:
                await anyio.sleep(0.02)
        stop, done = self._stops.pop(key, None), self._done.pop(key, None)
        if stop is not None and done is not None:
            stop.set()
            await done.wait()
        self.inflight.pop(key, None)

    async def swap(self, new: AgentRuntime, drain: float) -> None:
        """Graceful restart: start ``new``, route new requests to it, drain and close the old one."""
        old = self.agent
        await self.start(new)
        self.agent = new
        await self.stop(old, drain)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_asgi_app(
    agent: AgentRuntime, *, manage_lifecycle: bool = True, platform: bool = True, drain_timeout: float = 30.0,
    api_keys: Sequence[str] | None = None,
) -> Any:
    """The ASGI app serving ``agent``: POST /invoke, GET /health, GET /metrics.

    With ``manage_lifecycle`` the ASGI lifespan starts the agent runtime and
    closes it (in a task of its own, as MCP clients need); a startup failure
    is reported to the server as ``lifespan.startup.failed`` with the step's
    message. With ``platform`` and a ``platform:`` section in the config, a
    :class:`PlatformClient` sends heartbeats and applies configuration
    updates by a graceful restart (requests in flight finish on the old
    runtime, up to ``drain_timeout`` seconds).

    ``api_keys``: the bearer tokens /invoke and /metrics accept (None: read
    them with :func:`resolve_api_keys` once the config is loaded; empty: no
    authentication). /health is always open. A session is tied to the token
    that created it.
    """
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    serving = _Serving(agent)
    keys: dict[str, list[bytes] | None] = {"keys": [k.encode() for k in api_keys] if api_keys is not None else None}

    def settings() -> ServerSettings:
        config = serving.agent.config
        return config.server if config is not None else ServerSettings()

    def error(status: int, code: str, message: str, field: str | None = None, **headers: str) -> Response:
        body: dict[str, Any] = {"code": code, "message": message}
        if status == 400:
            body = {"code": code, "field": field, "message": message}
        return JSONResponse({"error": body}, status, headers=headers or None)

    def authorize(request: Request) -> tuple[bool, str | None]:
        """(allowed, owner): owner is the token's hash (None when authentication is off)."""
        tokens = keys["keys"]
        if tokens is None:
            tokens = [k.encode() for k in resolve_api_keys(serving.agent.config)]
            if serving.agent.config is not None:
                keys["keys"] = tokens
        if not tokens:
            return True, None
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False, None
        candidate = given.strip().encode()
        ok = False
        for token in tokens:  # every token compared, in constant time each
            ok |= hmac.compare_digest(candidate, token)
        return ok, (_token_hash(given.strip()) if ok else None)

    def unauthorized(request: Request) -> Response:
        given = "authorization" in request.headers
        challenge = 'Bearer error="invalid_token"' if given else "Bearer"
        return JSONResponse(
            {"error": {"code": "UNAUTHORIZED", "message": "a valid bearer token is required (Authorization: Bearer <token>)"}},
            401, headers={"www-authenticate": challenge},
        )

    async def read_body(request: Request, limit: int) -> bytes | None:
        """The body, or None once it exceeds ``limit`` bytes (the rest is not read)."""
        length = request.headers.get("content-length")
        if length is not None:
            try:
                if int(length) > limit:
                    return None
            except ValueError:
                return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def invoke(request: Request) -> Response:
        ok, owner = authorize(request)
        if not ok:
            return unauthorized(request)
        if not serving.agent.started:
            return JSONResponse({"error": {"code": "NOT_READY", "message": "the agent is not started"}}, 503)
        limits = settings()
        raw = await read_body(request, limits.max_body_bytes)
        if raw is None:
            return JSONResponse(
                {"error": {"code": "BODY_TOO_LARGE", "message": f"the body exceeds {limits.max_body_bytes} bytes"}},
                413, headers={"connection": "close"},
            )
        try:
            body = json.loads(raw)
        except RecursionError:
            return error(400, "BAD_JSON", f"the body nests deeper than {limits.max_json_depth} levels")
        except ValueError as exc:
            return error(400, "BAD_JSON", f"the body is not JSON: {exc}")
        if not json_depth_ok(body, limits.max_json_depth):
            return error(400, "BAD_JSON", f"the body nests deeper than {limits.max_json_depth} levels")
        try:
            msg, session_id, metadata = parse_invoke_body(body, limits)
        except BodyError as exc:
            return error(400, "BAD_BODY", str(exc), exc.field)
        if session_id is not None and not await serving.agent.session_owner_ok(session_id, owner):
            return error(404, "SESSION_NOT_FOUND", "no such session")
        serving.bind_metrics()
        return _SSEResponse(serving, msg, session_id, metadata, owner)  # type: ignore[return-value]

    async def health(request: Request) -> Response:
        current = serving.agent
        if not current.started:
            return JSONResponse({"status": "starting"}, 503)
        return JSONResponse({
            "status": "ok",
            "app": current.config.name if current.config else None,
            "models": current.models.keys(),
            "tools": current.tools.names(),
            "in_flight": serving.stats.in_flight,
        })

    async def metrics(request: Request) -> Response:
        if not authorize(request)[0]:
            return unauthorized(request)
        current = serving.agent
        m = current.metrics if current.started else None
        if m is None:
            return PlainTextResponse("metrics need prometheus-client (pip install modelwire[agent])\n", 501)
        serving.bind_metrics()
        return PlainTextResponse(m.render().decode(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app: Starlette = Starlette(routes=[
        Route("/invoke", invoke, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ])
    holder: dict[str, Any] = {"platform": None}

    async def lifespan(receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with anyio.create_task_group() as tg:
            serving.tg = tg
            try:
                if manage_lifecycle:
                    try:
                        await serving.start(serving.agent)
                    except ModelError as exc:
                        await send({"type": "lifespan.startup.failed", "message": exc.message})
                        return
                serving.bind_metrics()
                settings = serving.agent.config.platform if serving.agent.config else None
                if platform and settings is not None:
                    client = PlatformClient(serving, settings, drain_timeout)
                    holder["platform"] = client
                    tg.start_soon(client.run)
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
                if holder["platform"] is not None:
                    holder["platform"].stop()
                if manage_lifecycle:
                    await serving.stop(serving.agent)
            finally:
                serving.release()  # runtimes still owned (a swap in flight, an error): let them close
            tg.cancel_scope.cancel()
        await send({"type": "lifespan.shutdown.complete"})

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
        else:
            await app(scope, receive, send)

    asgi.serving = serving  # type: ignore[attr-defined]
    asgi.platform = holder  # type: ignore[attr-defined]
    return asgi
