"""The runtime: plan -> request -> transport -> parser -> events.

``Runtime`` is async (anyio: runs under asyncio and trio); ``SyncRuntime``
drives the same object from blocking code through an anyio portal thread,
so there is one implementation, not two.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.from_thread
import attrs

from .._errors import (
    InvalidRequestError,
    LimitExceededError,
    ModelError,
    NetworkError,
    ParseError,
    RateLimitError,
    RequestTimeout,
)
from .._events import (
    Done,
    Embedding,
    Event,
    Fallback,
    Finish,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from .._manifest.expr import Expr, compile_expr
from .._plugins.policies import Attempt
from .._plugins.policies import decide as decide_policy
from .limits import CallLimits, acquire
from .._manifest.loader import Catalog, check_plugin_names, load_manifests
from .._manifest.model import Model
from .mapping import ErrorMapper, EventMapper, _Rule, compile_rules
from .planning import (
    CallPlan,
    build_request,
    drop_nulls,
    normalize_messages,
    normalize_tools,
    plan,
    resolve_model,
)
from .._plugins.manager import Plugins, get_plugins
from .protocol import choose_parser
from .._plugins.request import OutgoingRequest

if TYPE_CHECKING:
    import httpx


__all__ = ["Response", "Runtime", "SyncRuntime", "Totals"]

log = logging.getLogger("modelwire")

T = TypeVar("T")
E = TypeVar("E")

MAX_ERROR_BODY = 64 * 1024
MAX_DRAIN = 256 * 1024


@attrs.frozen
class Response:
    """A whole answer, summed from its events."""

    model: str
    text: str
    tool_calls: list[ToolCall]
    usage: Usage | None
    finish_reason: str | None
    models: tuple[str, ...] = ()

    @property
    def cost(self) -> Decimal | None:
        return self.usage.cost if self.usage is not None else None


@attrs.define
class Totals:
    """Running usage of one runtime (every call, every model)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    fallbacks: int = 0


def _has_images(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
        for m in messages
    )


def tokenizer_name(tokenizer: Any, spec: Model) -> str:
    return str(getattr(tokenizer, "name", None) or spec.tokenizer or "approx")


class _Tally:
    """What one exchange's events add up to: usage reported so far (last value
    wins per field) and the produced text, to estimate usage when none came."""

    __slots__ = ("cached", "input_tokens", "output_tokens", "produced")

    def __init__(self) -> None:
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cached: int | None = None
        self.produced: list[str] = []  # text and tool arguments

    def take(self, events: list[Event]) -> list[Event]:
        """The events to pass on: Usage is merged here (sent once, at the end), Done dropped."""
        out: list[Event] = []
        for ev in events:
            if isinstance(ev, TextDelta):
                self.produced.append(ev.text)
            elif isinstance(ev, Usage):
                if ev.input_tokens is not None:
                    self.input_tokens = ev.input_tokens
                if ev.output_tokens is not None:
                    self.output_tokens = ev.output_tokens
                if ev.cached_input_tokens is not None:
                    self.cached = ev.cached_input_tokens
                continue
            elif isinstance(ev, ToolCallDelta):
                if ev.arguments:
                    self.produced.append(ev.arguments)
            elif isinstance(ev, Done):
                continue
            out.append(ev)
        return out


class _Compiled:
    """An operator's expressions and rules, compiled once per runtime."""

    __slots__ = ("errors", "headers", "query", "request", "rules")

    def __init__(self, plan_: CallPlan) -> None:
        op = plan_.operator
        self.request: Expr | None = compile_expr(op.request) if op.request else None
        self.headers: Expr | None = compile_expr(op.request_headers) if op.request_headers else None
        self.query: Expr | None = compile_expr(op.request_query) if op.request_query else None
        self.rules: list[_Rule] = compile_rules(op)
        self.errors = ErrorMapper(op.errors)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _scrub(exc: ModelError, secrets: Sequence[str]) -> None:
    """Remove known secret values (the keys this request sent) from an error's text."""
    for secret in secrets:
        if secret and secret in exc.message:
            exc.message = exc.message.replace(secret, "***")
            exc.args = (exc.message,)


