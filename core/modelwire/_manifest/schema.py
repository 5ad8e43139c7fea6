"""A JSON Schema for manifests, generated from the attrs classes.

Editors use it for completion and validation; ``docs/manifest.schema.json``
is this output, and a test fails when the two drift apart.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

import attrs

from .model import Manifest

__all__ = ["manifest_schema"]


def _type_schema(t: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if t is Any:
        return {}
    if t is type(None):
        return {"type": "null"}
    if t is str:
        return {"type": "string"}
    if t is bool:
        return {"type": "boolean"}
    if t is int:
        return {"type": "integer"}
    if t is float:
        return {"type": "number"}
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is Union or origin is types.UnionType:
        return {"anyOf": [_type_schema(a, defs) for a in args]}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs)}
    if attrs.has(t):
        name = t.__name__
        if name not in defs:
            defs[name] = {}  # reserve against recursion
            defs[name] = _class_schema(t, defs)
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no schema for {t!r}")


def _class_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        schema = _type_schema(hints[field.name], defs)
        doc = field.metadata.get("doc")
        if doc:
            schema = {**schema, "description": doc}
        default = field.default
        if default is attrs.NOTHING:
            required.append(field.name)
        elif not isinstance(default, attrs.Factory) and isinstance(  # type: ignore[arg-type]
            default, (str, int, float, bool, type(None))
        ):
            schema["default"] = default
        props[field.name] = schema
    out: dict[str, Any] = {
        "type": "object",
        "description": (cls.__doc__ or "").strip().splitlines()[0],
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def _with_extends(strict: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """A provider is whole, or a merge patch over the one it ``extends``.

    The patch is checked after merging (it may omit required fields or null
    them out), so here it may use the provider's field names only.
    """
    patch = {
        "type": "object",
        "description": "a provider given as changes to the one it extends (JSON Merge Patch)",
        "properties": {
            name: {"description": field["description"]} if name != "extends" else field
            for name, field in strict["properties"].items()
        },
        "required": ["extends"],
        "additionalProperties": False,
    }
    return {"if": {"type": "object", "required": ["extends"]}, "then": patch, "else": ref}


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a manifest document."""
    defs: dict[str, Any] = {}
    root = _class_schema(Manifest, defs)
    root["properties"]["version"] = {**root["properties"]["version"], "const": 1}
    providers = root["properties"]["providers"]
    providers["additionalProperties"] = _with_extends(defs["Provider"], providers["additionalProperties"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://modelwire.dev/schema/manifest-v1.json",
        "title": "modelwire manifest",
        **root,
        "$defs": dict(sorted(defs.items())),
    }
