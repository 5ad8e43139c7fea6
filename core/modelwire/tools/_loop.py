"""The model tool-calling loop: :func:`run_tools` (and :func:`run_tools_sync`).

One step is one model call: stream its events through, assemble the tool
calls it streamed (:class:`ToolCallDelta` pieces by ``index``), run them
(several at once in an anyio task group when the model asks for several),
append the assistant message (its reasoning blocks, signatures included,
then its tool calls) and one tool message per call to the conversation, and call the model again. The loop ends when the model
answers without tool calls (:class:`ToolLoopDone`), or raises
:class:`LimitExceededError` ``MAX_STEPS`` when the ``max_steps``-th answer
still asks for tools (those calls are not run: nobody would read them).

Tools reach the model as unified tool specs (``ToolManifest.as_model_tool()``),
which every provider manifest maps to its own shape; tool results go back as
unified ``{role: tool, tool_call_id, name, content}`` messages, content being
the JSON text of the outputs, mapped the same way. No provider is named here.

Bad input from the model (an unknown tool, arguments that are not a JSON
object or break the tool's input ports) and failing tools (an exception, a
timeout, outputs that break the output ports) become an error result fed
back to the model, ``{"error": "..."}``, or with ``on_tool_error="raise"``
a :class:`ToolError` (other calls of the step are cancelled). So does a
tool the host's ``permit`` check denies (``TOOL_PERMISSION_DENIED``).

Structured concurrency: the generator never yields inside a task group or a
cancel scope (the PEP 789 hazard), so the results of one step come out
together once all its calls have finished; a consumer that stops early
(``aclosing`` + ``break``, or cancelling its scope while tools run) cancels
the running tools and the HTTP stream, and nothing outlives the call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._errors import InvalidRequestError, LimitExceededError
from .._events import Event, Fallback, ReasoningDelta, TextDelta, ToolCall, ToolCallDelta
from .._runtime.client import ReasoningBuffer, ToolCallBuffer, call_message
from .._runtime.request import normalize_messages
from ._context import AgentContext
from ._errors import ToolError
from ._permissions import Permit
from ._ports import validate_ports, with_defaults
from ._registry import ToolRegistry
from ._tool import Tool, call_tool

if TYPE_CHECKING:
    from .._runtime.client import Runtime, SyncRuntime

__all__ = ["ToolLoopDone", "ToolResult", "ToolStarted", "run_tools", "run_tools_sync"]

@attrs.frozen(slots=True)
class ToolStarted(Event):
    """The loop handles one tool call the model made (emitted for every call, unknown tools too).

    ``arguments`` is the JSON text exactly as the model sent it; ``step`` is
    the model call (from 1) that asked for it.
    """

    call_id: str
    name: str
    arguments: str
    step: int = 1
    type = "tool_started"


@attrs.frozen(slots=True)
class ToolResult(Event):
    """What one tool call gave: ``output`` (the outputs by port) or ``error`` (a message) and its ``code``.

    The same content goes back to the model: the outputs as JSON, or
    ``{"error": error}``.
    """

    call_id: str
    name: str
    output: dict[str, Any] | None = None
    error: str | None = None
    code: str | None = None
    step: int = 1
    type = "tool_result"


@attrs.frozen(slots=True)
class ToolLoopDone(Event):
    """The model answered without tool calls: the loop is over.

    ``steps`` model calls were made; ``messages`` is the whole conversation
    in the unified shape (the input, each assistant turn with its tool calls,
    the tool results and the final answer), ready to continue.
    """

    steps: int
    messages: list[dict[str, Any]]
    type = "tool_loop_done"


@attrs.define
class _Prepared:
    """One call, checked: the tool and its inputs, or why it cannot run."""

    call_id: str
    name: str
    arguments: str
    tool: Tool | None = None
    inputs: dict[str, Any] | None = None
    error: ToolError | None = None


@attrs.define
class _Outcome:
    output: dict[str, Any] | None = None
    error: ToolError | None = None
    #: what goes back to the model: the outputs as JSON text, or {"error": ...}
    content: str = ""

    def __attrs_post_init__(self) -> None:
        if self.error is not None:
            self.content = json.dumps({"error": self.error.message}, ensure_ascii=False)


def _registry(tools: Any) -> tuple[ToolRegistry, bool]:
    """The tools as a registry, and whether the loop made it (and so closes its resources).

    A registry is used as it is; a sequence may mix tools, ``@tool`` functions,
    plain typed functions (made into tools) and registries.
    """
    if isinstance(tools, ToolRegistry):
        return tools, False
    if isinstance(tools, (str, bytes, Mapping)) or callable(tools) or not isinstance(tools, Iterable):
        tools = [tools]
    registry = ToolRegistry()
    for i, item in enumerate(tools):
        if isinstance(item, ToolRegistry):
            for t in item:
                registry.register(t)
        elif isinstance(item, Tool) or callable(item):
            registry.register(item)
        else:
            raise InvalidRequestError(
                f"tools[{i}] is {type(item).__name__}, not a Tool, a function or a ToolRegistry",
                code="BAD_TOOL",
            )
    return registry, True


def _timeout_for(name: str, tool_timeout: float | Mapping[str, float] | None) -> float | None:
    if tool_timeout is None or isinstance(tool_timeout, (int, float)):
        return tool_timeout
    return tool_timeout.get(name)


def _assemble(pieces: ToolCallBuffer, step: int) -> list[ToolCall]:
    """Deltas by index -> whole calls; a call without an id gets ``call_<step>_<n>``."""
    return [
        call if call.id else attrs.evolve(call, id=f"call_{step}_{n}") for n, call in enumerate(pieces.calls())
    ]


def _echo_arguments(arguments: str) -> str:
    """The arguments as the assistant turn repeats them: a JSON object, else ``{}``.

    Provider mappings parse them (``from_json``) into an object; text that is
    not one would break the next request, so it is replaced; the tool result
    says what was wrong.
    """
    try:
        value = json.loads(arguments)
    except (ValueError, RecursionError):
        return "{}"
    return arguments if isinstance(value, dict) else "{}"


def _prepare(call: ToolCall, registry: ToolRegistry) -> _Prepared:
    call_id = call.id or ""
    name = call.name or ""
    out = _Prepared(call_id, name, call.arguments)
    if not name or name not in registry:
        available = ", ".join(registry.names()) or "none"
        what = f"no tool named {name!r}" if name else "a tool call without a tool name"
        out.error = ToolError(f"{what}; available tools: {available}", code="TOOL_NOT_FOUND", tool=name or None)
        return out
    tool = out.tool = registry.get(name)
    text = call.arguments
    try:
        inputs = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError) as exc:  # a model's call is hostile input: nested too deep too
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        out.error = ToolError(
            f"tool {name!r}: the arguments are not valid JSON ({problem}): {text[:200]!r}",
            code="TOOL_BAD_ARGUMENTS", tool=name,
        )
        return out
    if not isinstance(inputs, dict):
        out.error = ToolError(
            f"tool {name!r}: the arguments must be a JSON object, got {type(inputs).__name__}: {text[:200]!r}",
            code="TOOL_BAD_ARGUMENTS", tool=name,
        )
        return out
    try:
        validate_ports(tool.manifest, with_defaults(tool.manifest, inputs), "input")
    except ToolError as exc:
        out.error = exc
        return out
    out.inputs = inputs
    return out


async def _run_one(
    p: _Prepared, registry: ToolRegistry, agent: AgentContext, timeout: float | None, permit: Permit | None
) -> _Outcome:
    """Run one checked call through ``call_tool``; every failure (but cancellation) becomes a ToolError."""
    if p.error is not None or p.tool is None or p.inputs is None:
        return _Outcome(error=p.error)
    tool = p.tool
    # Tools that declare resources share the registry's pools (opened on first use).
    resources = registry.resources if tool.manifest.resources else None
    try:
        outputs = await call_tool(tool, p.inputs, agent, timeout=timeout, resources=resources, permit=permit)
    except ToolError as exc:
        return _Outcome(error=exc)
    except Exception as exc:
        err = ToolError(f"tool {p.name!r} failed: {type(exc).__name__}: {exc}", code="TOOL_FAILED", tool=p.name)
        err.__cause__ = exc
        return _Outcome(error=err)
    try:
        # The outputs go back to the model as JSON (values JSON lacks, like dates, as text).
        content = json.dumps(outputs, ensure_ascii=False, default=str)
    except ValueError as exc:  # a circular structure
        err = ToolError(f"tool {p.name!r}: outputs are not JSON-serialisable: {exc}", code="TOOL_BAD_OUTPUT", tool=p.name)
        err.__cause__ = exc
        return _Outcome(error=err)
    return _Outcome(output=outputs, content=content)


async def _execute(
    prepared: list[_Prepared],
    registry: ToolRegistry,
    agent: AgentContext,
    tool_timeout: float | Mapping[str, float] | None,
    parallel: bool,
    raising: bool,
    permit: Permit | None = None,
) -> list[_Outcome]:
    """Run a step's calls, all at once or in order; in raise mode the first failure cancels the rest."""
    outcomes = [_Outcome(error=p.error) for p in prepared]
    failures: list[ToolError] = []

    async def run(i: int, scope: anyio.CancelScope) -> None:
        p = prepared[i]
        outcome = outcomes[i] = await _run_one(p, registry, agent, _timeout_for(p.name, tool_timeout), permit)
        if raising and outcome.error is not None and not failures:
            failures.append(outcome.error)
            scope.cancel()

    runnable = [i for i, p in enumerate(prepared) if p.error is None]
    if parallel and len(runnable) > 1:
        async with anyio.create_task_group() as tg:
            for i in runnable:
                tg.start_soon(run, i, tg.cancel_scope)
    else:
        with anyio.CancelScope() as scope:
            for i in runnable:
                await run(i, scope)
    if failures:
        raise failures[0]
    return outcomes


