"""Tools: manifests (ports, capabilities, permissions, resources), the
callable behind them, a registry, and the per-call context.

A tool is data plus a function. The manifest says what goes in and out
(ports with JSON Schema), what the tool may do (capabilities, permissions)
and what it needs (resources, acquired per call by the resource manager).
Three ways to declare one: YAML (:func:`load_tools`), a Python builder
(:class:`ToolBuilder`), and the :func:`tool` decorator, which derives the
manifest from a typed function's signature and docstring.

Shared vocabulary for the orchestrator (``_pipeline``) and the model
tool-calling loop (``Runtime.run_tools``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import attrs

from ._errors import InvalidRequestError, ModelError, NotFoundError

__all__ = [
    "AgentContext",
    "Port",
    "ResourceSpec",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolManifest",
    "ToolRegistry",
    "validate_ports",
]


class ToolError(ModelError):
    """A tool failed, or its input or output broke its manifest.

    Names the ``tool``, the ``port`` and the JSON ``path`` where known; for a
    pipeline also the ``step`` and the ``attempts`` made.
    """

    kind = "invalid_request"
    default_code = "TOOL_FAILED"

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
        for name in ("step", "tool", "port", "path", "attempts"):
            value = getattr(self, name, None)
            if value is not None:
                parts.append(f"{name}={value}")
        return " ".join(p for p in parts if p)


@attrs.frozen
class Port:
    """One named input or output of a tool."""

    name: str
    #: JSON Schema of the value (``{"type": "string"}``); empty accepts anything
    schema: dict[str, Any] = attrs.field(factory=dict)
    format: Literal["json", "text", "binary"] = "json"
    type_name: str | None = None
    description: str | None = None
    examples: list[Any] = attrs.field(factory=list)


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
            "required": [p.name for p in self.inputs if not p.schema.get("default") and "default" not in p.schema],
        }

    def as_model_tool(self) -> dict[str, Any]:
        """The unified tool spec (``{name, description, parameters}``) a provider manifest maps."""
        return {"name": self.name, "description": self.description, "parameters": self.input_schema()}


class AgentContext:
    """Per-session state visible to tools: ``session().get/set`` and ``variables()``.

    One context per session; nothing is shared across sessions.
    """

    def __init__(self, session_id: str = "default", variables: Mapping[str, Any] | None = None) -> None:
        self.session_id = session_id
        self._session: dict[str, Any] = {}
        self._variables = dict(variables or {})

    def session(self) -> _SessionState:
        return _SessionState(self._session)

    def variables(self) -> dict[str, Any]:
        return self._variables


class _SessionState:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value


@attrs.define
class ToolContext:
    """What one tool call receives besides its inputs."""

    tool: ToolManifest
    resources: dict[str, Any] = attrs.Factory(dict)
    agent: AgentContext = attrs.Factory(AgentContext)


ToolFn = Callable[..., "Awaitable[Mapping[str, Any]] | Mapping[str, Any] | Any"]


class Tool:
    """A manifest plus the function that implements it.

    The function takes the inputs as keyword arguments (plus ``ctx`` if it
    declares that parameter) and returns a mapping of outputs, or a single
    value when the tool has exactly one output port. Sync or async.
    """

    def __init__(self, manifest: ToolManifest, fn: ToolFn) -> None:
        self.manifest = manifest
        self.fn = fn
        self._wants_ctx = "ctx" in inspect.signature(fn).parameters
        self._is_async = inspect.iscoroutinefunction(fn)

    @property
    def name(self) -> str:
        return self.manifest.name

    async def call(self, inputs: Mapping[str, Any], ctx: ToolContext | None = None) -> dict[str, Any]:
        """Run the function (no validation here: the orchestrator and the loop validate)."""
        import anyio

        ctx = ctx if ctx is not None else ToolContext(self.manifest)
        kwargs = dict(inputs)
        if self._wants_ctx:
            kwargs["ctx"] = ctx
        if self._is_async:
            result = await self.fn(**kwargs)  # type: ignore[misc]
        else:
            result = await anyio.to_thread.run_sync(lambda: self.fn(**kwargs))
        outputs = self.manifest.outputs
        if len(outputs) == 1 and not (isinstance(result, Mapping) and outputs[0].name in result):
            return {outputs[0].name: result}
        if not isinstance(result, Mapping):
            raise ToolError(
                f"tool {self.name!r} returned {type(result).__name__}, expected a mapping of its outputs",
                code="TOOL_BAD_OUTPUT", tool=self.name,
            )
        return dict(result)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


class ToolRegistry:
    """Tools by name; registering a name twice is an error."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise InvalidRequestError(f"tool {tool.name!r} is registered twice", code="TOOL_DUPLICATE")
        self._tools[tool.name] = tool
        return tool

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


def validate_ports(manifest: ToolManifest, values: Mapping[str, Any], direction: Literal["input", "output"]) -> None:
    """Check values against a tool's input or output ports; ToolError names tool, port and JSON path."""
    import jsonschema

    ports = manifest.inputs if direction == "input" else manifest.outputs
    if not isinstance(values, Mapping):
        raise ToolError(f"{direction}s of tool {manifest.name!r} must be a mapping", code=f"TOOL_BAD_{direction.upper()}", tool=manifest.name)
    known = {p.name for p in ports}
    for extra in sorted(set(values) - known):
        raise ToolError(
            f"tool {manifest.name!r} has no {direction} port {extra!r} (ports: {', '.join(sorted(known)) or 'none'})",
            code=f"TOOL_BAD_{direction.upper()}", tool=manifest.name, port=extra,
        )
    for port in ports:
        if port.name not in values:
            if direction == "input" and "default" in port.schema:
                continue
            raise ToolError(
                f"tool {manifest.name!r}: {direction} port {port.name!r} is missing",
                code=f"TOOL_BAD_{direction.upper()}", tool=manifest.name, port=port.name,
            )
        if not port.schema:
            continue
        validator = jsonschema.Draft202012Validator(port.schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(values[port.name]))
        if error is not None:
            path = "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)
            raise ToolError(
                f"tool {manifest.name!r}: {direction} port {port.name!r} at {path}: {error.message}",
                code=f"TOOL_BAD_{direction.upper()}", tool=manifest.name, port=port.name, path=path,
            )
