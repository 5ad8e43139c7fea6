"""The gateway: one endpoint in front of every manifest model, with keys, limits, budgets and metrics.

:class:`Gateway` holds what a request needs (the :class:`Runtime`, the
virtual keys, the counters, the metrics); :func:`create_gateway_app` is the
ASGI app serving it (a plain ASGI callable: no framework on the hot path).

One request::

    authenticate (key hash, constant time) -> read the body (bounded) -> parse
    (OpenAI or Anthropic format) -> may this key use this model -> admit
    (budget, concurrency, rpm, tpm: one atomic decision) -> Runtime.stream
    -> write events in the client's format -> settle (tokens, cost, slot)

The response starts only with the first event: retries and fallbacks before
it are invisible, and an error before it is a plain HTTP error with the
right status. After text reached the client a switch to another model is
never spliced in silently: a ``prefix`` continuation (the next model
continues the partial answer) streams on, anything else ends the stream with
an in-stream error event in the client's format. A client that disconnects
cancels the upstream call at once and is billed for what was produced.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from decimal import Decimal
from typing import Any

import anyio

from .._errors import ModelError, NotFoundError
from .._events import Fallback, Finish, TextDelta, ToolCallDelta, Usage
from .._frames import json_depth_ok
from .._manifest.model import Model
from .._plugins.tokenizers import count_messages
from .._runtime.client import Runtime, ToolCallBuffer
from .._runtime.planning import resolve_model
from .._runtime.usage import cost as price
from . import _anthropic, _openai
from ._call import BodyError, Call, Outcome, error_status
from ._config import GatewayConfig, VirtualKey
from ._counters import LocalCounters, RedisCounters

__all__ = ["Gateway", "create_gateway_app"]

log = logging.getLogger("modelwire.gateway")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

#: how long a key read from Redis (or its absence) is trusted before it is read again
KEY_CACHE_SECONDS = 10.0
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no")]


class _Reject(Exception):
    """A request answered with an error before any model call."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.headers = headers or []


