"""The runtime: plan -> request -> transport -> parser -> events.

``Runtime`` is async (anyio: runs under asyncio and trio); ``SyncRuntime``
drives the same object from blocking code through an anyio portal thread,
so there is one implementation, not two.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import aclosing
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import attrs

from ._errors import (
    InvalidRequestError,
    ModelError,
    NetworkError,
    ParseError,
    RequestTimeout,
)
from ._events import Done, Embedding, Event, Finish, TextDelta, ToolCall, ToolCallDelta, Usage
from ._expr import Expr, compile_expr
from ._loader import Catalog, check_plugin_names, load_manifests
from ._mapping import ErrorMapper, EventMapper, _Rule, compile_rules
from ._planner import Plan, build_request, drop_nulls, normalize_messages, normalize_tools, plan
from ._plugins import Plugins, get_plugins
from ._protocol import choose_parser
from ._request import OutgoingRequest

if TYPE_CHECKING:
    import httpx

__all__ = ["Response", "Runtime", "SyncRuntime"]

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
    def cost(self) -> float | None:
        return self.usage.cost if self.usage is not None else None


class _Compiled:
    """An operator's expressions and rules, compiled once per runtime."""

    __slots__ = ("errors", "request", "rules")

    def __init__(self, plan_: Plan) -> None:
        op = plan_.operator
        self.request: Expr | None = compile_expr(op.request) if op.request else None
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
    ) -> None:
        self.catalog = catalog
        self.env = env
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
    ) -> Runtime:
        """Load manifests (files, dirs, URLs, git, ``builtin:NAME``) and build a runtime.

        ``env`` replaces ``os.environ`` for ``${VAR}`` expansion and API keys.
        """
        return cls(load_manifests(*sources, env=env), plugins=plugins, http_client=http_client, env=env)

    # -- lifecycle ---------------------------------------------------------
    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled HTTP client (if the runtime made it)."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

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

    def _compile(self, plan_: Plan) -> _Compiled:
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
        """Stream unified events: TextDelta, ToolCallDelta, Finish, Usage, then Done."""
        unified_tools = normalize_tools(tools)
        needs = ["generate"] + (["tools"] if unified_tools else [])
        plan_ = plan(self.catalog, model, "generate", needs)
        request = build_request(
            plan_,
            messages=normalize_messages(prompt, messages, system),
            tools=unified_tools,
            tool_choice=tool_choice,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            stream=plan_.operator.stream,
        )
        async with aclosing(self._send(plan_, request, extra)) as events:
            async for event in events:
                yield event

    async def generate(self, model: str, prompt: str | None = None, **kwargs: Any) -> Response:
        """The whole answer: ``.text``, ``.tool_calls``, ``.usage``, ``.cost``, ``.finish_reason``."""
        text: list[str] = []
        calls: dict[int, list[list[str]]] = {}
        usage: Usage | None = None
        finish: str | None = None
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
        tool_calls = [
            ToolCall(id="".join(s[0]) or None, name="".join(s[1]) or None, arguments="".join(s[2]))
            for _, s in sorted(calls.items())
        ]
        return Response(model, "".join(text), tool_calls, usage, finish, (model,))

    async def embed(self, model: str, texts: Sequence[str] | str) -> list[list[float]]:
        """One vector per input text, in input order."""
        inputs = [texts] if isinstance(texts, str) else list(texts)
        plan_ = plan(self.catalog, model, "embed", ["embed"])
        request = build_request(plan_, input=inputs, stream=False)
        vectors: dict[int, list[float]] = {}
        async with aclosing(self._send(plan_, request, None)) as events:
            async for ev in events:
                if type(ev) is Embedding:
                    vectors[ev.index] = ev.vector
        if len(vectors) != len(inputs):
            raise ParseError(
                f"expected {len(inputs)} embeddings, got {len(vectors)}", code="EMBEDDINGS_MISSING",
                **plan_.context(),
            )
        return [vectors[i] for i in sorted(vectors)]

    # -- the pipeline ---------------------------------------------------------
    def _outgoing(self, plan_: Plan, request: dict[str, Any], extra: Mapping[str, Any] | None) -> OutgoingRequest:
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
            params = {**plan_.spec.params, **(extra or {})}
            if params:
                if not isinstance(body, dict):
                    raise InvalidRequestError(
                        "extra parameters need a JSON object body", code="BAD_EXTRA", **context
                    )
                body = {**body, **params}
        out = OutgoingRequest(
            method=op.method,
            url=plan_.url,
            headers={**provider.headers, **op.headers},
            params=dict(op.query),
            json=body,
            provider=plan_.provider_name,
            model=plan_.model,
            env=self.env,
        )
        injector = self.plugins.get_auth_injector(provider.auth.type)
        injector(out, provider.auth)
        return out

    async def _send(
        self, plan_: Plan, request: dict[str, Any], extra: Mapping[str, Any] | None
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
                usage_in: int | None = None
                usage_out: int | None = None
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
                            for ev in mapper.feed(frame):
                                if type(ev) is Usage:
                                    usage_in = ev.input_tokens if ev.input_tokens is not None else usage_in
                                    usage_out = ev.output_tokens if ev.output_tokens is not None else usage_out
                                elif type(ev) is not Done:
                                    yield ev
                            if mapper.stopped:
                                break
                        if deadline is not None and anyio.current_time() > deadline:
                            raise RequestTimeout(f"total timeout of {t.total}s expired", code="TOTAL_TIMEOUT", **context)
                if not mapper.stopped:
                    for frame in parser.close():
                        for ev in mapper.feed(frame):
                            if type(ev) is Usage:
                                usage_in = ev.input_tokens if ev.input_tokens is not None else usage_in
                                usage_out = ev.output_tokens if ev.output_tokens is not None else usage_out
                            elif type(ev) is not Done:
                                yield ev
                        if mapper.stopped:
                            break
                if mapper.has_end_marker and not mapper.stopped:
                    what = "an empty body" if received == 0 else f"{received} bytes"
                    raise NetworkError(
                        f"the stream ended before its end marker (after {what}); the answer is incomplete",
                        code="STREAM_TRUNCATED", **context,
                    )
                if usage_in is not None or usage_out is not None:
                    yield Usage(usage_in, usage_out, self._cost(plan_, usage_in, usage_out))
                yield Done()
        except ModelError as exc:
            _with_context(exc, context)
            raise
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"{type(exc).__name__}: {exc or 'timed out'}", **context) from exc
        except httpx.RemoteProtocolError as exc:
            raise NetworkError(f"connection broke mid-response: {exc}", code="STREAM_BROKEN", **context) from exc
        except httpx.TransportError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}", **context) from exc

    @staticmethod
    def _cost(plan_: Plan, inp: int | None, out: int | None) -> float | None:
        pricing = plan_.spec.pricing
        if pricing is None:
            return None
        return round(
            (inp or 0) * pricing.input_per_mtok / 1e6 + (out or 0) * pricing.output_per_mtok / 1e6, 12
        )


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

    def stream(self, model: str, prompt: str | None = None, **kwargs: Any) -> Iterator[Event]:
        portal = self._call()
        agen = self.runtime.stream(model, prompt, **kwargs)
        try:
            while True:
                try:
                    yield portal.call(agen.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            portal.call(agen.aclose)
