"""Tools: manifests (ports, capabilities, permissions, resources), the
callable behind them, a registry, and the per-call context.

A tool is data plus a function. The manifest says what goes in and out
(ports with JSON Schema), what the tool may do (capabilities, permissions)
and what it needs (resources, acquired per call by the resource manager).
Three ways to declare one: YAML (:func:`load_tools`), a Python builder
(:class:`ToolBuilder`), and the :func:`tool` decorator, which derives the
manifest from a typed function's signature and docstring.

Every manifest is checked when it is registered (required fields, duplicate
ports, well-formed JSON Schema, examples that fit their schema, known
resource kinds); :func:`call_tool` checks inputs and outputs on each call,
runs the function under a timeout and holds the tool's resources for the
call. Errors are :class:`ToolError` (codes ``TOOL_BAD_INPUT``,
``TOOL_BAD_OUTPUT``, ``TOOL_FAILED``, ``TOOL_TIMEOUT``, ...) naming the tool,
the port and the JSON path, or a :class:`ManifestError` listing every
problem of a manifest with its file, field path and line.

Shared vocabulary for the orchestrator (``_pipeline``) and the model
tool-calling loop (``Runtime.run_tools``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import importlib
import inspect
import json
import os
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, overload

import attrs

from .._errors import InvalidRequestError, ManifestError, ManifestIssue, ModelError, NotFoundError

if TYPE_CHECKING:
    from .._manifest.yaml import Located
    from ._resources import ResourceManager

__all__ = [
    "AgentContext",
    "Port",
    "ResourceSpec",
    "Tool",
    "ToolBuilder",
    "ToolContext",
    "ToolError",
    "ToolManifest",
    "ToolRegistry",
    "ToolTimeout",
    "call_tool",
    "check_tool_manifest",
    "load_tools",
    "parse_tools",
    "read_tools",
    "schema_for",
    "tool",
    "validate_ports",
]

PathT = tuple["str | int", ...]

#: What providers accept as a function name (OpenAI, Anthropic and Gemini alike).
TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
PORT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
IMPL_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
FORMATS = ("json", "text", "binary")


# -- errors ----------------------------------------------------------------------


class ToolError(ModelError):
    """A tool failed, or its input or output broke its manifest.

    Names the ``tool``, the ``port`` and the JSON ``path`` where known; for a
    pipeline also the ``step`` and the ``attempts`` made. Codes:
    ``TOOL_FAILED`` (the function raised; the cause is chained),
    ``TOOL_BAD_INPUT``, ``TOOL_BAD_OUTPUT``, ``TOOL_TIMEOUT``,
    ``TOOL_IMPL_NOT_FOUND``, ``TOOL_SIGNATURE``, ``RESOURCE_FAILED``,
    ``RESOURCES_CLOSED``.
    """

    kind = "invalid_request"
    default_code = "TOOL_FAILED"

    tool: str | None
    port: str | None
    path: str | None
    step: str | None
    attempts: int | None

    def __init__(
        self,
        message: str,
        *,
        tool: str | None = None,
        port: str | None = None,
        path: str | None = None,
        step: str | None = None,
        attempts: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, tool=tool, port=port, path=path, step=step, attempts=attempts, **kw)

    def where(self) -> str:
        parts = [super().where()]
        for name in ("step", "tool", "port", "path", "resource", "attempts"):
            value = getattr(self, name, None)
            if value is not None:
                parts.append(f"{name}={value}")
        return " ".join(p for p in parts if p)


class ToolTimeout(ToolError):
    """A tool call ran past its timeout and was cancelled (``TOOL_TIMEOUT``)."""

    kind = "timeout"
    default_code = "TOOL_TIMEOUT"


# -- the manifest ----------------------------------------------------------------


@attrs.frozen
class Port:
    """One named input or output of a tool.

    ``format`` says how the value travels: ``json`` (any JSON value, checked
    against ``schema``), ``text`` (a string, checked against ``schema``) or
    ``binary`` (bytes; the schema is documentation only). An input is
    required unless its schema has a ``default`` or ``required`` says
    otherwise.
    """

    name: str
    #: JSON Schema of the value (``{"type": "string"}``); empty accepts anything
    schema: dict[str, Any] = attrs.field(factory=dict)
    format: Literal["json", "text", "binary"] = "json"
    type_name: str | None = None
    description: str | None = None
    examples: list[Any] = attrs.field(factory=list)
    #: None: required unless the schema has a ``default``
    required: bool | None = None

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return not (isinstance(self.schema, Mapping) and "default" in self.schema)


@attrs.frozen
class ResourceSpec:
    """A resource a tool needs for each call (``http_client``, ``sqlite``, ``file_cache``, ...)."""

    name: str
    kind: str
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ToolManifest:
    """What a tool takes, gives, may do and needs."""

    name: str
    description: str = ""
    inputs: list[Port] = attrs.field(factory=list)
    outputs: list[Port] = attrs.field(factory=list)
    capabilities: list[str] = attrs.field(factory=list)
    permissions: list[str] = attrs.field(factory=list)
    resources: list[ResourceSpec] = attrs.field(factory=list)

    def input_schema(self) -> dict[str, Any]:
        """The inputs as one JSON-Schema object: what a model sees as the tool's parameters."""
        return {
            "type": "object",
            "properties": {
                p.name: {**p.schema, **({"description": p.description} if p.description else {})}
                for p in self.inputs
            },
            "required": [p.name for p in self.inputs if p.is_required],
        }

    def as_model_tool(self) -> dict[str, Any]:
        """The unified tool spec (``{name, description, parameters}``) a provider manifest maps."""
        return {"name": self.name, "description": self.description, "parameters": self.input_schema()}

    def port(self, name: str, direction: Literal["input", "output"] = "input") -> Port:
        """The input (or output) port called ``name``."""
        for p in self.inputs if direction == "input" else self.outputs:
            if p.name == name:
                return p
        raise NotFoundError(f"tool {self.name!r} has no {direction} port {name!r}", code="PORT_NOT_FOUND")


# -- context ---------------------------------------------------------------------


class AgentContext:
    """Per-session state visible to tools: ``session().get/set`` and ``variables()``.

    One context per session; nothing is shared across sessions: each context
    owns its session store, and ``variables`` are copied in. Tools see it as
    ``ctx.agent``. ``variables()`` are what the application passes in (user,
    locale, ...); ``session()`` is what tools remember between calls.
    """

    def __init__(self, session_id: str = "default", variables: Mapping[str, Any] | None = None) -> None:
        self.session_id = session_id
        self._session: dict[str, Any] = {}
        self._variables = dict(variables or {})

    def session(self) -> _SessionState:
        return _SessionState(self._session)

    def variables(self) -> dict[str, Any]:
        return self._variables

    def __repr__(self) -> str:
        return f"AgentContext(session_id={self.session_id!r})"