class Gateway:
    """What the gateway serves: a runtime over the loaded manifests, keys, counters and metrics.

    ``runtime`` and ``counters`` may be passed (tests, embedding apps);
    otherwise :meth:`start` builds them from ``config`` (``redis``, or the
    config's ``redis:``, selects :class:`RedisCounters`).
    """

    def __init__(
        self,
        config: GatewayConfig | None = None,
        *,
        manifests: list[str] | None = None,
        runtime: Runtime | None = None,
        counters: Any = None,
        redis: str | None = None,
        env: Mapping[str, str] | None = None,
        metrics: bool = True,
    ) -> None:
        self.config = config or GatewayConfig()
        self._sources = list(manifests or []) or self.config.sources() or ["builtin:*"]
        self._env = env
        self.runtime = runtime
        self.counters = counters
        self._redis = redis or self.config.redis
        self._want_metrics = metrics
        self.metrics: Any = None
        self.started_at = int(time.time())
        self._keys = [(bytes.fromhex(k.hash.split(":", 1)[1]), name, k) for name, k in self.config.keys.items()]
        self._specs: dict[str, Model | None] = {}
        self._key_cache: dict[str, tuple[float, tuple[str, VirtualKey] | None]] = {}
        self.in_flight = 0

    async def start(self) -> Gateway:
        if self.runtime is None:
            registry = None
            runtime_metrics = None
            if self._want_metrics:
                try:
                    import prometheus_client as prom

                    from .._runtime.metrics import Metrics
                except ImportError:
                    pass
                else:
                    registry = prom.CollectorRegistry(auto_describe=True)
                    runtime_metrics = Metrics(registry)
            self.runtime = Runtime.from_manifests(*self._sources, env=self._env, metrics=runtime_metrics)
            if registry is not None:
                from ._metrics import GatewayMetrics

                self.metrics = GatewayMetrics(registry)
        elif self._want_metrics and self.runtime.metrics is not None:
            from ._metrics import GatewayMetrics

            self.metrics = GatewayMetrics(self.runtime.metrics.registry)
        if self.counters is None:
            self.counters = (
                RedisCounters(self._redis, prefix=self.config.prefix) if self._redis else LocalCounters()
            )
        return self

    async def aclose(self) -> None:
        if self.counters is not None:
            await self.counters.aclose()
        if self.runtime is not None:
            await self.runtime.aclose()

    async def __aenter__(self) -> Gateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- keys ------------------------------------------------------------------
    async def authenticate(self, headers: dict[bytes, bytes]) -> tuple[str, VirtualKey | None]:
        """(key name, key) for the request's ``Authorization: Bearer`` or ``x-api-key``; no keys: open."""
        from_redis = self.config.redis_keys and hasattr(self.counters, "lookup_key")
        if not self._keys and not from_redis:
            return "-", None
        raw = headers.get(b"x-api-key")
        if raw is None:
            scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
            raw = token.strip() if scheme.lower() == b"bearer" else None
        if not raw:
            raise _Reject(401, "UNAUTHORIZED", "a key is required (Authorization: Bearer <key>, or x-api-key)")
        digest = hashlib.sha256(raw).digest()
        found: tuple[str, VirtualKey] | None = None
        for stored, name, key in self._keys:  # every hash compared, each in constant time
            if hmac.compare_digest(digest, stored):
                found = (name, key)
        if found is None and from_redis:
            found = await self._redis_key(digest.hex())
        if found is None:
            raise _Reject(401, "INVALID_KEY", "the key is not valid")
        return found

    async def _redis_key(self, digest: str) -> tuple[str, VirtualKey] | None:
        """A key stored in Redis (``<prefix>keys``: hash hex -> JSON), cached for ``KEY_CACHE_SECONDS``."""
        now = time.monotonic()
        cached = self._key_cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            found: tuple[str, VirtualKey] | None = await self.counters.lookup_key(digest)
        except ModelError as exc:
            log.warning("modelwire gateway: %s", exc.message)
            raise _Reject(503, "COUNTERS_UNAVAILABLE", "the gateway cannot check keys right now",
                          headers=[(b"retry-after", b"1")]) from None
        if len(self._key_cache) >= 10_000:  # unknown keys are cached too: keep it bounded
            self._key_cache.clear()
        self._key_cache[digest] = (now + KEY_CACHE_SECONDS, found)
        return found

    async def admin(self, headers: dict[bytes, bytes]) -> None:
        name, key = await self.authenticate(headers)
        if key is not None and not key.admin:
            raise _Reject(403, "NOT_ADMIN", f"key {name!r} is not an admin key")

    def may_use(self, key: VirtualKey | None, model: str) -> bool:
        if key is None or key.models is None:
            return True
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in key.models)

    def model_names(self, key: VirtualKey | None) -> list[str]:
        assert self.runtime is not None
        return sorted(n for n in self.runtime.catalog.models if self.may_use(key, n))

    # -- billing ---------------------------------------------------------------
    def _spec(self, model: str) -> Model | None:
        """The model's manifest entry (None: unknown), cached: it is read several times per request."""
        if model in self._specs:
            return self._specs[model]
        assert self.runtime is not None
        try:
            spec: Model | None = resolve_model(self.runtime.catalog, model)[0]
        except ModelError:
            spec = None
        if len(self._specs) >= 4096:  # names come from clients: keep the cache bounded
            self._specs.clear()
        self._specs[model] = spec
        return spec

    def _estimate(self, out: Outcome, call: Call | None) -> None:
        """Tokens and cost of an answer that ended without provider-reported usage."""
        assert self.runtime is not None
        spec = self._spec(out.model)
        if spec is None:
            return
        tokenizer = self.runtime.plugins.get_tokenizer(spec.tokenizer or "approx")
        if out.input_tokens is None and call is not None:
            out.input_tokens = count_messages(tokenizer, call.messages, call.tools)
        if out.output_tokens is None:
            produced = "".join(out.text) + "".join(out.tool_text)
            out.output_tokens = tokenizer.count(produced) if produced else 0
        out.cost = price(spec.pricing, out.input_tokens, out.output_tokens)

    def _currency(self, model: str) -> str | None:
        spec = self._spec(model)
        return spec.pricing.currency if spec is not None and spec.pricing is not None else None

    def _provider(self, model: str) -> str:
        spec = self._spec(model)
        return spec.provider if spec is not None else ""

    async def admit(self, name: str, key: VirtualKey | None, model: str, call: Call | None, tokens: int) -> str | None:
        """Check the model, then admit the request under the key's limits; its ticket (None: no limits)."""
        assert self.runtime is not None
        spec = self._spec(model)
        if spec is None:
            try:
                resolve_model(self.runtime.catalog, model)
            except NotFoundError as exc:  # its message lists the known models
                raise _Reject(404, "MODEL_NOT_FOUND", exc.message, "model") from None
            raise _Reject(404, "MODEL_NOT_FOUND", f"unknown model {model!r}", "model")
        if not self.may_use(key, model):
            raise _Reject(403, "MODEL_NOT_ALLOWED", f"key {name!r} may not use model {model!r}", "model")
        if key is None or (key.rpm is None and key.tpm is None and key.concurrency is None and key.budget is None):
            return None
        if key.budget is not None and spec.pricing is not None and spec.pricing.currency != key.budget.currency:
            raise _Reject(403, "CURRENCY_MISMATCH", f"model {model!r} is priced in {spec.pricing.currency}, "
                          f"key {name!r} has a budget in {key.budget.currency}", "model")
        try:
            decision = await self.counters.admit(
                name, rpm=key.rpm, tpm=key.tpm, concurrency=key.concurrency, budget=key.budget, tokens=tokens,
            )
        except ModelError as exc:  # fail closed: a limit that cannot be checked is not skipped
            log.warning("modelwire gateway: %s", exc.message)
            raise _Reject(503, "COUNTERS_UNAVAILABLE", "the gateway cannot check this key's limits right now",
                          headers=[(b"retry-after", b"1")]) from None
        if not decision.admitted:
            if self.metrics is not None:
                self.metrics.rejected.labels(name, decision.limit).inc()
            headers = []
            if decision.retry_after is not None and math.isfinite(decision.retry_after):
                headers.append((b"retry-after", str(max(1, math.ceil(decision.retry_after))).encode()))
            what = {"budget": "its budget for this period is spent", "rpm": "requests per minute",
                    "tpm": "tokens per minute", "concurrency": "requests in flight"}[decision.limit]
            code = "BUDGET_EXCEEDED" if decision.limit == "budget" else f"KEY_{decision.limit.upper()}_LIMIT"
            raise _Reject(429, code, f"key {name!r} is over its limit: {what}", None, headers)
        ticket: str | None = decision.ticket
        return ticket

    async def settle(self, name: str, key: VirtualKey | None, ticket: str | None, out: Outcome) -> None:
        if ticket is None or key is None:
            return
        currency = self._currency(out.model)
        billable = out.cost if key.budget is None or currency == key.budget.currency else None
        try:
            await self.counters.settle(
                name, ticket, model=out.model, budget=key.budget, input_tokens=out.input_tokens or 0,
                output_tokens=out.output_tokens or 0, cost=billable,
            )
        except ModelError as exc:
            log.warning("modelwire gateway: could not record spend for key %r: %s", name, exc.message)

    async def usage(self) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        every = dict(self.config.keys)
        if self.config.redis_keys and hasattr(self.counters, "all_keys"):
            every.update(await self.counters.all_keys())
        for name, key in every.items():
            period, by_model = await self.counters.spend(name, key.budget)
            total = sum((s.cost for s in by_model.values()), Decimal(0))
            keys[name] = {
                "period": period,
                "budget": None if key.budget is None else {
                    "amount": str(key.budget.value), "currency": key.budget.currency, "period": key.budget.period,
                },
                "spent": str(total.normalize()) if total else "0",
                "models": {m: s.to_dict() for m, s in sorted(by_model.items())},
            }
        return {"object": "usage", "keys": keys}