async def run_tools(
    runtime: Runtime,
    model: str,
    prompt: str | None = None,
    *,
    messages: Sequence[Mapping[str, Any]] | None = None,
    system: str | None = None,
    tools: Any,
    max_steps: int = 10,
    ctx: AgentContext | None = None,
    on_tool_error: str = "feed_back",
    parallel: bool = True,
    tool_timeout: float | Mapping[str, float] | None = None,
    permit: Permit | None = None,
    **stream_kwargs: Any,
) -> AsyncGenerator[Event, None]:
    """The model tool-calling loop: stream, run the tools the model calls, feed results back, repeat.

    ``tools``: :class:`Tool` objects, ``@tool`` functions or a
    :class:`ToolRegistry` (or a list mixing them). Streams the model's
    events as they come, then :class:`ToolStarted` and :class:`ToolResult`
    per call, and ends with :class:`ToolLoopDone` (the conversation) when
    the model answers without tool calls; still asking after ``max_steps``
    model calls raises :class:`~modelwire.LimitExceededError` ``MAX_STEPS``.
    Unknown tools, bad arguments and failing or slow tools (``tool_timeout``:
    seconds, or seconds by tool name) are fed back as ``{"error": ...}``, or
    raise :class:`ToolError` with ``on_tool_error="raise"``. ``ctx`` is the
    :class:`AgentContext` the tools see. ``permit`` is asked before a
    tool that declares permissions runs (see :func:`grant`); a denial is
    fed back as ``{"error": ...}`` with code ``TOOL_PERMISSION_DENIED`` (or
    raised with ``on_tool_error="raise"``). Other keywords go to
    :meth:`Runtime.stream <modelwire.Runtime.stream>`. Use it under
    ``contextlib.aclosing``. See docs/tool-loop.md.
    """
    if on_tool_error not in ("feed_back", "raise"):
        raise InvalidRequestError(
            f"on_tool_error must be 'feed_back' or 'raise', got {on_tool_error!r}", code="BAD_ARGUMENT"
        )
    if not isinstance(max_steps, int) or max_steps < 1:
        raise InvalidRequestError(f"max_steps must be a positive integer, got {max_steps!r}", code="BAD_ARGUMENT")
    registry, owned = _registry(tools)
    specs = [t.manifest.as_model_tool() for t in registry]
    conversation = normalize_messages(prompt, messages, system)
    agent = ctx if ctx is not None else AgentContext()
    raising = on_tool_error == "raise"
    try:
        for step in range(1, max_steps + 1):
            text: list[str] = []
            pieces = ToolCallBuffer()
            thinking = ReasoningBuffer()
            async with aclosing(
                runtime.stream(model, messages=conversation, tools=specs or None, **stream_kwargs)
            ) as events:
                async for ev in events:
                    if isinstance(ev, TextDelta):
                        text.append(ev.text)
                    elif isinstance(ev, ToolCallDelta):
                        pieces.add(ev)
                    elif isinstance(ev, ReasoningDelta):
                        thinking.add(ev)
                    elif isinstance(ev, Fallback):
                        # Another model answers from here: its calls replace the old ones,
                        # and the old reasoning (signed for that model) is not sent back.
                        pieces.clear()
                        thinking.clear()
                        if not ev.continued:
                            text.clear()
                    yield ev
            calls = _assemble(pieces, step)
            answer = "".join(text)
            # Reasoning goes back with the turn (signatures included): Anthropic
            # refuses a thinking + tool_use turn that lost its thinking block.
            reasoning = [b.to_message_part() for b in thinking.blocks()]
            if not calls:
                conversation.append(
                    {"role": "assistant", "content": answer, **({"reasoning": reasoning} if reasoning else {})}
                )
                yield ToolLoopDone(step, list(conversation))
                return
            if step == max_steps:
                raise LimitExceededError(
                    f"the model still asked for tools ({', '.join(str(c.name) for c in calls)}) after "
                    f"max_steps={max_steps} model calls",
                    code="MAX_STEPS", model=model, steps=step, messages=list(conversation), tool_calls=calls,
                )
            conversation.append({
                "role": "assistant",
                "content": answer or None,
                **({"reasoning": reasoning} if reasoning else {}),
                "tool_calls": [call_message(c, _echo_arguments(c.arguments)) for c in calls],
            })
            prepared = [_prepare(c, registry) for c in calls]
            if raising:
                for p in prepared:
                    if p.error is not None:
                        raise p.error
            for p in prepared:
                yield ToolStarted(p.call_id, p.name, p.arguments, step)
            outcomes = await _execute(prepared, registry, agent, tool_timeout, parallel, raising, permit)
            for p, outcome in zip(prepared, outcomes, strict=True):
                err = outcome.error
                yield ToolResult(
                    p.call_id, p.name, outcome.output,
                    err.message if err is not None else None, err.code if err is not None else None, step,
                )
                conversation.append(
                    {"role": "tool", "tool_call_id": p.call_id, "name": p.name, "content": outcome.content}
                )
    finally:
        if owned:  # resource pools the loop's own registry opened
            with anyio.CancelScope(shield=True):
                await registry.aclose()


def run_tools_sync(runtime: SyncRuntime, model: str, prompt: str | None = None, **kwargs: Any) -> Iterator[Event]:
    """Blocking :func:`run_tools` over a :class:`~modelwire.SyncRuntime` (sync tools run in worker threads)."""
    return runtime.iterate(run_tools(runtime.runtime, model, prompt, **kwargs))