class _SessionState:
    """The key-value store of one session."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def as_dict(self) -> dict[str, Any]:
        """A copy of everything stored."""
        return dict(self._data)


@attrs.define
class ToolContext:
    """What one tool call receives besides its inputs (as its ``ctx`` parameter)."""

    tool: ToolManifest
    #: resource name -> object (a sqlite3 connection, an httpx client, a FileCache, ...)
    resources: dict[str, Any] = attrs.Factory(dict)
    agent: AgentContext = attrs.Factory(AgentContext)

    def session(self) -> _SessionState:
        """Shortcut for ``ctx.agent.session()``."""
        return self.agent.session()

    def variables(self) -> dict[str, Any]:
        """Shortcut for ``ctx.agent.variables()``."""
        return self.agent.variables()


# -- the tool --------------------------------------------------------------------

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
            kwargs = _structure_inputs(kwargs, self._structure)
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
            result = _jsonable(result)
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


# -- the registry ----------------------------------------------------------------


class ToolRegistry:
    """Tools by name; registering a name twice is an error.

    Registering checks the manifest (:func:`check_tool_manifest`), including
    that each resource kind is one the registry's resource manager knows.
    ``resources`` is the :class:`ResourceManager` whose pools calls through
    :meth:`call` share; without one the registry makes its own on first use
    and closes it in :meth:`aclose`.
    """

    def __init__(self, tools: Iterable[Tool] = (), *, resources: ResourceManager | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._resources = resources
        self._owns_resources = resources is None
        for t in tools:
            self.register(t)

    @property
    def resources(self) -> ResourceManager:
        if self._resources is None:
            from ._resources import ResourceManager

            self._resources = ResourceManager()
        return self._resources

    def register(self, tool: Tool | Callable[..., Any]) -> Tool:
        """Check and add a tool (a plain typed function is turned into one by :func:`tool`)."""
        t = tool if isinstance(tool, Tool) else _decorate(tool)
        if t.name in self._tools:
            raise InvalidRequestError(f"tool {t.name!r} is registered twice", code="TOOL_DUPLICATE")
        kinds = self._resources.kinds() if self._resources is not None else None
        issues = check_tool_manifest(t.manifest, resource_kinds=kinds, origin=t.origin, check_kinds=True)
        if t._fn is not None:
            issues.extend(_signature_issues(t.manifest, t._fn, t.origin))
        if issues:
            raise ManifestError(issues=issues, code="TOOL_MANIFEST_INVALID", tool=t.name)
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise NotFoundError(
                f"no tool named {name!r}; registered: {', '.join(sorted(self._tools)) or 'none'}",
                code="TOOL_NOT_FOUND", name=name,
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def with_capability(self, tag: str) -> list[Tool]:
        """The tools whose manifest lists capability ``tag``."""
        return [t for t in self._tools.values() if tag in t.manifest.capabilities]

    async def call(
        self,
        name: str,
        inputs: Mapping[str, Any],
        ctx: ToolContext | AgentContext | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """:func:`call_tool` on the tool called ``name``, with this registry's resources."""
        return await call_tool(self.get(name), inputs, ctx, timeout=timeout, resources=self.resources)

    async def aclose(self) -> None:
        """Close the resource pools, if the registry made the manager."""
        manager, self._resources = self._resources, None
        if manager is not None and self._owns_resources:
            await manager.aclose()

    async def __aenter__(self) -> ToolRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# -- validation --------------------------------------------------------------------


def _json_path(parts: Iterable[Any]) -> str:
    """``["a", 0, "b c"]`` -> ``$.a[0]['b c']``."""
    out = "$"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(p)):
            out += f".{p}"
        else:
            out += f"[{str(p)!r}]"
    return out


@functools.lru_cache(maxsize=1024)
def _validator_for(schema_text: str) -> Any:
    import jsonschema

    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _validator(schema: Mapping[str, Any]) -> Any:
    return _validator_for(json.dumps(schema, sort_keys=True, default=repr))


def _first_error(schema: Mapping[str, Any], value: Any) -> tuple[str, str] | None:
    """(JSON path, message) of the most relevant error, or None."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(value))
    if error is None:
        return None
    return _json_path(error.absolute_path), error.message


def _format_problem(port: Port, value: Any) -> str | None:
    if port.format == "text" and not isinstance(value, str):
        return f"expected text (a string), got {type(value).__name__}"
    if port.format == "binary" and not isinstance(value, (bytes, bytearray, memoryview)):
        return f"expected binary data (bytes), got {type(value).__name__}"
    return None


def validate_ports(manifest: ToolManifest, values: Mapping[str, Any], direction: Literal["input", "output"]) -> None:
    """Check values against a tool's input or output ports; ToolError names tool, port and JSON path.

    An unknown port, a missing required port, a value of the wrong
    ``format`` or one that breaks its JSON Schema is a ToolError with code
    ``TOOL_BAD_INPUT`` or ``TOOL_BAD_OUTPUT``.
    """
    code = f"TOOL_BAD_{direction.upper()}"
    ports = manifest.inputs if direction == "input" else manifest.outputs
    if not isinstance(values, Mapping):
        raise ToolError(
            f"{direction}s of tool {manifest.name!r} must be a mapping, got {type(values).__name__}",
            code=code, tool=manifest.name,
        )
    known = {p.name for p in ports}
    for extra in sorted(set(values) - known, key=str):
        raise ToolError(
            f"tool {manifest.name!r} has no {direction} port {extra!r} (ports: {', '.join(sorted(known)) or 'none'})",
            code=code, tool=manifest.name, port=str(extra),
        )
    for port in ports:
        if port.name not in values:
            if (direction == "input" and not port.is_required) or port.required is False:
                continue
            raise ToolError(
                f"tool {manifest.name!r}: {direction} port {port.name!r} is missing",
                code=code, tool=manifest.name, port=port.name,
            )
        value = values[port.name]
        problem = _format_problem(port, value)
        if problem is not None:
            raise ToolError(
                f"tool {manifest.name!r}: {direction} port {port.name!r} at $: {problem}",
                code=code, tool=manifest.name, port=port.name, path="$",
            )
        if not port.schema or port.format == "binary":
            continue
        found = _first_error(port.schema, value)
        if found is not None:
            path, message = found
            raise ToolError(
                f"tool {manifest.name!r}: {direction} port {port.name!r} at {path}: {message}",
                code=code, tool=manifest.name, port=port.name, path=path,
            )


def with_defaults(manifest: ToolManifest, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs plus the schema ``default`` of each input port not given."""
    out = dict(inputs)
    for port in manifest.inputs:
        if port.name not in out and isinstance(port.schema, Mapping) and "default" in port.schema:
            out[port.name] = port.schema["default"]
    return out