# -- ASGI ------------------------------------------------------------------------


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    length = headers.get(b"content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise _Reject(413, "BODY_TOO_LARGE", f"the body exceeds {limit} bytes",
                              headers=[(b"connection", b"close")])
        except ValueError:
            raise _Reject(400, "BAD_CONTENT_LENGTH", "content-length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise anyio.get_cancelled_exc_class()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Reject(413, "BODY_TOO_LARGE", f"the body exceeds {limit} bytes", headers=[(b"connection", b"close")])
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse_json(raw: bytes, depth: int) -> Any:
    try:
        body = json.loads(raw)
    except RecursionError:
        raise _Reject(400, "BAD_JSON", f"the body nests deeper than {depth} levels") from None
    except ValueError as exc:
        raise _Reject(400, "BAD_JSON", f"the body is not JSON: {exc}") from None
    if not json_depth_ok(body, depth):
        raise _Reject(400, "BAD_JSON", f"the body nests deeper than {depth} levels")
    return body


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                   content_type: list[tuple[bytes, bytes]] = _JSON) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*content_type, (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _error_json(fmt: str, status: int, code: str, message: str, param: str | None = None) -> bytes:
    module = _anthropic if fmt == "anthropic" else _openai
    return json.dumps(module.error_body(status, code, message, param), ensure_ascii=False).encode()


def _model_error(exc: ModelError) -> tuple[int, str, str, list[tuple[bytes, bytes]]]:
    """(status, code, message, headers) for a runtime error; never a traceback, never a key."""
    status = error_status(exc.kind, exc.code)
    headers = []
    if status == 429 and exc.retry_after is not None and math.isfinite(exc.retry_after):
        headers.append((b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode()))
    where = f" (model {exc.model}, provider {exc.provider})" if getattr(exc, "provider", None) else ""
    return status, exc.code, f"{exc.message}{where}", headers


class _Request:
    """One chat request through the runtime, written in the client's format."""

    def __init__(self, gw: Gateway, fmt: str, call: Call, name: str, key: VirtualKey | None, started: float) -> None:
        self.gw, self.fmt, self.call, self.name, self.key = gw, fmt, call, name, key
        self.started = started
        self.out = Outcome(call.model)
        self.calls = ToolCallBuffer()
        self.status = 200
        self.ttft: float | None = None
        self.usage_sent = False
        self.ticket: str | None = None
        self.settled = False

    async def _settle(self) -> None:
        """Record tokens and spend and free the slot, once.

        Called before the last byte of the answer goes out, so a client that
        sends its next request as soon as it has read this one finds the
        counters already settled (not the reservation still standing).
        """
        if self.settled:
            return
        self.settled = True
        with anyio.CancelScope(shield=True):
            if not self.out.complete:
                self.gw._estimate(self.out, self.call)
            await self.gw.settle(self.name, self.key, self.ticket, self.out)

    async def run(self, send: Send, receive: Receive, ticket: str | None) -> None:
        gw = self.gw
        self.ticket = ticket
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            self.status = 499  # nginx's "client closed request"
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch)
                if self.call.stream:
                    await self._stream(send)
                else:
                    await self._whole(send)
                tg.cancel_scope.cancel()
        except OSError:  # the client went away while we wrote
            self.status = 499
        finally:
            with anyio.CancelScope(shield=True):
                await self._settle()
                if gw.metrics is not None:
                    gw.metrics.request(
                        (self.fmt, self.out.model, gw._provider(self.out.model), self.name), self.status,
                        time.perf_counter() - self.started, ttft=self.ttft,
                        input_tokens=self.out.input_tokens or 0, output_tokens=self.out.output_tokens or 0,
                        cost=self.out.cost, currency=gw._currency(self.out.model) or "",
                    )

    def _events(self) -> Any:
        assert self.gw.runtime is not None
        return self.gw.runtime.stream(self.call.model, **self.call.kwargs())

    def _note(self, ev: Any) -> None:
        kind = type(ev)
        if kind is TextDelta:
            self.out.text.append(ev.text)
        elif kind is ToolCallDelta:
            self.calls.add(ev)
            if ev.arguments:
                self.out.tool_text.append(ev.arguments)  # billed as output if the provider reports no usage
        elif kind is Finish:
            self.out.finish = ev.reason
        elif kind is Usage:
            self.out.input_tokens, self.out.output_tokens, self.out.cost = ev.input_tokens, ev.output_tokens, ev.cost
            self.out.complete = True

    async def _whole(self, send: Send) -> None:
        try:
            async with aclosing(self._events()) as events:
                async for ev in events:
                    if type(ev) is Fallback:
                        # the client sees only the final answer: restart it, as Runtime.generate does
                        self.out.model = ev.to_model
                        self.calls.clear()
                        self.out.finish = None
                        if not ev.continued:
                            self.out.text.clear()
                            self.out.tool_text.clear()
                        continue
                    self._note(ev)
        except ModelError as exc:
            status, code, message, headers = _model_error(exc)
            self.status = status
            await self._settle()
            await _respond(send, status, _error_json(self.fmt, status, code, message), headers)
            return
        body = (_anthropic.message_body if self.fmt == "anthropic" else _openai.chat_body)(self.out, self.calls.calls())
        self.ttft = time.perf_counter() - self.started
        await self._settle()
        await _respond(send, 200, body)

    async def _stream(self, send: Send) -> None:
        fmt = self.fmt
        writer: Any = (
            _anthropic.MessageStream(self.call.model) if fmt == "anthropic"
            else _openai.ChatStream(self.call.model, self.call.include_usage)
        )
        begun = False  # the HTTP response started
        shown = False  # text or a tool call reached the client
        try:
            async with aclosing(self._events()) as events:
                async for ev in events:
                    kind = type(ev)
                    if kind is Fallback:
                        self.out.model = ev.to_model
                        if shown and not ev.continued:
                            # never splice two answers: end here, in the client's format
                            message = (f"{ev.from_model} failed after the answer started ({ev.reason}); "
                                       "the partial answer above is incomplete")
                            await send({"type": "http.response.body",
                                        "body": writer.error(502, "UPSTREAM_FAILED_MIDSTREAM", message),
                                        "more_body": True})
                            break
                        if not shown:
                            self.out.text.clear()
                            self.calls.clear()
                        continue
                    if not begun:
                        begun = True
                        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
                        await send({"type": "http.response.body", "body": writer.start(), "more_body": True})
                    self._note(ev)
                    if kind is TextDelta or kind is ToolCallDelta:
                        if not shown:
                            shown = True
                            self.ttft = time.perf_counter() - self.started
                    elif kind is Usage:
                        self.usage_sent = True
                    data = writer.event(ev)
                    if data:
                        await send({"type": "http.response.body", "body": data, "more_body": True})
                else:
                    tail = writer.done() if fmt == "openai" else writer.done(self.usage_sent)
                    await self._settle()
                    await send({"type": "http.response.body", "body": tail, "more_body": False})
                    return
        except ModelError as exc:
            status, code, message, headers = _model_error(exc)
            if not begun:
                self.status = status
                await self._settle()
                await _respond(send, status, _error_json(fmt, status, code, message), headers)
                return
            self.status = 200
            await send({"type": "http.response.body", "body": writer.error(status, code, message), "more_body": True})
        await self._settle()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def create_gateway_app(gateway: Gateway, *, manage_lifecycle: bool = True) -> Any:
    """The ASGI app: ``/v1/chat/completions``, ``/v1/messages``, ``/v1/embeddings``, ``/v1/models``,
    ``/v1/usage``, ``/health``, ``/metrics``.

    With ``manage_lifecycle`` the ASGI lifespan starts and closes ``gateway``.
    """
    gw = gateway
    limits = gw.config.server

    async def chat(fmt: str, scope: dict[str, Any], receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        started = time.perf_counter()
        name, key = await gw.authenticate(headers)
        body = _parse_json(await _read_body(receive, headers, limits.max_body_bytes), limits.max_json_depth)
        try:
            call = (_anthropic.parse_messages if fmt == "anthropic" else _openai.parse_chat)(body)
        except BodyError as exc:
            raise _Reject(exc.status, "BAD_REQUEST", exc.message, exc.field) from None
        tokens = 0
        if key is not None and key.tpm is not None:
            assert gw.runtime is not None
            tokens = count_messages(gw.runtime.plugins.get_tokenizer("approx"), call.messages, call.tools) + (
                call.max_tokens or 0
            )
        ticket = await gw.admit(name, key, call.model, call, tokens)
        gw.in_flight += 1
        try:
            await _Request(gw, fmt, call, name, key, started).run(send, receive, ticket)
        finally:
            gw.in_flight -= 1

    async def embeddings(scope: dict[str, Any], receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        started = time.perf_counter()
        name, key = await gw.authenticate(headers)
        body = _parse_json(await _read_body(receive, headers, limits.max_body_bytes), limits.max_json_depth)
        try:
            model, texts, as_base64 = _openai.parse_embeddings(body)
        except BodyError as exc:
            raise _Reject(exc.status, "BAD_REQUEST", exc.message, exc.field) from None
        assert gw.runtime is not None
        tokenizer = gw.runtime.plugins.get_tokenizer("approx")
        tokens = sum(tokenizer.count(t) for t in texts)
        ticket = await gw.admit(name, key, model, None, tokens)
        out = Outcome(model, input_tokens=tokens, output_tokens=0)
        status = 200
        settled = False
        try:
            try:
                spec = gw._spec(model)
                out.cost = price(spec.pricing, tokens, 0) if spec is not None else None
                vectors = await gw.runtime.embed(model, texts)
            except ModelError as exc:
                status, code, message, extra = _model_error(exc)
                out.input_tokens, out.cost = 0, None
                await _respond(send, status, _error_json("openai", status, code, message), extra)
                return
            settled = True  # before the answer goes out (see _Request._settle)
            with anyio.CancelScope(shield=True):
                await gw.settle(name, key, ticket, out)
            await _respond(send, 200, _openai.embeddings_body(model, vectors, as_base64, tokens))
        finally:
            with anyio.CancelScope(shield=True):
                if not settled:
                    await gw.settle(name, key, ticket, out)
                if gw.metrics is not None:
                    gw.metrics.request(("embeddings", model, gw._provider(model), name), status,
                                       time.perf_counter() - started, input_tokens=out.input_tokens or 0,
                                       cost=out.cost, currency=gw._currency(model) or "")

    async def models(scope: dict[str, Any], receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        _name, key = await gw.authenticate(headers)
        await _respond(send, 200, _openai.models_body(gw.model_names(key), gw.started_at))

    async def usage(scope: dict[str, Any], receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        await gw.admin(headers)
        try:
            data = await gw.usage()
        except ModelError as exc:
            raise _Reject(503, exc.code, exc.message) from None
        await _respond(send, 200, json.dumps(data).encode())

    async def health(scope: dict[str, Any], receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        await _respond(send, 200, json.dumps({"status": "ok", "in_flight": gw.in_flight, "pid": os.getpid()}).encode())

    async def metrics(scope: dict[str, Any], receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        await gw.admin(headers)
        if gw.metrics is None:
            raise _Reject(501, "NO_METRICS", "metrics need prometheus-client (pip install 'modelwire[gateway]')")
        await _respond(send, 200, gw.metrics.render(), content_type=[(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")])

    routes: dict[tuple[str, str], Any] = {
        ("POST", "/v1/chat/completions"): lambda *a: chat("openai", *a),
        ("POST", "/v1/messages"): lambda *a: chat("anthropic", *a),
        ("POST", "/v1/embeddings"): embeddings,
        ("GET", "/v1/models"): models,
        ("GET", "/v1/usage"): usage,
        ("GET", "/health"): health,
        ("GET", "/metrics"): metrics,
    }
    paths = {p for _m, p in routes}

    async def lifespan(receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                if manage_lifecycle:
                    await gw.start()
            except ModelError as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        if message["type"] == "lifespan.shutdown":
            if manage_lifecycle:
                await gw.aclose()
            await send({"type": "lifespan.shutdown.complete"})

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await lifespan(receive, send)
            return
        if kind != "http":
            return
        path = scope["path"].rstrip("/") or "/"
        fmt = "anthropic" if path == "/v1/messages" else "openai"
        handler = routes.get((scope["method"], path))
        try:
            if handler is None:
                if path in paths:
                    raise _Reject(405, "METHOD_NOT_ALLOWED", f"{scope['method']} is not allowed on {path}")
                raise _Reject(404, "NOT_FOUND", f"no such endpoint: {path[:200]}")
            headers = {}
            for name_, value in scope["headers"]:
                headers[name_] = value  # ASGI gives lower-case names
            await handler(scope, receive, send, headers)
        except _Reject as exc:
            await _respond(send, exc.status, _error_json(fmt, exc.status, exc.code, exc.message, exc.param), exc.headers)
        except ModelError as exc:
            status, code, message, extra = _model_error(exc)
            await _respond(send, status, _error_json(fmt, status, code, message), extra)
        except Exception:
            log.exception("modelwire gateway: internal error on %s", path)
            await _respond(send, 500, _error_json(fmt, 500, "INTERNAL", "internal error (see the gateway's log)"))

    app.gateway = gw  # type: ignore[attr-defined]
    return app