def _with_context(exc: ModelError, context: Mapping[str, Any]) -> ModelError:
    for key, value in context.items():
        if getattr(exc, key, None) is None:
            setattr(exc, key, value)
    return exc


class Runtime:
    """Calls models described by manifests.

    >>> rt = Runtime.from_manifests("app.yaml")  # doctest: +SKIP
    >>> async with rt:                                            # doctest: +SKIP
    ...     print((await rt.generate("my-model", "Hello")).text)
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        plugins: Plugins | None = None,
        http_client: httpx.AsyncClient | None = None,
        env: Mapping[str, str] | None = None,
        metrics: Any = None,
        policy: str | None = None,
    ) -> None:
        self.catalog = catalog
        #: a fallback policy name that overrides every model's ``policy:``
        self.policy = policy
        self.env = env
        #: optional metrics sink (see :class:`modelwire.Metrics`)
        self.metrics = metrics
        #: running usage and cost of this runtime
        self.totals = Totals()
        self._limiter_backend: Any = None
        self._semaphores: dict[str, anyio.Semaphore] = {}
        self.plugins = plugins if plugins is not None else get_plugins()
        check_plugin_names(catalog, self.plugins)
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._client = http_client
        self._owns_client = http_client is None

    @classmethod
    def from_manifests(
        cls,
        *sources: str | os.PathLike[str],
        plugins: Plugins | None = None,
        http_client: httpx.AsyncClient | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Runtime:
        """Load manifests (files, dirs, URLs, git, ``builtin:NAME``) and build a runtime.

        ``env`` replaces ``os.environ`` for ``${VAR}`` expansion and API keys.
        """
        return cls(
            load_manifests(*sources, env=env), plugins=plugins, http_client=http_client, env=env, **kwargs
        )

    # -- lifecycle ---------------------------------------------------------
    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled HTTP client (if the runtime made it) and the limiter."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()
        backend, self._limiter_backend = self._limiter_backend, None
        if backend is not None:
            backend.close()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            # One pooled client per runtime, created on first use: its SSL
            # context costs ~0.4 s, so never per request.
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
                follow_redirects=False,
            )
            self._owns_client = True
        return self._client

    def _compile(self, plan_: CallPlan) -> _Compiled:
        key = (plan_.provider_name, plan_.operator_name)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(plan_)
        return compiled

    # -- public calls --------------------------------------------------------
    async def stream(
        self,
        model: str,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        system: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Stream unified events: TextDelta, ToolCallDelta, Finish, Usage, then Done.

        Failures go to the model's fallback policy: retries are invisible;
        when another model takes over, a :class:`Fallback` event comes first,
        so text from two models is never spliced without a marker.
        """
        unified_tools = normalize_tools(tools)
        msgs = normalize_messages(prompt, messages, system)
        needs = ["generate"] + (["tools"] if unified_tools else []) + (["vision"] if _has_images(msgs) else [])
        chain, switch = self._chain(model, "generate", needs)
        if switch is not None:
            yield switch
            self._note_fallback(switch)
        idx = 0
        partial: list[str] = []
        while True:
            current = chain[idx]
            plan_ = plan(self.catalog, current, "generate", needs)
            policy = self.plugins.get_fallback_policy(self.policy or plan_.spec.policy)
            number = 0
            while True:
                number += 1
                started = False
                try:
                    request = build_request(
                        plan_, messages=msgs, tools=unified_tools, tool_choice=tool_choice,
                        max_tokens=max_tokens, temperature=temperature, stop=stop,
                        stream=plan_.operator.stream,
                    )
                    async with aclosing(self._call(plan_, request, extra, msgs, unified_tools)) as events:
                        async for ev in events:
                            kind = type(ev)
                            if kind is TextDelta:
                                started = True
                                partial.append(ev.text)  # type: ignore[attr-defined]
                            elif kind is ToolCallDelta:
                                started = True
                            yield ev
                    return
                except ModelError as err:
                    nxt = chain[idx + 1] if idx + 1 < len(chain) else None
                    decision = decide_policy(policy, err, Attempt(current, number, started, plan_.spec.retry, nxt))
                    if decision.action == "retry":
                        if started:  # the caller saw text: say it restarts
                            marker = Fallback(current, current, f"retry after {err.kind} ({err.code})")
                            self._note_fallback(marker)
                            yield marker
                            partial.clear()
                        await anyio.sleep(decision.delay)
                        continue
                    if decision.action == "next" and nxt is not None:
                        target = resolve_model(self.catalog, nxt)[0]
                        continued = bool(decision.prefix and partial and "prefill" in target.capabilities)
                        marker = Fallback(current, nxt, f"{err.kind} ({err.code})", continued)
                        self._note_fallback(marker)
                        yield marker
                        if continued:
                            # Resend with the partial answer as the start of the reply.
                            msgs = [*msgs, {"role": "assistant", "content": "".join(partial)}]
                        else:
                            partial.clear()
                        idx += 1
                        break
                    raise

    async def generate(self, model: str, prompt: str | None = None, **kwargs: Any) -> Response:
        """The whole answer: ``.text``, ``.tool_calls``, ``.usage``, ``.cost``, ``.finish_reason``.

        After a :class:`Fallback` mid-answer the text restarts with the new
        model (unless it continues a prefix): ``.text`` holds the final model's
        answer and ``.models`` the path taken.
        """
        text: list[str] = []
        calls: dict[int, list[list[str]]] = {}
        usage: Usage | None = None
        finish: str | None = None
        path = [model]
        async with aclosing(self.stream(model, prompt, **kwargs)) as events:
            async for ev in events:
                if type(ev) is TextDelta:
                    text.append(ev.text)
                elif type(ev) is ToolCallDelta:
                    # Pieces concatenate, ids and names too (as the official SDKs
                    # accumulate deltas: some servers split them).
                    slot = calls.setdefault(ev.index, [[], [], []])
                    if ev.id:
                        slot[0].append(ev.id)
                    if ev.name:
                        slot[1].append(ev.name)
                    if ev.arguments:
                        slot[2].append(ev.arguments)
                elif type(ev) is Usage:
                    usage = ev
                elif type(ev) is Finish:
                    finish = ev.reason
                elif type(ev) is Fallback:
                    path.append(ev.to_model)
                    calls.clear()
                    finish = None
                    if not ev.continued:
                        text.clear()
        tool_calls = [
            ToolCall(id="".join(s[0]) or None, name="".join(s[1]) or None, arguments="".join(s[2]))
            for _, s in sorted(calls.items())
        ]
        return Response(path[-1], "".join(text), tool_calls, usage, finish, tuple(path))

    async def embed(self, model: str, texts: Sequence[str] | str) -> list[list[float]]:
        """One vector per input text, in input order."""
        inputs = [texts] if isinstance(texts, str) else list(texts)
        chain, _switch = self._chain(model, "embed", ["embed"])
        plan_ = plan(self.catalog, chain[0], "embed", ["embed"])
        request = build_request(plan_, input=inputs, stream=False)
        vectors: dict[int, list[float]] = {}
        async with aclosing(self._send(plan_, request, None, None, None)) as events:
            async for ev in events:
                if type(ev) is Embedding:
                    vectors[ev.index] = ev.vector
        if len(vectors) != len(inputs):
            raise ParseError(
                f"expected {len(inputs)} embeddings, got {len(vectors)}", code="EMBEDDINGS_MISSING",
                **plan_.context(),
            )
        return [vectors[i] for i in sorted(vectors)]

    # -- chain, limits, accounting -------------------------------------------
    def _chain(self, model: str, operator: str, needs: list[str]) -> tuple[list[str], Fallback | None]:
        """The model and its fallback chain, starting at the first that can serve ``needs``.

        Capability-aware planning: a model lacking a capability is skipped
        for the first one in its chain that has it (said with a Fallback
        event); none at all is an invalid_request before any HTTP.
        """
        spec, _ = resolve_model(self.catalog, model)
        chain = [model, *spec.fallback]
        usable = [m for m in chain if not self._missing(m, needs)]
        if not usable:
            missing = self._missing(model, needs)
            raise InvalidRequestError(
                f"no model can serve this request: capability {', '.join(missing)} is missing "
                f"in {', '.join(chain)}",
                code="CAPABILITY_MISSING", model=model, provider=spec.provider,
            )
        if usable[0] != model:
            missing = self._missing(model, needs)
            return usable, Fallback(model, usable[0], f"capability {', '.join(missing)} missing")
        return usable, None

    def _missing(self, model: str, needs: list[str]) -> list[str]:
        spec, _ = resolve_model(self.catalog, model)
        return [n for n in needs if n not in spec.capabilities]

    def _note_fallback(self, ev: Fallback) -> None:
        self.totals.fallbacks += 1
        if self.metrics is not None:
            self.metrics.fallback(ev.from_model, ev.to_model, ev.reason)

    def _tokenizer(self, spec: Model) -> Any:
        return self.plugins.get_tokenizer(spec.tokenizer or "approx")

    def _limiter(self) -> Any:
        if self._limiter_backend is None:
            cfg = self.catalog.limiter
            self._limiter_backend = self.plugins.get("limiter", cfg.backend).obj(**cfg.options)
        return self._limiter_backend

    def _semaphore(self, plan_: CallPlan) -> anyio.Semaphore | None:
        limit = plan_.spec.limits.concurrency
        if limit is None:
            return None
        sem = self._semaphores.get(plan_.model)
        if sem is None:
            sem = self._semaphores[plan_.model] = anyio.Semaphore(limit)
        return sem

    async def _call(
        self,
        plan_: CallPlan,
        request: dict[str, Any],
        extra: Mapping[str, Any] | None,
        msgs: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
    ) -> AsyncGenerator[Event, None]:
        """One attempt on one model: local limits, then the HTTP exchange."""
        from .._plugins.tokenizers import count_messages

        spec, context = plan_.spec, plan_.context()
        tokenizer = self._tokenizer(spec)
        counted: list[int] = []

        def prompt_tokens() -> int:
            # Counted once, and only when a limit or a usage estimate needs it.
            if not counted:
                counted.append(count_messages(tokenizer, msgs, tools))
            return counted[0]

        limits = spec.limits
        reply_budget = request.get("max_tokens") or limits.max_tokens or 0
        if limits.context_window is not None and prompt_tokens() + (request.get("max_tokens") or 0) > limits.context_window:
            raise LimitExceededError(
                f"prompt of ~{prompt_tokens()} tokens (by {tokenizer_name(tokenizer, spec)}) plus max_tokens "
                f"{request.get('max_tokens') or 0} exceeds the context window of {limits.context_window}",
                code="CONTEXT_WINDOW_EXCEEDED", **context,
            )
        ticket = None
        backend = None
        if limits.rpm is not None or limits.tpm is not None:
            backend = self._limiter()
            admit = CallLimits(f"{plan_.provider_name}/{plan_.model_id}", limits.rpm, limits.tpm, limits.mode, limits.wait_timeout)
            tokens = prompt_tokens() + min(reply_budget, limits.tpm or reply_budget) if limits.tpm is not None else 0
            ticket = await acquire(backend, admit, tokens, context)
        sem = self._semaphore(plan_)
        if sem is not None:
            if limits.mode == "wait":
                try:
                    with anyio.fail_after(limits.wait_timeout if limits.wait_timeout is not None else math.inf):
                        await sem.acquire()
                except TimeoutError:
                    raise RateLimitError(
                        f"{limits.concurrency} requests already in flight for {plan_.model}",
                        code="LOCAL_CONCURRENCY", **context,
                    ) from None
            else:
                try:
                    sem.acquire_nowait()
                except anyio.WouldBlock:
                    raise RateLimitError(
                        f"{limits.concurrency} requests already in flight for {plan_.model}",
                        code="LOCAL_CONCURRENCY", **context,
                    ) from None
        used: Usage | None = None
        metrics = self.metrics
        labels = (plan_.provider_name, plan_.model, plan_.operator_name)
        started_at = time.perf_counter()
        first = metrics is None
        if metrics is not None:
            metrics.call(*labels)
        try:
            async with aclosing(self._send(plan_, request, extra, prompt_tokens, tokenizer)) as events:
                async for ev in events:
                    kind = type(ev)
                    if isinstance(ev, Usage):
                        used = ev
                    elif not first and (kind is TextDelta or kind is ToolCallDelta):
                        first = True
                        metrics.first_token(*labels, time.perf_counter() - started_at)  # type: ignore[union-attr]
                    yield ev
        except ModelError as exc:
            if metrics is not None:
                metrics.finished(*labels, time.perf_counter() - started_at, error_kind=exc.kind)
            raise
        else:
            if metrics is not None:
                metrics.finished(*labels, time.perf_counter() - started_at, usage=used)
        finally:
            if sem is not None:
                sem.release()
            if backend is not None and ticket is not None and used is not None:
                actual = (used.input_tokens or 0) + (used.output_tokens or 0)
                try:
                    if backend.blocking:
                        await anyio.to_thread.run_sync(lambda: backend.reconcile(admit.key, ticket, actual))
                    else:
                        backend.reconcile(admit.key, ticket, actual)
                except ModelError as exc:
                    # The answer is complete; a limiter hiccup must not turn it into a failure.
                    log.warning("modelwire: could not reconcile usage with the limiter: %s", exc)

    # -- the pipeline ---------------------------------------------------------
    def _outgoing(self, plan_: CallPlan, request: dict[str, Any], extra: Mapping[str, Any] | None) -> OutgoingRequest:
        compiled = self._compile(plan_)
        op, provider = plan_.operator, plan_.provider
        context = plan_.context()
        body: Any = None
        if compiled.request is not None:
            try:
                body = drop_nulls(compiled.request(request))
            except ModelError as exc:
                _with_context(exc, context)
                raise
            except Exception as exc:  # a JMESPath type error in the manifest mapping
                raise InvalidRequestError(
                    f"request mapping failed: {exc}", code="REQUEST_MAPPING_FAILED", **context
                ) from exc
            passthrough = {**plan_.spec.params, **(extra or {})}
            if passthrough:
                if not isinstance(body, dict):
                    raise InvalidRequestError(
                        "extra parameters need a JSON object body", code="BAD_EXTRA", **context
                    )
                body = {**body, **passthrough}
        headers = {**provider.headers, **op.headers}
        params = dict(op.query)
        for expr, target, what in ((compiled.headers, headers, "headers"), (compiled.query, params, "query")):
            if expr is None:
                continue
            try:
                mapped = expr(request)
            except Exception as exc:
                raise InvalidRequestError(
                    f"request_{what} mapping failed: {exc}", code="REQUEST_MAPPING_FAILED", **context
                ) from exc
            if mapped is not None and not isinstance(mapped, dict):
                raise InvalidRequestError(
                    f"request_{what} must give an object, got {type(mapped).__name__}",
                    code="REQUEST_MAPPING_FAILED", **context,
                )
            for key, value in (mapped or {}).items():
                if value is not None:
                    target[str(key)] = value if isinstance(value, str) else json.dumps(value)
        out = OutgoingRequest(
            method=op.method,
            url=plan_.url,
            headers=headers,
            params=params,
            json=body,
            provider=plan_.provider_name,
            model=plan_.model,
            env=self.env,
        )
        injector = self.plugins.get_auth_injector(provider.auth.type)
        headers_before, params_before = dict(out.headers), dict(out.params)
        injector(out, provider.auth)
        # Whatever the injector added is a secret: scrub it from every error text.
        for value in [
            *(v for k, v in out.headers.items() if headers_before.get(k) != v),
            *(v for k, v in out.params.items() if params_before.get(k) != v),
        ]:
            out.secrets.extend(p for p in (value, value.rpartition(" ")[2]) if len(p) >= 4)
        return out

    async def _send(
        self,
        plan_: CallPlan,
        request: dict[str, Any],
        extra: Mapping[str, Any] | None,
        prompt_tokens: Callable[[], int] | None,
        tokenizer: Any,
    ) -> AsyncGenerator[Event, None]:
        import httpx

        context = plan_.context()
        outgoing = self._outgoing(plan_, request, extra)
        compiled = self._compile(plan_)
        t = plan_.provider.timeout
        read = t.read if t.total is None else min(t.read, t.total)
        timeout = httpx.Timeout(connect=t.connect, read=read, write=t.write, pool=t.connect)
        deadline = None if t.total is None else anyio.current_time() + t.total
        client = self._http()
        try:
            async with client.stream(
                outgoing.method,
                outgoing.url,
                headers=outgoing.headers,
                params=outgoing.params or None,
                json=outgoing.json,
                timeout=timeout,
            ) as resp:
                if resp.status_code >= 400:
                    body = b""
                    async with aclosing(resp.aiter_bytes()) as chunks:  # type: ignore[type-var]
                        async for chunk in chunks:
                            body += chunk
                            if len(body) >= MAX_ERROR_BODY:
                                break
                    raise compiled.errors.error(
                        resp.status_code, body, context, _retry_after(resp.headers.get("retry-after"))
                    )
                ctype = resp.headers.get("content-type", "")
                if ctype.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
                    head = (await resp.aread())[:120].decode("utf-8", "replace")
                    raise ParseError(
                        f"the server answered an HTML page, not an API response: {head!r}",
                        code="UNEXPECTED_HTML", status=resp.status_code, **context,
                    )
                name, _why = choose_parser(
                    plan_.operator.parser,
                    self.catalog.protocol,
                    self.plugins,
                    provider=plan_.provider_name,
                    base_url=plan_.provider.base_url,
                    url=plan_.url,
                    content_type=ctype,
                )
                parser = self.plugins.get_parser(name, **plan_.operator.parser_options)
                mapper = EventMapper(compiled.rules, context)
                tally = _Tally()
                received = 0
                drained = 0
                async with aclosing(resp.aiter_bytes()) as chunks:  # type: ignore[type-var]
                    async for chunk in chunks:
                        if mapper.stopped:
                            # Read what follows the end marker (usually nothing) so the
                            # connection returns to the pool and httpx's generators end
                            # cleanly; give up on a server that keeps talking.
                            drained += len(chunk)
                            if drained > MAX_DRAIN:
                                break
                            continue
                        received += len(chunk)
                        for frame in parser.feed(chunk):
                            for ev in tally.take(mapper.feed(frame)):
                                yield ev
                            if mapper.stopped:
                                break
                        if deadline is not None and anyio.current_time() > deadline:
                            raise RequestTimeout(f"total timeout of {t.total}s expired", code="TOTAL_TIMEOUT", **context)
                if not mapper.stopped:
                    for frame in parser.close():
                        for ev in tally.take(mapper.feed(frame)):
                            yield ev
                        if mapper.stopped:
                            break
                if mapper.has_end_marker and not mapper.stopped:
                    what = "an empty body" if received == 0 else f"{received} bytes"
                    raise NetworkError(
                        f"the stream ended before its end marker (after {what}); the answer is incomplete",
                        code="STREAM_TRUNCATED", **context,
                    )
                usage_in, usage_out, usage_cached = tally.input_tokens, tally.output_tokens, tally.cached
                estimated = False
                if usage_in is None and usage_out is None and tokenizer is not None and prompt_tokens is not None:
                    # No provider-reported usage: count, and say so.
                    usage_in, usage_out, estimated = prompt_tokens(), tokenizer.count("".join(tally.produced)), True
                if usage_in is not None or usage_out is not None:
                    usage = Usage(
                        usage_in, usage_out, self._cost(plan_, usage_in, usage_out, usage_cached),
                        cached_input_tokens=usage_cached, estimated=estimated,
                    )
                    self._account(usage)
                    yield usage
                yield Done()
        except ModelError as exc:
            _with_context(exc, context)
            _scrub(exc, outgoing.secrets)
            raise
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"{type(exc).__name__}: {exc or 'timed out'}", **context) from exc
        except httpx.RemoteProtocolError as exc:
            raise NetworkError(f"connection broke mid-response: {exc}", code="STREAM_BROKEN", **context) from exc
        except httpx.TransportError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}", **context) from exc

    @staticmethod
    def _cost(plan_: CallPlan, inp: int | None, out: int | None, cached: int | None = None) -> Decimal | None:
        """Cost in the pricing's currency, exact (Decimal), from per-million prices."""
        pricing = plan_.spec.pricing
        if pricing is None:
            return None
        million = Decimal(1_000_000)
        cached = min(cached or 0, inp or 0)
        cached_price = pricing.cached_input_per_mtok if pricing.cached_input_per_mtok is not None else pricing.input_per_mtok
        return (
            Decimal((inp or 0) - cached) * Decimal(str(pricing.input_per_mtok))
            + Decimal(cached) * Decimal(str(cached_price))
            + Decimal(out or 0) * Decimal(str(pricing.output_per_mtok))
        ) / million

    def _account(self, usage: Usage) -> None:
        t = self.totals
        t.calls += 1
        t.input_tokens += usage.input_tokens or 0
        t.output_tokens += usage.output_tokens or 0
        if usage.cost is not None:
            t.cost += usage.cost