def _schema_issues(schema: Any) -> list[tuple[PathT, str]]:
    """Problems of one JSON Schema, each with its path inside the schema."""
    import jsonschema

    if not isinstance(schema, Mapping):
        return [((), f"a JSON Schema must be a mapping, got {type(schema).__name__}")]
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    meta = jsonschema.validators.validator_for(cls.META_SCHEMA)(cls.META_SCHEMA)
    out: list[tuple[PathT, str]] = []
    for error in sorted(meta.iter_errors(schema), key=lambda e: [str(p) for p in e.absolute_path]):
        out.append((tuple(error.absolute_path), f"not a valid JSON Schema: {error.message}"))
    return out


def _problems(
    manifest: ToolManifest, resource_kinds: Mapping[str, Any] | None, check_kinds: bool
) -> list[tuple[PathT, str]]:
    """Every problem of a manifest, with its path relative to the tool."""
    out: list[tuple[PathT, str]] = []
    name = manifest.name
    if not isinstance(name, str) or not name:
        out.append((("name",), "required field is missing (a tool needs a name)"))
    elif not TOOL_NAME.fullmatch(name):
        out.append((
            ("name",),
            f"tool name {name!r} is not usable by providers: use letters, digits, _ and -, "
            "starting with a letter or _, at most 64 characters",
        ))
    if not isinstance(manifest.description, str):
        out.append((("description",), "expected a string"))
    for direction, ports in (("inputs", manifest.inputs), ("outputs", manifest.outputs)):
        seen: dict[str, int] = {}
        for index, port in enumerate(ports):
            pname = port.name
            where: PathT = (direction, pname if isinstance(pname, str) and pname else index)
            if not isinstance(pname, str) or not pname:
                out.append(((direction, index, "name"), "required field is missing (a port needs a name)"))
                continue
            if pname in seen:
                out.append((where, f"duplicate {direction[:-1]} port {pname!r} (ports {seen[pname]} and {index})"))
                continue
            seen[pname] = index
            if not PORT_NAME.fullmatch(pname):
                out.append((where, f"port name {pname!r}: use letters, digits, _ and -, starting with a letter or _"))
            if direction == "inputs" and pname == "ctx":
                out.append((where, "'ctx' is reserved for the tool context; rename the input"))
            if port.format not in FORMATS:
                out.append(((*where, "format"), f"expected one of {', '.join(FORMATS)}, got {port.format!r}"))
            schema_problems = _schema_issues(port.schema)
            out.extend(((*where, "schema", *p), m) for p, m in schema_problems)
            if schema_problems or port.format == "binary":
                continue
            if isinstance(port.schema, Mapping) and "default" in port.schema:
                found = _first_error(port.schema, port.schema["default"])
                if found is not None:
                    out.append(((*where, "schema", "default"), f"default does not fit the schema at {found[0]}: {found[1]}"))
            for i, example in enumerate(port.examples):
                problem = _format_problem(port, example)
                found = (("$", problem) if problem else None) or _first_error(port.schema, example)
                if found is not None:
                    out.append(((*where, "examples", i), f"example does not fit the schema at {found[0]}: {found[1]}"))
    for field in ("capabilities", "permissions"):
        tags: list[Any] = getattr(manifest, field)
        for i, tag in enumerate(tags):
            if not isinstance(tag, str) or not tag.strip():
                out.append(((field, i), "expected a non-empty string"))
            elif tags.index(tag) != i:
                out.append(((field, i), f"{tag!r} is listed twice"))
    seen_res: set[str] = set()
    for index, spec in enumerate(manifest.resources):
        if not isinstance(spec.name, str) or not spec.name:
            out.append((("resources", index, "name"), "required field is missing (a resource needs a name)"))
            continue
        where = ("resources", spec.name)
        if spec.name in seen_res:
            out.append((where, f"duplicate resource {spec.name!r}"))
            continue
        seen_res.add(spec.name)
        if not isinstance(spec.kind, str) or not spec.kind:
            out.append(((*where, "kind"), "required field is missing (a resource needs a kind)"))
            continue
        if not check_kinds:
            continue
        from ._resources import builtin_kinds, option_problems

        kinds = resource_kinds if resource_kinds is not None else builtin_kinds()
        if spec.kind not in kinds:
            known = ", ".join(sorted(kinds)) or "none"
            out.append((
                (*where, "kind"),
                f"tool {name!r}: resource {spec.name!r} has unknown kind {spec.kind!r}; known: {known}",
            ))
            continue
        for option, message in option_problems(kinds[spec.kind], spec.options):
            out.append(((*where, "options", *((option,) if option else ())), message))
    return out


def _origin_parts(origin: str | None) -> tuple[str | None, int | None]:
    if not origin:
        return None, None
    file, sep, line = origin.rpartition(":")
    if sep and line.isdigit():
        return file, int(line)
    return origin, None


def _format_issue_path(path: PathT) -> str:
    from .._manifest.yaml import format_path

    return format_path(path)


def check_tool_manifest(
    manifest: ToolManifest,
    *,
    resource_kinds: Mapping[str, Any] | None = None,
    origin: str | None = None,
    check_kinds: bool = True,
) -> list[ManifestIssue]:
    """Every problem of one manifest as issues (``tools.NAME.inputs.city.schema.type``).

    Checks: a name providers accept, unique port and resource names, port
    formats, well-formed JSON Schemas (the draft named by ``$schema``, else
    2020-12), defaults and examples that fit their schema, and (with
    ``check_kinds``) resource kinds known to ``resource_kinds`` (default:
    the built-in kinds) with valid options. ``origin`` (``file:line``)
    locates the issues.
    """
    file, line = _origin_parts(origin)
    return [
        ManifestIssue(message, file=file or f"<tool {manifest.name}>", path=_format_issue_path(("tools", manifest.name, *path)), line=line)
        for path, message in _problems(manifest, resource_kinds, check_kinds)
    ]


