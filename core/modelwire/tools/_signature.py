"""Tools declared in Python: from a typed function (:func:`tool`) or step by step (:class:`ToolBuilder`).

:func:`manifest_from_function` derives the ports from the signature (type
hints -> JSON Schema) and their descriptions from the docstring.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, overload

import attrs

from ._checks import check_tool_manifest, raise_issues, signature_issues
from ._context import ToolContext
from ._docstrings import parse_docstring
from ._errors import ToolError
from ._manifest import Port, ResourceSpec, ToolManifest
from ._schema import jsonable, needs_structure, schema_for, type_label
from ._tool import Tool, ToolFn

__all__ = [
    "ResourcesArg",
    "ToolBuilder",
    "manifest_from_function",
    "tool",
]


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
    summary, param_docs, return_doc = parse_docstring(fn.__doc__)
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
                schema = schema_for(hint)
            except TypeError as exc:
                raise _signature_error(tool_name, f"parameter {param.name!r}: {exc}", origin, param.name) from None
        required: bool | None = None
        if param.default is not param.empty:
            default = jsonable(param.default)
            if _is_json(default) and port_format != "binary":
                schema["default"] = default
            else:
                required = False
        if needs_structure(hint):
            structure[param.name] = hint
        inputs.append(Port(
            name=param.name,
            schema=schema,
            format=port_format,
            type_name=type_label(hint) if param.name in hints else None,
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
            obj = schema_for(base_ret)
        except TypeError as exc:
            raise _signature_error(tool_name, f"return type: {exc}", origin) from None
        req = set(obj.get("required", []))
        out_hints = typing.get_type_hints(base_ret, include_extras=True)
        for key, prop in obj["properties"].items():
            outputs.append(Port(
                name=key, schema=prop, type_name=type_label(out_hints[key]),
                description=prop.pop("description", None), required=key in req,
            ))
    else:
        fmt: Literal["json", "text", "binary"] = "json"
        if base_ret is bytes:
            schema, fmt = {}, "binary"
        else:
            try:
                schema = schema_for(ret)
            except TypeError as exc:
                raise _signature_error(tool_name, f"return type: {exc}", origin) from None
        outputs.append(Port(
            name=output, schema=schema, format=fmt,
            type_name=type_label(ret) if ret is not inspect.Parameter.empty else None,
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
        raise_issues(manifest, check_tool_manifest(manifest, origin=origin, check_kinds=False))
        t = Tool(manifest, f, origin=origin, wrap_result=wrap_result)
        t._structure = structure
        t._jsonable = True
        functools.update_wrapper(t, f)  # type: ignore[arg-type]
        return t

    if fn is not None:
        return wrap(fn)
    return wrap


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
                type_name = type_label(schema)
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
        raise_issues(manifest, check_tool_manifest(manifest, check_kinds=False))
        return manifest

    def build(self, fn: ToolFn | str) -> Tool:
        """The tool, implemented by ``fn`` (a function or an import path)."""
        manifest = self.manifest()
        origin = _origin_of(fn) if not isinstance(fn, str) else None
        if not isinstance(fn, str):
            raise_issues(manifest, signature_issues(manifest, fn, origin))
        return Tool(manifest, fn, origin=origin)
