"""What a tool is, as data: ports, resources and the manifest.

A :class:`ToolManifest` says what goes in and out (:class:`Port`, with JSON
Schema), what the tool may do (capabilities, permissions) and what it needs
(:class:`ResourceSpec`). Checking a manifest is :mod:`._checks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._errors import NotFoundError

__all__ = [
    "FORMATS",
    "IMPL_PATH",
    "PORT_NAME",
    "TOOL_NAME",
    "PathT",
    "Port",
    "ResourceSpec",
    "ToolManifest",
]


PathT = tuple["str | int", ...]

#: What providers accept as a function name (OpenAI, Anthropic and Gemini alike).
TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
PORT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
IMPL_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
FORMATS = ("json", "text", "binary")


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