def _signature_issues(manifest: ToolManifest, fn: Any, origin: str | None) -> list[ManifestIssue]:
    """Inputs the function cannot take, or parameters no input fills."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return []
    file, line = _origin_parts(origin)
    out: list[str] = []
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    names = {p.name for p in manifest.inputs}
    for port in manifest.inputs:
        param = params.get(port.name)
        if param is None and not has_var_kw:
            out.append(f"the function takes no parameter {port.name!r} for input {port.name!r}")
        elif param is not None and param.kind is param.POSITIONAL_ONLY:
            out.append(f"parameter {port.name!r} is positional-only; inputs are passed by keyword")
    for param in params.values():
        if param.name == "ctx" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        if param.default is param.empty and param.name not in names:
            out.append(f"parameter {param.name!r} has no default and no input port fills it")
    qual = getattr(fn, "__qualname__", repr(fn))
    return [
        ManifestIssue(f"function {qual}: {m}", file=file or f"<tool {manifest.name}>", path=f"tools.{manifest.name}", line=line)
        for m in out
    ]


def _raise_issues(manifest: ToolManifest, issues: list[ManifestIssue]) -> None:
    if issues:
        raise ManifestError(issues=issues, code="TOOL_MANIFEST_INVALID", tool=manifest.name)


# -- calling -------------------------------------------------------------------------


async def call_tool(
    tool: Tool,
    inputs: Mapping[str, Any],
    ctx: ToolContext | AgentContext | None = None,
    *,
    timeout: float | None = None,
    resources: ResourceManager | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Call a tool the safe way and return its outputs.

    1. fills input defaults and validates the inputs (``TOOL_BAD_INPUT``);
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
    if manifest.resources and resources is None:
        from ._resources import ResourceManager

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


# -- schemas from Python types --------------------------------------------------------


class _Unsupported(Exception):
    pass


_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}


_SET_TYPES = {set, frozenset, collections.abc.Set, collections.abc.MutableSet}
_ARRAY_TYPES = {
    list, collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Iterable,
    collections.abc.Collection, *_SET_TYPES,
}
_OBJECT_TYPES = {dict, collections.abc.Mapping, collections.abc.MutableMapping}


def _is_union(t: Any) -> bool:
    origin = typing.get_origin(t)
    return origin is Union or origin is types.UnionType


def _json_type(values: Sequence[Any]) -> str | None:
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("boolean")
        elif isinstance(v, int):
            kinds.add("integer")
        elif isinstance(v, float):
            kinds.add("number")
        elif isinstance(v, str):
            kinds.add("string")
        elif v is None:
            kinds.add("null")
        else:
            return None
    return kinds.pop() if len(kinds) == 1 else None


def schema_for(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of a Python type annotation.

    str, int, float, bool, None, Any, list / Sequence / set / tuple, dict /
    Mapping (string keys), Optional and unions, Literal, Enum, TypedDict,
    dataclasses and attrs classes; ``Annotated[T, "text"]`` adds a
    description, ``Annotated[T, {...}]`` merges schema keywords. Anything
    else raises TypeError naming the type.
    """
    try:
        return _schema(annotation, ())
    except _Unsupported as exc:
        raise TypeError(str(exc)) from None


