"""The runtime: one call through every stage of the data flow.

``Runtime`` composes the stages, each in its own module: planning
(:mod:`.planning`), limits (:mod:`.limits`), request building
(:mod:`.request`), transport (:mod:`.transport`), protocol choice
(:mod:`.protocol`), the sans-IO exchange (:mod:`.exchange`: parser, event
mapping, end marker, usage tally), usage and cost (:mod:`.usage`) and the
fallback loop (:mod:`.fallback`). It is async (anyio: asyncio and trio);
``SyncRuntime`` drives the same object from blocking code through an anyio
portal thread, so there is one implementation, not two.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.from_thread
import attrs

from .._errors import InvalidRequestError, ModelError, ParseError
from .._events import (
    Citation,
    Done,
    Embedding,
    Event,
    Fallback,
    Finish,
    Reasoning,
    ReasoningDelta,
    ServerToolCall,
    ServerToolResult,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from .._manifest.catalog import Catalog, check_plugin_names, load_manifests, provider_plugin_error
from .._manifest.config import default_sources
from .._manifest.model import Model
from .._plugins.manager import Plugins, get_plugins
from .._plugins.tokenizers import count_messages
from .exchange import Exchange
from .fallback import run_chain
from .limits import CallLimits, acquire, acquire_slot, check_context_window
from .operators import (
    OperatorResult,
    check_inputs,
    collect,
    expect_embeddings,
    input_messages,
    operator_request,
)
from .planning import CallPlan, chain_for
from .protocol import choose_parser
from .request import (
    CompiledOperator,
    build_outgoing,
    build_request,
    normalize_messages,
    normalize_response_format,
    normalize_tools,
    with_context,
)
from .structured import parse_output
from .transport import (
    MAX_DRAIN,
    MAX_ERROR_BODY,
    Deadline,
    install_log_filter,
    map_exceptions,
    open_stream,
    read_capped,
    retry_after,
)
from .usage import Totals, settle, tokenizer_name

if TYPE_CHECKING:
    import httpx


__all__ = ["ReasoningBuffer", "Response", "Runtime", "SyncRuntime", "ToolCallBuffer", "Totals", "call_message"]

log = logging.getLogger("modelwire")

T = TypeVar("T")
E = TypeVar("E")


@attrs.frozen
class Response:
    """A whole answer, summed from its events."""

    model: str
    text: str
    tool_calls: list[ToolCall]
    usage: Usage | None
    finish_reason: str | None
    models: tuple[str, ...] = ()
    #: the JSON Schema of ``response_format``, when the call asked for one
    schema: dict[str, Any] | None = attrs.field(default=None, repr=False)
    #: the model's reasoning blocks (never part of ``text``), with signatures to send back
    reasoning_blocks: tuple[Reasoning, ...] = ()
    #: tools the provider ran itself (web search, code execution, MCP), as calls and results
    server_tool_calls: tuple[ToolCall, ...] = ()
    server_tool_results: tuple[ServerToolResult, ...] = ()
    citations: tuple[Citation, ...] = ()

    @property
    def cost(self) -> Decimal | None:
        return self.usage.cost if self.usage is not None else None

    @property
    def parsed(self) -> Any:
        """``text`` as JSON, validated against the requested schema (parsed anew on each access).

        Raises :class:`~modelwire.OutputSchemaError` naming the JSON pointer
        where the answer did not match, with the raw text in ``.text``.
        """
        return parse_output(self.text, self.schema, {"model": self.model})

    @property
    def reasoning(self) -> str:
        """The reasoning text ("thinking"), blocks joined; empty when the model showed none."""
        return "".join(b.text for b in self.reasoning_blocks)

    def message(self) -> dict[str, Any]:
        """The answer as an assistant message for the next turn (reasoning blocks and tool calls included)."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.reasoning_blocks:
            msg["reasoning"] = [b.to_message_part() for b in self.reasoning_blocks]
        if self.tool_calls:
            msg["tool_calls"] = [call_message(c, c.arguments) for c in self.tool_calls]
        return msg


