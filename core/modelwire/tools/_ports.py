"""Checking values against a tool's ports: format, then JSON Schema.

Errors are :class:`ToolError` (``TOOL_BAD_INPUT`` / ``TOOL_BAD_OUTPUT``)
naming the tool, the port and the JSON path of the bad value.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ._errors import ToolError
from ._manifest import Port, ToolManifest

__all__ = [
    "first_error",
    "format_problem",
    "validate_ports",
    "with_defaults",
]


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


def first_error(schema: Mapping[str, Any], value: Any) -> tuple[str, str] | None:
    """(JSON path, message) of the most relevant error, or None."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(value))
    if error is None:
        return None
    return _json_path(error.absolute_path), error.message


def format_problem(port: Port, value: Any) -> str | None:
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
        problem = format_problem(port, value)
        if problem is not None:
            raise ToolError(
                f"tool {manifest.name!r}: {direction} port {port.name!r} at $: {problem}",
                code=code, tool=manifest.name, port=port.name, path="$",
            )
        if not port.schema or port.format == "binary":
            continue
        found = first_error(port.schema, value)
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