def _schema(t: Any, stack: tuple[Any, ...]) -> dict[str, Any]:
    if t is Any or t is object or t is inspect.Parameter.empty:
        return {}
    if t is None:
        t = type(None)
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Annotated:  # first: its metadata may be unhashable
        schema = _schema(args[0], stack)
        for meta in args[1:]:
            if isinstance(meta, str):
                schema["description"] = meta
            elif isinstance(meta, Mapping):
                schema.update(meta)
        return schema
    if isinstance(t, type) and t in _SIMPLE:
        return dict(_SIMPLE[t])
    if _is_union(t):
        members = [_schema(a, stack) for a in args]
        return {"anyOf": members}
    if origin is Literal:
        values = list(args)
        schema = {"enum": values}
        kind = _json_type(values)
        return {"type": kind, **schema} if kind else schema
    if isinstance(t, type) and issubclass(t, enum.Enum):
        values = [m.value for m in t]
        kind = _json_type(values)
        if kind is None:
            raise _Unsupported(f"enum {t.__name__} has values that are not JSON scalars")
        return {"type": kind, "enum": values}
    container = origin if origin is not None else t
    if not isinstance(container, type):
        raise _Unsupported(f"cannot derive a JSON Schema from {_type_label(t)}")
    if container in _ARRAY_TYPES:
        schema = {"type": "array"}
        if args:
            schema["items"] = _schema(args[0], stack)
        if container in _SET_TYPES:
            schema["uniqueItems"] = True
        return schema
    if container is tuple:
        if not args:
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0], stack)}
        if args == ((),):
            return {"type": "array", "maxItems": 0}
        return {
            "type": "array",
            "prefixItems": [_schema(a, stack) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if container in _OBJECT_TYPES:
        schema = {"type": "object"}
        if args:
            if args[0] is not str and args[0] is not Any:
                raise _Unsupported(f"{_type_label(t)}: JSON object keys are strings")
            value = _schema(args[1], stack)
            if value:
                schema["additionalProperties"] = value
        return schema
    if t is bytes:
        raise _Unsupported("bytes is only supported as a whole port (format: binary)")
    if isinstance(t, type) and (typing.is_typeddict(t) or dataclasses.is_dataclass(t) or attrs.has(t)):
        if t in stack:
            raise _Unsupported(f"recursive type {t.__name__} is not supported")
        return _object_schema(t, (*stack, t))
    raise _Unsupported(f"cannot derive a JSON Schema from {_type_label(t)}")


def _object_schema(t: type, stack: tuple[Any, ...]) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(t, include_extras=True)
    except Exception as exc:
        raise _Unsupported(f"cannot read the type hints of {t.__name__}: {exc}") from None
    required: list[str]
    if typing.is_typeddict(t):
        names = list(hints)
        required = [n for n in names if n in getattr(t, "__required_keys__", names)]
        docs: dict[str, str] = {}
    elif dataclasses.is_dataclass(t):
        fields = [f for f in dataclasses.fields(t) if f.init]
        names = [f.name for f in fields]
        required = [
            f.name for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        docs = {}
    else:
        afields = [a for a in attrs.fields(t) if a.init]
        names = [a.alias or a.name for a in afields]
        required = [a.alias or a.name for a in afields if a.default is attrs.NOTHING]
        hints = {a.alias or a.name: hints.get(a.name, Any) for a in afields}
        docs = {a.alias or a.name: a.metadata["doc"] for a in afields if isinstance(a.metadata.get("doc"), str)}
    properties = {}
    for n in names:
        prop = _schema(hints.get(n, Any), stack)
        if n in docs:
            prop["description"] = docs[n]
        properties[n] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    summary = _parse_docstring(t.__doc__)[0] if t.__doc__ and not t.__doc__.startswith(f"{t.__name__}(") else ""
    if summary:
        schema["description"] = summary
    return schema


def _type_label(t: Any) -> str:
    """A short readable name of an annotation: ``list[int]``, ``str | None``, ``Forecast``."""
    if t is type(None) or t is None:
        return "None"
    if t is Any:
        return "Any"
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Annotated:
        return _type_label(args[0])
    if _is_union(t):
        return " | ".join(_type_label(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        if args:
            return f"{name}[{', '.join('...' if a is Ellipsis else _type_label(a) for a in args)}]"
        return str(name)
    return getattr(t, "__name__", str(t).replace("typing.", ""))


def _needs_structure(t: Any) -> bool:
    """Whether a JSON value must be converted to become a ``t`` (dataclass, enum, tuple, set...)."""
    if isinstance(t, type):
        if issubclass(t, enum.Enum) or dataclasses.is_dataclass(t) or attrs.has(t):
            return True
        if t in (tuple, set, frozenset):
            return True
    origin = typing.get_origin(t)
    if origin in (tuple, set, frozenset):
        return True
    return any(_needs_structure(a) for a in typing.get_args(t) if a is not Ellipsis and not isinstance(a, (str, Mapping)))


@functools.lru_cache(maxsize=1)
def _cattrs() -> Any:
    import cattrs

    return cattrs.Converter()


def _structure_inputs(kwargs: dict[str, Any], types_: Mapping[str, Any]) -> dict[str, Any]:
    for name, t in types_.items():
        if name in kwargs:
            kwargs[name] = _cattrs().structure(kwargs[name], t)
    return kwargs


def _jsonable(value: Any) -> Any:
    """Dataclasses, attrs instances, enums, tuples and sets -> plain JSON values."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if attrs.has(type(value)):
        return {a.alias or a.name: _jsonable(getattr(value, a.name)) for a in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return value


# -- docstrings ------------------------------------------------------------------------

_GOOGLE_SECTION = re.compile(r"^(\w[\w ]*):\s*$")
_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "other parameters"}
_RETURN_SECTIONS = {"returns", "return", "yields"}
_OTHER_SECTIONS = {"raises", "example", "examples", "note", "notes", "see also", "warning", "warnings", "todo"}
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")
_SPHINX_RETURN = re.compile(r"^:returns?:\s*(.*)$")


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str], str | None]:
    """(summary, parameter descriptions, return description) from a Google, NumPy or Sphinx docstring."""
    if not doc:
        return "", {}, None
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    i = 0
    while i < len(lines) and lines[i].strip() and not _is_section(lines, i):
        summary.append(lines[i].strip())
        i += 1
    params: dict[str, str] = {}
    returns: list[str] = []
    section: str | None = None
    current: str | None = None
    numpy = False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if _is_section(lines, i):
            section = stripped.rstrip(":").strip().lower()
            numpy = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
            i += 2 if numpy else 1
            current = None
            continue
        m = _SPHINX_PARAM.match(stripped)
        if m:
            current = m.group(1)
            params[current] = m.group(2).strip()
            section = "sphinx"
            i += 1
            continue
        m = _SPHINX_RETURN.match(stripped)
        if m:
            returns = [m.group(1).strip()]
            section, current = "sphinx-returns", None
            i += 1
            continue
        if section in _PARAM_SECTIONS and stripped:
            indent = len(line) - len(line.lstrip())
            if numpy:
                entry = re.match(r"^(\*{0,2}\w+)\s*(?::.*)?$", stripped) if indent == 0 else None
                if entry:
                    current = entry.group(1).lstrip("*")
                    params[current] = ""
                elif current:
                    params[current] = (params[current] + " " + stripped).strip()
            else:
                entry = re.match(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped)
                if entry and (current is None or indent <= _entry_indent(lines, i, section)):
                    current = entry.group(1).lstrip("*")
                    params[current] = entry.group(2).strip()
                elif current:
                    params[current] = (params[current] + " " + stripped).strip()
        elif section in _RETURN_SECTIONS and stripped:
            if numpy and len(line) - len(line.lstrip()) == 0 and not returns:
                pass  # the NumPy type line (``dict`` or ``name : type``)
            else:
                text = stripped
                if not numpy and not returns:
                    m2 = re.match(r"^[\w\[\], .|]+:\s+(.*)$", text)
                    text = m2.group(1) if m2 else text
                returns.append(text)
        elif section in ("sphinx", "sphinx-returns") and stripped and current:
            params[current] = (params[current] + " " + stripped).strip()
        elif section == "sphinx-returns" and stripped:
            returns.append(stripped)
        i += 1
    return " ".join(summary), params, (" ".join(returns) or None)


def _is_section(lines: list[str], i: int) -> bool:
    stripped = lines[i].strip()
    if i + 1 < len(lines) and stripped and set(lines[i + 1].strip()) == {"-"} and len(lines[i + 1].strip()) >= 3:
        return True
    m = _GOOGLE_SECTION.match(stripped)
    if m is None or lines[i] != lines[i].lstrip():
        return False
    return m.group(1).lower() in _PARAM_SECTIONS | _RETURN_SECTIONS | _OTHER_SECTIONS


def _entry_indent(lines: list[str], i: int, section: str | None) -> int:
    """The indent of the first entry of the section that line ``i`` is in."""
    j = i
    while j > 0 and not _is_section(lines, j - 1):
        j -= 1
    for line in lines[j:i + 1]:
        if line.strip():
            return len(line) - len(line.lstrip())
    return 0


# -- the decorator -----------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])
ResourcesArg = Iterable[ResourceSpec] | Mapping[str, "str | Mapping[str, Any] | ResourceSpec"]


def _resource_specs(value: ResourcesArg | None) -> list[ResourceSpec]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        out = []
        for name, spec in value.items():
            if isinstance(spec, ResourceSpec):
                out.append(attrs.evolve(spec, name=name))
            elif isinstance(spec, str):
                out.append(ResourceSpec(name, spec))
            else:
                opts = dict(spec)
                kind = opts.pop("kind", "")
                options = dict(opts.pop("options", {}))
                out.append(ResourceSpec(name, kind, {**opts, **options}))
        return out
    return [s for s in value]


def _origin_of(fn: Any) -> str | None:
    try:
        file = inspect.getsourcefile(fn)
        line = fn.__code__.co_firstlineno
    except (TypeError, AttributeError):
        return None
    return f"{file}:{line}" if file else None


def _signature_error(name: str, message: str, origin: str | None, port: str | None = None) -> ToolError:
    where = f" ({origin})" if origin else ""
    return ToolError(f"tool {name!r}{where}: {message}", code="TOOL_SIGNATURE", tool=name, port=port)


def manifest_from_function(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    capabilities: Iterable[str] = (),
    permissions: Iterable[str] = (),
    resources: ResourcesArg | None = None,
    output: str = "result",
) -> tuple[ToolManifest, dict[str, Any], bool]:
    """(manifest, parameters to structure, wrap the result) derived from a typed function."""
    tool_name: str = name or str(getattr(fn, "__name__", ""))
    origin = _origin_of(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise _signature_error(tool_name, f"cannot resolve the type hints: {type(exc).__name__}: {exc}", origin) from exc
    summary, param_docs, return_doc = _parse_docstring(fn.__doc__)
    inputs: list[Port] = []
    structure: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name == "ctx":
            continue
        if param.name in ("self", "cls") and param.annotation is param.empty:
            raise _signature_error(
                tool_name, f"{param.name!r} looks like a method's: decorate a function, or pass a bound method",
                origin, param.name,
            )
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise _signature_error(tool_name, f"parameter {param.name!r} is positional-only; inputs are passed by keyword", origin, param.name)
        hint = hints.get(param.name, Any)
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        if base is ToolContext:
            raise _signature_error(tool_name, f"parameter {param.name!r} takes the ToolContext; name it 'ctx'", origin, param.name)
        port_format: Literal["json", "text", "binary"] = "json"
        if base is bytes:
            schema: dict[str, Any] = {}
            port_format = "binary"
        else:
            try:
                schema = _schema(hint, ())
            except _Unsupported as exc:
                raise _signature_error(tool_name, f"parameter {param.name!r}: {exc}", origin, param.name) from None
        required: bool | None = None
        if param.default is not param.empty:
            default = _jsonable(param.default)
            if _is_json(default) and port_format != "binary":
                schema["default"] = default
            else:
                required = False
        if _needs_structure(hint):
            structure[param.name] = hint
        inputs.append(Port(
            name=param.name,
            schema=schema,
            format=port_format,
            type_name=_type_label(hint) if param.name in hints else None,
            description=schema.pop("description", None) or param_docs.get(param.name),
            required=required,
        ))
    outputs: list[Port] = []
    wrap = True
    ret = hints.get("return", inspect.Parameter.empty)
    base_ret = typing.get_args(ret)[0] if typing.get_origin(ret) is typing.Annotated else ret
    if ret is None or ret is type(None):
        wrap = False
    elif isinstance(base_ret, type) and typing.is_typeddict(base_ret):
        wrap = False
        try:
            obj = _schema(base_ret, ())
        except _Unsupported as exc:
            raise _signature_error(tool_name, f"return type: {exc}", origin) from None
        req = set(obj.get("required", []))
        out_hints = typing.get_type_hints(base_ret, include_extras=True)
        for key, prop in obj["properties"].items():
            outputs.append(Port(
                name=key, schema=prop, type_name=_type_label(out_hints[key]),
                description=prop.pop("description", None), required=key in req,
            ))
    else:
        fmt: Literal["json", "text", "binary"] = "json"
        if base_ret is bytes:
            schema, fmt = {}, "binary"
        else:
            try:
                schema = _schema(ret, ())
            except _Unsupported as exc:
                raise _signature_error(tool_name, f"return type: {exc}", origin) from None
        outputs.append(Port(
            name=output, schema=schema, format=fmt,
            type_name=_type_label(ret) if ret is not inspect.Parameter.empty else None,
            description=schema.pop("description", None) or return_doc,
        ))
    manifest = ToolManifest(
        name=tool_name,
        description=description if description is not None else summary,
        inputs=inputs,
        outputs=outputs,
        capabilities=list(capabilities),
        permissions=list(permissions),
        resources=_resource_specs(resources),
    )
    return manifest, structure, wrap


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    capabilities: Iterable[str] = (),
    permissions: Iterable[str] = (),
    resources: ResourcesArg | None = None,
    output: str = "result",
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    capabilities: Iterable[str] = (),
    permissions: Iterable[str] = (),
    resources: ResourcesArg | None = None,
    output: str = "result",
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` from a typed function: ``@modelwire.tool`` or ``@modelwire.tool(...)``.

    Parameters become input ports (type hints -> JSON Schema, defaults ->
    not required, a parameter named ``ctx`` receives the ToolContext); the
    docstring's first paragraph is the description and its ``Args:`` (or
    NumPy ``Parameters``, or ``:param x:``) entries describe the ports. The
    return annotation is one output port (``output``, default ``result``),
    one port per key for a TypedDict, none for ``None``. ``resources`` is a
    list of :class:`ResourceSpec` or a mapping ``name -> kind`` (or
    ``name -> {"kind": ..., **options}``). The manifest is checked at once
    (ManifestError ``TOOL_MANIFEST_INVALID``); resource kinds are checked
    when the tool is registered.
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        manifest, structure, wrap_result = manifest_from_function(
            f, name=name, description=description, capabilities=capabilities,
            permissions=permissions, resources=resources, output=output,
        )
        origin = _origin_of(f)
        _raise_issues(manifest, check_tool_manifest(manifest, origin=origin, check_kinds=False))
        t = Tool(manifest, f, origin=origin, wrap_result=wrap_result)
        t._structure = structure
        t._jsonable = True
        functools.update_wrapper(t, f)  # type: ignore[arg-type]
        return t

    if fn is not None:
        return wrap(fn)
    return wrap


def _decorate(fn: Callable[..., Any]) -> Tool:
    return tool(fn)


# -- the builder -------------------------------------------------------------------------


class ToolBuilder:
    """Declare a tool in Python, step by step::

        weather = (
            ToolBuilder("get_weather")
            .describe("Current weather for a city.")
            .input("city", {"type": "string"}, description="City name", examples=["Paris"])
            .output("celsius", {"type": "number"})
            .capability("network")
            .resource("http", "http_client", base_url="https://api.example")
            .build(get_weather_impl)
        )

    A schema may also be a Python type (``.input("days", int)``).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._description = ""
        self._inputs: list[Port] = []
        self._outputs: list[Port] = []
        self._capabilities: list[str] = []
        self._permissions: list[str] = []
        self._resources: list[ResourceSpec] = []

    def describe(self, description: str) -> ToolBuilder:
        self._description = description
        return self

    @staticmethod
    def _port(
        name: str,
        schema: Mapping[str, Any] | Any,
        description: str | None,
        format: Literal["json", "text", "binary"],
        type_name: str | None,
        examples: Iterable[Any],
        required: bool | None,
    ) -> Port:
        if schema is None:
            schema = {}
        elif not isinstance(schema, Mapping):
            if type_name is None:
                type_name = _type_label(schema)
            if schema is bytes:
                schema, format = {}, "binary"
            else:
                schema = schema_for(schema)
        return Port(
            name=name, schema=dict(schema), format=format, type_name=type_name,
            description=description, examples=list(examples), required=required,
        )

    def input(
        self,
        name: str,
        schema: Mapping[str, Any] | Any = None,
        *,
        description: str | None = None,
        format: Literal["json", "text", "binary"] = "json",
        type_name: str | None = None,
        examples: Iterable[Any] = (),
        required: bool | None = None,
    ) -> ToolBuilder:
        self._inputs.append(self._port(name, schema, description, format, type_name, examples, required))
        return self

    def output(
        self,
        name: str,
        schema: Mapping[str, Any] | Any = None,
        *,
        description: str | None = None,
        format: Literal["json", "text", "binary"] = "json",
        type_name: str | None = None,
        examples: Iterable[Any] = (),
    ) -> ToolBuilder:
        self._outputs.append(self._port(name, schema, description, format, type_name, examples, None))
        return self

    def capability(self, *tags: str) -> ToolBuilder:
        self._capabilities.extend(tags)
        return self

    def permission(self, *permissions: str) -> ToolBuilder:
        self._permissions.extend(permissions)
        return self

    def resource(self, name: str, kind: str, /, **options: Any) -> ToolBuilder:
        self._resources.append(ResourceSpec(name, kind, options))
        return self

    def manifest(self) -> ToolManifest:
        """The manifest so far, checked (resource kinds are checked at registration)."""
        manifest = ToolManifest(
            name=self._name,
            description=self._description,
            inputs=list(self._inputs),
            outputs=list(self._outputs),
            capabilities=list(self._capabilities),
            permissions=list(self._permissions),
            resources=list(self._resources),
        )
        _raise_issues(manifest, check_tool_manifest(manifest, check_kinds=False))
        return manifest

    def build(self, fn: ToolFn | str) -> Tool:
        """The tool, implemented by ``fn`` (a function or an import path)."""
        manifest = self.manifest()
        origin = _origin_of(fn) if not isinstance(fn, str) else None
        if not isinstance(fn, str):
            _raise_issues(manifest, _signature_issues(manifest, fn, origin))
        return Tool(manifest, fn, origin=origin)


# -- YAML ----------------------------------------------------------------------------------


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@attrs.frozen
class PortDoc:
    """One port in a tool manifest (a port may also be written as a JSON type name: ``city: string``)."""

    schema: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("JSON Schema of the value"))
    format: Literal["json", "text", "binary"] = attrs.field(default="json", metadata=_doc("json, text or binary"))
    type_name: str | None = attrs.field(default=None, metadata=_doc("a name for the value's type"))
    description: str | None = attrs.field(default=None, metadata=_doc("what the value means"))
    examples: list[Any] = attrs.field(factory=list, metadata=_doc("example values (checked against the schema)"))
    required: bool | None = attrs.field(default=None, metadata=_doc("inputs: required unless the schema has a default"))


@attrs.frozen
class ResourceDoc:
    """A resource a tool needs for each call."""

    kind: str = attrs.field(metadata=_doc("sqlite, http_client, file_cache or a registered kind"))
    options: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("options of the kind"))


@attrs.frozen
class _ToolShell:
    """One tool; its ports (:class:`PortDoc` or a JSON type name) and resources
    (:class:`ResourceDoc`) are structured one by one, so every error shows."""

    impl: str = attrs.field(metadata=_doc("the function: package.module:function"))
    description: str = attrs.field(default="", metadata=_doc("what the tool does (models read this)"))
    inputs: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("input ports by name"))
    outputs: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("output ports by name"))
    capabilities: list[str] = attrs.field(factory=list, metadata=_doc("capability tags"))
    permissions: list[str] = attrs.field(factory=list, metadata=_doc("permissions the tool needs"))
    resources: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("resources by name"))


