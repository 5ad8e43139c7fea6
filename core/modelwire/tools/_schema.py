"""Python types as JSON Schema, and JSON values converted to and from those types.

:func:`schema_for` derives a schema from an annotation; :func:`structure_inputs`
and :func:`jsonable` convert a call's inputs and outputs (dataclasses, attrs
classes, enums, tuples, sets).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

import attrs

from ._docstrings import parse_docstring

__all__ = [
    "jsonable",
    "needs_structure",
    "schema_for",
    "structure_inputs",
    "type_label",
]


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
        raise _Unsupported(f"cannot derive a JSON Schema from {type_label(t)}")
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
                raise _Unsupported(f"{type_label(t)}: JSON object keys are strings")
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
    raise _Unsupported(f"cannot derive a JSON Schema from {type_label(t)}")


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
    summary = parse_docstring(t.__doc__)[0] if t.__doc__ and not t.__doc__.startswith(f"{t.__name__}(") else ""
    if summary:
        schema["description"] = summary
    return schema


def type_label(t: Any) -> str:
    """A short readable name of an annotation: ``list[int]``, ``str | None``, ``Forecast``."""
    if t is type(None) or t is None:
        return "None"
    if t is Any:
        return "Any"
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Annotated:
        return type_label(args[0])
    if _is_union(t):
        return " | ".join(type_label(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        if args:
            return f"{name}[{', '.join('...' if a is Ellipsis else type_label(a) for a in args)}]"
        return str(name)
    return getattr(t, "__name__", str(t).replace("typing.", ""))


def needs_structure(t: Any) -> bool:
    """Whether a JSON value must be converted to become a ``t`` (dataclass, enum, tuple, set...)."""
    if isinstance(t, type):
        if issubclass(t, enum.Enum) or dataclasses.is_dataclass(t) or attrs.has(t):
            return True
        if t in (tuple, set, frozenset):
            return True
    origin = typing.get_origin(t)
    if origin in (tuple, set, frozenset):
        return True
    return any(needs_structure(a) for a in typing.get_args(t) if a is not Ellipsis and not isinstance(a, (str, Mapping)))


@functools.lru_cache(maxsize=1)
def _cattrs() -> Any:
    import cattrs

    return cattrs.Converter()


def structure_inputs(kwargs: dict[str, Any], types_: Mapping[str, Any]) -> dict[str, Any]:
    for name, t in types_.items():
        if name in kwargs:
            kwargs[name] = _cattrs().structure(kwargs[name], t)
    return kwargs


def jsonable(value: Any) -> Any:
    """Dataclasses, attrs instances, enums, tuples and sets -> plain JSON values."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if attrs.has(type(value)):
        return {a.alias or a.name: jsonable(getattr(value, a.name)) for a in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return value