def call_message(call: ToolCall, arguments: str) -> dict[str, Any]:
    """A tool call as an assistant turn carries it (the signature only when there is one)."""
    msg: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": arguments}
    if call.signature is not None:
        msg["signature"] = call.signature
    return msg


class ReasoningBuffer:
    """Reasoning deltas accumulated into whole blocks, by index (signature and redacted data kept)."""

    __slots__ = ("_blocks",)

    def __init__(self) -> None:
        self._blocks: dict[int, list[Any]] = {}

    def add(self, ev: ReasoningDelta) -> None:
        slot = self._blocks.setdefault(ev.index, [[], None, None])
        if ev.text:
            slot[0].append(ev.text)
        if ev.signature:
            slot[1] = (slot[1] or "") + ev.signature
        if ev.redacted:
            slot[2] = (slot[2] or "") + ev.redacted

    def clear(self) -> None:
        self._blocks.clear()

    def blocks(self) -> tuple[Reasoning, ...]:
        return tuple(Reasoning("".join(t), sig, red) for _, (t, sig, red) in sorted(self._blocks.items()))


class ToolCallBuffer:
    """Tool-call deltas accumulated into whole calls, by index.

    Pieces concatenate, ids and names too, as the official SDKs accumulate
    deltas (some servers split them).
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[list[str]]] = {}

    def add(self, ev: ToolCallDelta) -> None:
        slot = self._calls.setdefault(ev.index, [[], [], [], []])
        if ev.id:
            slot[0].append(ev.id)
        if ev.name:
            slot[1].append(ev.name)
        if ev.arguments:
            slot[2].append(ev.arguments)
        signature = getattr(ev, "signature", None)  # server tool calls (same shape) have none
        if signature:
            slot[3].append(signature)

    def clear(self) -> None:
        self._calls.clear()

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self) -> list[ToolCall]:
        """The calls so far, in index order."""
        return [
            ToolCall(
                id="".join(s[0]) or None, name="".join(s[1]) or None, arguments="".join(s[2]),
                signature="".join(s[3]) or None,
            )
            for _, s in sorted(self._calls.items())
        ]


def _has_images(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
        for m in messages
    )


def _scrub_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            text = text.replace(repr(secret)[1:-1], "***")  # as reprs of bytes and str show it
    return text


def _scrub(exc: ModelError, secrets: Sequence[str]) -> None:
    """Remove the keys this request sent from an error's text and from every exception it chains to."""
    exc.message = _scrub_text(exc.message, secrets)
    exc.args = (exc.message,)
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        try:
            cause.args = tuple(
                _scrub_text(a, secrets) if isinstance(a, str)
                else _scrub_text(a.decode("latin-1"), secrets).encode("latin-1") if isinstance(a, bytes)
                else a
                for a in cause.args
            )
        except Exception:  # an exception type with read-only args: drop the link
            exc.__cause__ = None
            exc.__suppress_context__ = True
            break
        cause = cause.__cause__ or cause.__context__


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
        self._compiled: dict[tuple[str, str], CompiledOperator] = {}
        self._client = http_client
        self._owns_client = http_client is None

    @classmethod
    def from_manifests(
        cls,
        *sources: str | os.PathLike[str],
        plugins: Plugins | None = None,
        http_client: httpx.AsyncClient | None = None,
        env: Mapping[str, str] | None = None,
        allow_env: Iterable[str] | None = None,
        allow_remote_override: bool = False,
        discover: bool | None = None,
        **kwargs: Any,
    ) -> Runtime:
        """Load manifests (files, dirs, URLs, git, ``builtin:NAME``) and build a runtime.

        With no sources, loads what the ``modelwire`` command loads: ``builtin:*``,
        the user's config-dir manifests and ``MODELWIRE_MANIFESTS`` (``discover=False``
        or ``MODELWIRE_NO_CONFIG=1``: the built-ins only); ``discover=True`` loads
        those before the given sources, which may replace them.
        ``env`` replaces ``os.environ`` for ``${VAR}`` expansion and API keys;
        ``allow_env`` and ``allow_remote_override`` are the policy for manifests
        from a URL or git (see docs/security.md).
        """
        overridable: list[str] = []
        if not sources or discover:
            sources_, overridable = default_sources(*sources, env=env, discover=discover is not False)
            sources = tuple(sources_)
        catalog = load_manifests(
            *sources, env=env, allow_env=allow_env, allow_remote_override=allow_remote_override,
            overridable=overridable,
        )
        return cls(catalog, plugins=plugins, http_client=http_client, env=env, **kwargs)

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
            install_log_filter()
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
                follow_redirects=False,
            )
            self._owns_client = True
        return self._client

    def _compile(self, plan_: CallPlan) -> CompiledOperator:
        key = (plan_.provider_name, plan_.operator_name)
        compiled = self._compiled.get(key)
        if compiled is None:
            if plan_.provider.requires:  # plugin names not checked at load time
                missing = provider_plugin_error(plan_.provider_name, plan_.provider, plan_.operator, self.plugins)
                if missing is not None:
                    raise with_context(missing, plan_.context())
            compiled = self._compiled[key] = CompiledOperator(plan_.operator)
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
        response_format: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Stream unified events: TextDelta, ToolCallDelta, Finish, Usage, then Done.

        Failures go to the model's fallback policy: retries are invisible;
        when another model takes over, a :class:`Fallback` event comes first,
        so text from two models is never spliced without a marker.
        ``response_format`` (a JSON Schema) asks for structured output.
        """
        unified_tools = normalize_tools(tools)
        unified_format = normalize_response_format(response_format)
        msgs = normalize_messages(prompt, messages, system)
        # ``stream``: a model declared without it is refused (or skipped for a
        # fallback that has it) rather than streamed anyway
        needs = ["generate", "stream"] + (["tools"] if unified_tools else []) + (
            ["vision"] if _has_images(msgs) else [])
        chain, switch = chain_for(self.catalog, model, needs)
        if switch is not None:
            yield switch
            self._note_fallback(switch)

        def attempt(plan_: CallPlan, msgs: list[dict[str, Any]]) -> AsyncGenerator[Event, None]:
            request = build_request(
                plan_, messages=msgs, tools=unified_tools, tool_choice=tool_choice,
                max_tokens=max_tokens, temperature=temperature, stop=stop, stream=plan_.operator.stream,
                response_format=unified_format,
            )
            return self._call(plan_, request, extra, msgs, unified_tools)

        async with aclosing(run_chain(
            self.catalog, chain, "generate", needs, msgs,
            policy_for=self._policy, attempt=attempt, on_fallback=self._note_fallback,
        )) as events:
            async for ev in events:
                yield ev

    async def generate(self, model: str, prompt: str | None = None, **kwargs: Any) -> Response:
        """The whole answer: ``.text``, ``.tool_calls``, ``.usage``, ``.cost``, ``.finish_reason``.

        After a :class:`Fallback` mid-answer the text restarts with the new
        model (unless it continues a prefix): ``.text`` holds the final model's
        answer and ``.models`` the path taken.
        """
        text: list[str] = []
        calls = ToolCallBuffer()
        thinking = ReasoningBuffer()
        server_calls = ToolCallBuffer()
        results: list[ServerToolResult] = []
        citations: list[Citation] = []
        usage: Usage | None = None
        finish: str | None = None
        path = [model]
        async with aclosing(self.stream(model, prompt, **kwargs)) as events:
            async for ev in events:
                kind = type(ev)
                if kind is TextDelta:
                    text.append(ev.text)  # type: ignore[attr-defined]
                elif kind is ToolCallDelta:
                    calls.add(ev)  # type: ignore[arg-type]
                elif kind is ReasoningDelta:
                    thinking.add(ev)  # type: ignore[arg-type]
                elif kind is ServerToolCall:
                    server_calls.add(ev)  # type: ignore[arg-type]
                elif kind is ServerToolResult:
                    results.append(ev)  # type: ignore[arg-type]
                elif kind is Citation:
                    citations.append(ev)  # type: ignore[arg-type]
                elif kind is Usage:
                    usage = ev  # type: ignore[assignment]
                elif kind is Finish:
                    finish = ev.reason  # type: ignore[attr-defined]
                elif kind is Fallback:
                    assert isinstance(ev, Fallback)
                    path.append(ev.to_model)
                    calls.clear()
                    thinking.clear()
                    server_calls.clear()
                    results.clear()
                    citations.clear()
                    finish = None
                    if not ev.continued:
                        text.clear()
        schema = normalize_response_format(kwargs.get("response_format"))
        return Response(
            path[-1], "".join(text), calls.calls(), usage, finish, tuple(path),
            schema["schema"] if schema is not None else None,
            reasoning_blocks=thinking.blocks(), server_tool_calls=tuple(server_calls.calls()),
            server_tool_results=tuple(results), citations=tuple(citations),
        )

    async def embed(self, model: str, texts: Sequence[str] | str) -> list[list[float]]:
        """One vector per input text, in input order.

        The same path as :meth:`generate`: fallback chain and policy, limits,
        metrics, usage and cost. ``context_window`` applies to each input.
        """
        inputs = [texts] if isinstance(texts, str) else list(texts)
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise InvalidRequestError(
                    f"input[{i}] must be a string, got {type(text).__name__}", code="BAD_INPUT", model=model
                )
        msgs = [{"role": "user", "content": t} for t in inputs]

        def attempt(plan_: CallPlan, _msgs: list[dict[str, Any]]) -> AsyncGenerator[Event, None]:
            spec = plan_.spec
            if spec.limits.context_window is not None:
                tokenizer = self._tokenizer(spec)
                check_inputs(
                    [tokenizer.count(t) for t in inputs], spec.limits.context_window,
                    tokenizer_name(tokenizer, spec), plan_.context(),
                )
            request = build_request(plan_, input=inputs, stream=False)
            return expect_embeddings(self._call(plan_, request, None, msgs, None), len(inputs), plan_.context())

        vectors: dict[int, list[float]] = {}
        async with aclosing(self._operate(model, "embed", ["embed"], msgs, attempt)) as events:
            async for ev in events:
                if type(ev) is Embedding:
                    vectors[ev.index] = ev.vector
                elif type(ev) is Fallback:
                    vectors.clear()
        return [vectors[i] for i in sorted(vectors)]

    async def call(self, model: str, operator: str, /, **inputs: Any) -> OperatorResult:
        """Call any operator the model's provider declares (``rerank``, ``moderation``, ...).

        ``inputs`` become the unified request the operator's ``request:``
        expression reads (with ``model`` and ``stream`` added); the model needs
        the operator in its capabilities. The same path as :meth:`generate`.
        """
        return collect(model, operator, [ev async for ev in self.call_events(model, operator, **inputs)])

    async def call_events(self, model: str, operator: str, /, **inputs: Any) -> AsyncGenerator[Event, None]:
        """The events of :meth:`call`, as they arrive."""
        msgs = input_messages(inputs)

        def attempt(plan_: CallPlan, msgs: list[dict[str, Any]]) -> AsyncGenerator[Event, None]:
            return self._call(plan_, operator_request(plan_, inputs), None, msgs, None)

        async with aclosing(self._operate(model, operator, [operator], msgs, attempt)) as events:
            async for ev in events:
                yield ev

    async def _operate(
        self,
        model: str,
        operator: str,
        needs: list[str],
        msgs: list[dict[str, Any]],
        attempt: Callable[[CallPlan, list[dict[str, Any]]], AsyncGenerator[Event, None]],
    ) -> AsyncGenerator[Event, None]:
        """Any operator along the model's fallback chain, each attempt through :meth:`_call`."""
        chain, switch = chain_for(self.catalog, model, needs)
        if switch is not None:
            self._note_fallback(switch)
            yield switch
        async with aclosing(run_chain(
            self.catalog, chain, operator, needs, msgs,
            policy_for=self._policy, attempt=attempt, on_fallback=self._note_fallback,
        )) as events:
            async for ev in events:
                yield ev

    # -- chain, limits, accounting -------------------------------------------
    def _note_fallback(self, ev: Fallback) -> None:
        self.totals.fallbacks += 1
        if self.metrics is not None:
            self.metrics.fallback(ev.from_model, ev.to_model, ev.reason)

    def _policy(self, plan_: CallPlan) -> Any:
        return self.plugins.get_fallback_policy(self.policy or plan_.spec.policy)

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
        if limits.context_window is not None and plan_.operator_name == "generate":
            # (embed checks each input against the window; other operators leave it to the provider)
            check_context_window(
                prompt_tokens(), request.get("max_tokens") or 0, limits.context_window,
                tokenizer_name(tokenizer, spec), context,
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
            await acquire_slot(sem, limits.mode, limits.wait_timeout, f"{limits.concurrency} requests already in flight for {plan_.model}", context)
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

    # -- one HTTP exchange ------------------------------------------------------
    async def _send(
        self,
        plan_: CallPlan,
        request: dict[str, Any],
        extra: Mapping[str, Any] | None,
        prompt_tokens: Callable[[], int] | None,
        tokenizer: Any,
    ) -> AsyncGenerator[Event, None]:
        """Request -> transport -> protocol -> exchange -> usage, for one attempt on one model."""
        context = plan_.context()
        compiled = self._compile(plan_)
        outgoing = build_outgoing(plan_, compiled, request, extra, self.plugins, self.env)
        deadline = Deadline(plan_.provider.timeout.total)
        try:
            with map_exceptions(context):
                async with open_stream(self._http(), outgoing, plan_.provider.timeout) as resp:
                    if resp.status_code >= 400:
                        body = await read_capped(resp, MAX_ERROR_BODY)
                        raise compiled.errors.error(
                            resp.status_code, body, context, retry_after(resp.headers.get("retry-after"))
                        )
                    ctype = resp.headers.get("content-type", "")
                    if ctype.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
                        head = (await read_capped(resp, 120))[:120].decode("utf-8", "replace")
                        raise ParseError(
                            f"the server answered an HTML page, not an API response: {head!r}",
                            code="UNEXPECTED_HTML", status=resp.status_code, **context,
                        )
                    name, _why = choose_parser(
                        plan_.operator.parser, self.catalog.protocol, self.plugins,
                        provider=plan_.provider_name, base_url=plan_.provider.base_url, url=plan_.url,
                        content_type=ctype,
                    )
                    budget = plan_.provider.budget
                    exchange = Exchange(
                        self.plugins.get_parser(name, **plan_.operator.parser_options), compiled.rules, context,
                        max_bytes=budget.max_bytes, max_events=budget.max_events, content_type=ctype,
                    )
                    drained = 0
                    async with aclosing(resp.aiter_bytes()) as chunks:  # type: ignore[type-var]
                        async for chunk in chunks:
                            if exchange.stopped:
                                # Read what follows the end marker (usually nothing) so the
                                # connection returns to the pool and httpx's generators end
                                # cleanly; give up on a server that keeps talking.
                                drained += len(chunk)
                                if drained > MAX_DRAIN:
                                    break
                                continue
                            for ev in exchange.feed(chunk):
                                yield ev
                            exchange.raise_error()
                            deadline.check(context)
                    for ev in exchange.close():
                        yield ev
                    exchange.raise_error()
                    usage = settle(exchange.tally, plan_.spec, prompt_tokens, tokenizer)
                    if usage is not None:
                        self.totals.add(usage)
                        yield usage
                    yield Done()
        except ModelError as exc:
            with_context(exc, context)
            _scrub(exc, outgoing.secrets)
            raise


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

    def call(self, model: str, operator: str, /, **inputs: Any) -> OperatorResult:
        """Call any declared operator (see :meth:`Runtime.call`)."""
        return self._call().call(partial(self.runtime.call, model, operator, **inputs))

    def call_events(self, model: str, operator: str, /, **inputs: Any) -> Iterator[Event]:
        """The events of :meth:`call`, as they arrive."""
        return self.iterate(self.runtime.call_events(model, operator, **inputs))

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
