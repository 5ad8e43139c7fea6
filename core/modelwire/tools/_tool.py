"""A tool: a manifest plus the function behind it, and the safe way to call one.

:func:`call_tool` fills defaults, validates inputs and outputs against the
ports, holds the declared resources and runs the function under a timeout.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._context import AgentContext, ToolContext
from ._errors import ToolError, ToolTimeout
from ._manifest import IMPL_PATH, ToolManifest
from ._permissions import Permit, check_permission
from ._ports import validate_ports, with_defaults
from ._resources import ResourceManager
from ._schema import jsonable, structure_inputs

__all__ = [
    "Tool",
    "ToolFn",
    "call_tool",
    "resolve_impl",
]


ToolFn = Callable[..., "Awaitable[Mapping[str, Any]] | Mapping[str, Any] | Any"]


class Tool:
    """A manifest plus the function that implements it.

    The function takes the inputs as keyword arguments (plus ``ctx`` if it
    declares that parameter) and returns a mapping of outputs, or a single
    value when the tool has exactly one output port (``None`` when it has
    none). Sync or async; a sync function runs in a worker thread.

    ``fn`` may be an import path (``package.module:function``), resolved on
    first use; a failure is a ToolError (``TOOL_IMPL_NOT_FOUND``) naming the
    tool, the path and ``origin`` (where the tool was declared).
    Calling the Tool object itself calls the plain function, so a decorated
    function stays usable as a function.
    """

    def __init__(
        self,
        manifest: ToolManifest,
        fn: ToolFn | str,
        *,
        origin: str | None = None,
        wrap_result: bool | None = None,
    ) -> None:
        self.manifest = manifest
        #: where the tool was declared (``file:line``), for error messages
        self.origin = origin
        #: True: the return value is always the single output's value; None: guess
        self.wrap_result = wrap_result
        self.impl = fn if isinstance(fn, str) else None
        self._fn: ToolFn | None = None if isinstance(fn, str) else fn
        self._wants_ctx = False
        self._is_async = False
        # set by the decorator: parameters to structure (dataclasses, enums, ...), outputs to unstructure
        self._structure: dict[str, Any] = {}
        self._jsonable = False
        if self._fn is not None:
            self._inspect(self._fn)

    def _inspect(self, fn: ToolFn) -> None:
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):  # some builtins have no signature
            params = {}  # type: ignore[assignment]
        self._wants_ctx = "ctx" in params
        target = fn.__call__ if not inspect.isroutine(fn) and callable(fn) else fn  # type: ignore[operator]
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def fn(self) -> ToolFn:
        """The function, importing it first if the tool names it by path."""
        if self._fn is None:
            fn = resolve_impl(self.impl or "", tool=self.name, origin=self.origin)
            self._inspect(fn)
            self._fn = fn
        return self._fn

    @property
    def is_async(self) -> bool:
        self.fn  # noqa: B018 - resolve first
        return self._is_async

    async def call(self, inputs: Mapping[str, Any], ctx: ToolContext | None = None) -> dict[str, Any]:
        """Run the function (no validation here: see :func:`call_tool`).

        Exceptions from the function propagate as they are; :func:`call_tool`
        wraps them in a ToolError.
        """
        import anyio

        fn = self.fn
        ctx = ctx if ctx is not None else ToolContext(self.manifest)
        kwargs = dict(inputs)
        if self._structure:
            kwargs = structure_inputs(kwargs, self._structure)
        if self._wants_ctx:
            kwargs["ctx"] = ctx
        if self._is_async:
            result = await typing.cast("Awaitable[Any]", fn(**kwargs))
        else:
            # A hung sync function cannot be interrupted: on cancellation the
            # caller moves on and the thread finishes on its own.
            result = await anyio.to_thread.run_sync(
                functools.partial(fn, **kwargs), abandon_on_cancel=True
            )
        if self._jsonable:
            result = jsonable(result)
        return self._outputs(result)

    def _outputs(self, result: Any) -> dict[str, Any]:
        outputs = self.manifest.outputs
        if not outputs and result is None:
            return {}
        if len(outputs) == 1 and (
            self.wrap_result or (
                self.wrap_result is None
                and not (isinstance(result, Mapping) and outputs[0].name in result)
            )
        ):
            return {outputs[0].name: result}
        if not isinstance(result, Mapping):
            names = ", ".join(p.name for p in outputs) or "none"
            raise ToolError(
                f"tool {self.name!r} returned {type(result).__name__}, expected a mapping of its outputs ({names})",
                code="TOOL_BAD_OUTPUT", tool=self.name,
            )
        return dict(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def resolve_impl(path: str, *, tool: str, origin: str | None = None) -> ToolFn:
    """Import ``package.module:attr.attr`` and return the callable found there."""
    where = f" ({origin})" if origin else ""
    if not IMPL_PATH.fullmatch(path):
        raise ToolError(
            f"tool {tool!r}: impl {path!r}{where} must look like package.module:function",
            code="TOOL_IMPL_NOT_FOUND", tool=tool,
        )
    module_name, _, attr_path = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ToolError(
            f"tool {tool!r}: cannot import {module_name!r} for impl {path!r}{where}: "
            f"{type(exc).__name__}: {exc}",
            code="TOOL_IMPL_NOT_FOUND", tool=tool,
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ToolError(
                f"tool {tool!r}: impl {path!r}{where}: {module_name} has no attribute {attr_path!r}",
                code="TOOL_IMPL_NOT_FOUND", tool=tool,
            ) from None
    if isinstance(obj, Tool):  # the impl is itself a decorated function
        return obj.fn
    if not callable(obj):
        raise ToolError(
            f"tool {tool!r}: impl {path!r}{where} is a {type(obj).__name__}, not a function",
            code="TOOL_IMPL_NOT_FOUND", tool=tool,
        )
    return typing.cast(ToolFn, obj)


async def call_tool(
    tool: Tool,
    inputs: Mapping[str, Any],
    ctx: ToolContext | AgentContext | None = None,
    *,
    timeout: float | None = None,
    resources: ResourceManager | None = None,
    validate: bool = True,
    permit: Permit | None = None,
) -> dict[str, Any]:
    """Call a tool the safe way and return its outputs.

    1. fills input defaults and validates the inputs (``TOOL_BAD_INPUT``);
       if the tool declares permissions, asks ``permit`` (see
       :mod:`~modelwire.tools._permissions`; ``TOOL_PERMISSION_DENIED``);
    2. acquires the resources the manifest declares from ``resources`` (a
       temporary manager, closed after the call, if none is given), and
       releases them whatever happens;
    3. runs the function under ``timeout`` seconds (``TOOL_TIMEOUT``); an
       exception from it becomes a ToolError ``TOOL_FAILED`` with the cause
       chained (a ToolError it raises passes through);
    4. validates the outputs (``TOOL_BAD_OUTPUT`` naming port and JSON path).

    ``ctx`` carries the session: an :class:`AgentContext`, or a
    :class:`ToolContext` whose ``agent`` (and any extra ``resources``) are
    used. Cancellation propagates unchanged.
    """
    import anyio

    manifest = tool.manifest
    agent: AgentContext
    extra: dict[str, Any] = {}
    if isinstance(ctx, ToolContext):
        agent, extra = ctx.agent, dict(ctx.resources)
    elif isinstance(ctx, AgentContext):
        agent = ctx
    else:
        agent = AgentContext()
    values = with_defaults(manifest, inputs) if isinstance(inputs, Mapping) else inputs
    if validate:
        validate_ports(manifest, values, "input")
    await check_permission(permit, tool.name, manifest.permissions, values)
    if manifest.resources and resources is None:
        async with ResourceManager() as temporary:
            return await call_tool(tool, values, ToolContext(manifest, extra, agent), timeout=timeout, resources=temporary, validate=False)
    try:
        with anyio.fail_after(timeout):
            if manifest.resources:
                assert resources is not None
                async with resources.acquire(manifest) as acquired:
                    call_ctx = ToolContext(manifest, {**extra, **acquired}, agent)
                    outputs = await _run(tool, values, call_ctx)
                    if validate:
                        validate_ports(manifest, outputs, "output")
                    return outputs
            outputs = await _run(tool, values, ToolContext(manifest, extra, agent))
    except TimeoutError:
        if timeout is None:  # pragma: no cover - only fail_after raises it here
            raise
        raise ToolTimeout(
            f"tool {tool.name!r} did not finish within {timeout:g} s", tool=tool.name
        ) from None
    if validate:
        validate_ports(manifest, outputs, "output")
    return outputs


async def _run(tool: Tool, inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
    try:
        return await tool.call(inputs, ctx)
    except ToolError as exc:
        if getattr(exc, "tool", None) is None:
            exc.tool = tool.name
        raise
    except Exception as exc:
        raise ToolError(
            f"tool {tool.name!r} failed: {type(exc).__name__}: {exc}", code="TOOL_FAILED", tool=tool.name
        ) from exc