class SyncRuntime:
    """The blocking twin of :class:`Runtime`: the same runtime, driven through a portal thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._portal_cm: Any = None
        self._portal: anyio.from_thread.BlockingPortal | None = None

    @classmethod
    def from_manifests(cls, *sources: str | os.PathLike[str], **kwargs: Any) -> SyncRuntime:
        return cls(Runtime.from_manifests(*sources, **kwargs))

    def _call(self) -> anyio.from_thread.BlockingPortal:
        if self._portal is None:
            self._portal_cm = anyio.from_thread.start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
        return self._portal

    def __enter__(self) -> SyncRuntime:
        self._call()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._portal is not None:
            try:
                self._portal.call(self.runtime.aclose)
            finally:
                self._portal_cm.__exit__(None, None, None)
                self._portal = self._portal_cm = None

    def generate(self, model: str, prompt: str | None = None, **kwargs: Any) -> Response:
        return self._call().call(partial(self.runtime.generate, model, prompt, **kwargs))

    def embed(self, model: str, texts: Sequence[str] | str) -> list[list[float]]:
        return self._call().call(self.runtime.embed, model, texts)

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``await fn(*args, **kwargs)`` in this runtime's event loop thread; its result."""
        return self._call().call(partial(fn, *args, **kwargs))

    def iterate(self, agen: AsyncGenerator[E, None]) -> Iterator[E]:
        """Drive an async generator (one that uses :attr:`runtime`) from blocking code.

        Closing the returned iterator closes ``agen`` in the loop thread.
        """
        portal = self._call()
        try:
            while True:
                try:
                    yield portal.call(agen.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            portal.call(agen.aclose)

    def stream(self, model: str, prompt: str | None = None, **kwargs: Any) -> Iterator[Event]:
        return self.iterate(self.runtime.stream(model, prompt, **kwargs))