@attrs.frozen
class _DocumentShell:
    """A tool manifest document: ``version: 1``, ``tools:``, and maybe ``pipelines:`` (read by the pipeline loader)."""

    version: int = 1
    tools: dict[str, Any] = attrs.field(factory=dict)
    pipelines: Any = None


_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


def _port_from_doc(name: str, value: PortDoc | str, path: PathT, doc: Located, issues: list[ManifestIssue]) -> Port:
    if isinstance(value, str):
        if value not in _JSON_TYPES:
            issues.append(doc.issue(path, f"expected a port mapping or a JSON type ({', '.join(_JSON_TYPES)}), got {value!r}"))
            return Port(name=name)
        return Port(name=name, schema={"type": value}, type_name=value)
    return Port(
        name=name, schema=value.schema, format=value.format, type_name=value.type_name,
        description=value.description, examples=list(value.examples), required=value.required,
    )


def _tool_from_doc(
    name: str, value: Any, doc: Located, kinds: Mapping[str, Any] | None, file: str | None
) -> tuple[Tool | None, list[ManifestIssue]]:
    """One ``tools.NAME`` entry -> the tool, or every issue in it."""
    from .._manifest.loader import _issues_from, converter

    conv = converter()
    base: PathT = ("tools", name)
    issues: list[ManifestIssue] = []
    try:
        shell = conv.structure(value, _ToolShell)
    except Exception as exc:
        issues.extend(_issues_from(exc, base, doc))
        # Look inside the ports and resources anyway, when they are shaped right.
        if not isinstance(value, dict):
            return None, issues
        raw = {k: v if isinstance(v, dict) else {} for k, v in value.items()}
        shell = _ToolShell(
            impl="", inputs=raw.get("inputs", {}), outputs=raw.get("outputs", {}), resources=raw.get("resources", {})
        )
    if shell.impl and not IMPL_PATH.fullmatch(shell.impl):
        issues.append(doc.issue((*base, "impl"), f"impl {shell.impl!r} must look like package.module:function"))
    ports: dict[str, list[Port]] = {"inputs": [], "outputs": []}
    for direction in ("inputs", "outputs"):
        for pname, pvalue in getattr(shell, direction).items():
            path = (*base, direction, pname)
            try:
                pdoc = conv.structure(pvalue, PortDoc | str)  # type: ignore[arg-type]
            except Exception as exc:
                issues.extend(_issues_from(exc, path, doc))
                continue
            ports[direction].append(_port_from_doc(str(pname), pdoc, path, doc, issues))
    resources: list[ResourceSpec] = []
    for rname, rvalue in shell.resources.items():
        try:
            rdoc = conv.structure(rvalue, ResourceDoc)
        except Exception as exc:
            issues.extend(_issues_from(exc, (*base, "resources", rname), doc))
            continue
        resources.append(ResourceSpec(str(rname), rdoc.kind, dict(rdoc.options)))
    manifest = ToolManifest(
        name=str(name),
        description=shell.description,
        inputs=ports["inputs"],
        outputs=ports["outputs"],
        capabilities=list(shell.capabilities),
        permissions=list(shell.permissions),
        resources=resources,
    )
    for path, message in _problems(manifest, kinds, True):
        issues.append(doc.issue(base if path == ("name",) else (*base, *path), message))
    if issues:
        return None, issues
    line = doc.line_of((*base, "impl"))
    origin = f"{file or '<tools>'}:{line}" if line else file
    return Tool(manifest, shell.impl, origin=origin), []


def parse_tools(
    text: str | bytes,
    file: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    resource_kinds: Mapping[str, Any] | None = None,
) -> tuple[list[Tool], Located | None, list[ManifestIssue]]:
    """One tools document -> (its tools, the located document, every issue found).

    A tool with an issue is left out of the list; the others are returned.
    """
    from .._manifest.loader import _describe, _issues_from, converter
    from .._manifest.model import SUPPORTED_VERSIONS
    from .._manifest.yaml import expand_env, read_yaml

    doc, issues = read_yaml(text, file)
    if doc is None:
        return [], None, issues
    if not isinstance(doc.value, dict):
        return [], doc, [doc.issue((), f"a tool manifest must be a mapping, got {_describe(doc.value)}")]
    issues = []
    version = doc.value.get("version")
    if "version" not in doc.value:
        issues.append(doc.issue((), "field 'version' is required (use `version: 1`)"))
    elif version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        return [], doc, [doc.issue(("version",), f"unsupported manifest version {version!r}; this modelwire reads {supported}")]
    if "tools" not in doc.value and "pipelines" not in doc.value:
        issues.append(doc.issue((), "a tool manifest needs a `tools:` mapping"))
    env_issues = expand_env(doc, os.environ if env is None else env)
    issues.extend(env_issues)
    value = {"version": SUPPORTED_VERSIONS[-1], **doc.value}
    found: list[ManifestIssue] = []
    tools: list[Tool] = []
    try:
        shell = converter().structure(value, _DocumentShell)
    except Exception as exc:
        found.extend(_issues_from(exc, (), doc))
    else:
        for tname, tvalue in shell.tools.items():
            t, problems = _tool_from_doc(tname, tvalue, doc, resource_kinds, file)
            found.extend(problems)
            if t is not None:
                tools.append(t)
    # A field left unexpanded (``${UNSET}``) has its error already.
    unexpanded = {i.path for i in env_issues}
    issues.extend(i for i in found if i.path not in unexpanded)
    issues.sort(key=lambda i: i.line or 0)  # in file order (stable)
    if env_issues:  # a tool whose fields were not expanded is not usable
        bad = {str(i.path).split(".")[1] for i in env_issues if str(i.path).startswith("tools.")}
        tools = [t for t in tools if t.name not in bad]
    return tools, doc, issues


def read_tools(
    *sources: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    registry: ToolRegistry | None = None,
    resolve: bool = False,
) -> tuple[list[Tool], list[ManifestIssue]]:
    """Like :func:`load_tools`, but returns (the tools registered, every issue) instead of raising.

    Documents without issues are registered even when others have some.
    """
    from .._manifest.loader import _read_source

    registry = registry if registry is not None else ToolRegistry()
    kinds = registry._resources.kinds() if registry._resources is not None else None
    issues: list[ManifestIssue] = []
    tools: list[tuple[Tool, Located]] = []
    origins: dict[str, str] = {name: "(already registered)" for name in registry.names()}
    for source in sources:
        label = os.fspath(source)
        try:
            raw = _read_source(source)
        except ModelError:
            raise
        except OSError as exc:
            issues.append(ManifestIssue(f"cannot read tool manifest: {exc.strerror or exc}", file=label))
            continue
        for name, data in raw:
            found_tools, doc, found = parse_tools(data, name, env, resource_kinds=kinds)
            issues.extend(found)
            for t in found_tools:
                assert doc is not None
                prev = origins.get(t.name)
                if prev is not None:
                    issues.append(doc.issue(("tools", t.name), f"tool {t.name!r} is defined twice: in {prev} and in {name}"))
                    continue
                origins[t.name] = name
                tools.append((t, doc))
    registered: list[Tool] = []
    for t, doc in tools:
        if resolve:
            try:
                fn = t.fn
            except ToolError as exc:
                issues.append(doc.issue(("tools", t.name, "impl"), exc.message))
                continue
            problems = _signature_issues(t.manifest, fn, None)
            issues.extend(doc.issue(("tools", t.name, "impl"), p.message) for p in problems)
            if problems:
                continue
        try:
            registered.append(registry.register(t))
        except ManifestError as exc:  # pragma: no cover - parse_tools checked the same things
            issues.extend(exc.issues)
    return registered, issues


def load_tools(
    *sources: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    registry: ToolRegistry | None = None,
    resolve: bool = False,
) -> ToolRegistry:
    """Load tool manifests (files, directories, URLs, ``git+``...) into a registry.

    Every issue of every document is collected and raised as one
    ManifestError (``TOOL_MANIFEST_INVALID``) naming file, field path and
    line; a tool defined twice names both files. Implementations (``impl:``)
    are imported on first call, or now with ``resolve=True`` (an import
    failure is then an issue too). Returns ``registry`` (a new one if None);
    on error nothing is registered.
    """
    scratch = ToolRegistry(resources=registry._resources if registry is not None else None)
    if registry is not None:
        for existing in registry:
            scratch._tools[existing.name] = existing
    tools, issues = read_tools(*sources, env=env, registry=scratch, resolve=resolve)
    if issues:
        raise ManifestError(issues=issues, code="TOOL_MANIFEST_INVALID")
    registry = registry if registry is not None else ToolRegistry()
    for t in tools:
        registry.register(t)
    return registry
