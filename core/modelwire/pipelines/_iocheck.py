"""Does one JSON Schema fit another? The build-time IO check of pipelines.

``schema_problems(source, target)`` answers, structurally and without any
data, whether every value a step's output port may produce is accepted by
the input port it feeds. It reports what is certainly or structurally wrong
and stays silent on what only data can decide:

- ``type``: every type the source allows must be allowed by the target
  (``integer`` fits ``number``, not the reverse; a source without ``type``
  takes its types from ``enum`` / ``const``, else is unknown and passes);
- ``enum`` / ``const``: when both sides list values, the source's must be a
  subset of the target's;
- objects: each property the target ``required`` must be required by the
  source too (when the source describes its properties at all); properties
  both declare are checked recursively; a target with
  ``additionalProperties: false`` rejects source properties it does not name;
- arrays: ``items`` checked recursively;
- ``anyOf`` / ``oneOf``: every source alternative must fit; the source must
  fit at least one target alternative.

Not checked (left to call-time validation): ``$ref``, ``allOf``, formats,
patterns, lengths and numeric ranges, and a source with no constraints
(``{}``) or an unconstrained source feeding an ``enum``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["json_type", "schema_problems"]

_ALTERNATIVES = ("anyOf", "oneOf")


def json_type(value: Any) -> str:
    """The JSON Schema type name of a plain value (``1.0`` is an ``integer``, as in 2020-12)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _same(a: Any, b: Any) -> bool:
    return json_type(a) == json_type(b) and bool(a == b)


def _values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _declared_types(schema: dict[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list) and all(isinstance(k, str) for k in kind):
        return set(kind)
    return None


def _types(schema: dict[str, Any]) -> set[str] | None:
    declared = _declared_types(schema)
    if declared is not None:
        return declared
    values = _values(schema)
    return None if values is None else {json_type(v) for v in values}


def _fits_type(kind: str, allowed: set[str]) -> bool:
    return kind in allowed or (kind == "integer" and "number" in allowed)


def _at(path: str) -> str:
    return f"at {path}: " if path != "$" else ""


def schema_problems(source: Any, target: Any, path: str = "$") -> list[str]:
    """Why values of ``source`` may not be accepted by ``target`` (empty: they fit)."""
    if target is True or target == {} or not isinstance(target, (dict, bool)):
        return []
    if target is False:
        return [f"{_at(path)}the input accepts no value"]
    assert isinstance(target, dict)
    if source is True or source is False or source == {} or not isinstance(source, dict):
        return []  # unknown (or impossible) source: nothing to say before the call
    for key in _ALTERNATIVES:
        alternatives = source.get(key)
        if isinstance(alternatives, list):
            rest = {k: v for k, v in source.items() if k != key}
            out: list[str] = []
            for alt in alternatives:
                merged = {**rest, **alt} if isinstance(alt, dict) else alt
                for problem in schema_problems(merged, target, path):
                    if problem not in out:
                        out.append(problem)
            return out
    for key in _ALTERNATIVES:
        alternatives = target.get(key)
        if isinstance(alternatives, list):
            rest = {k: v for k, v in target.items() if k != key}
            base = schema_problems(source, rest, path)
            if base:
                return base
            if any(not schema_problems(source, alt, path) for alt in alternatives):
                return []
            return [f"{_at(path)}the value fits none of the input's {key} alternatives"]

    src_types = _types(source)
    dst_types = _declared_types(target)
    if dst_types is not None and src_types is not None:
        bad = sorted(t for t in src_types if not _fits_type(t, dst_types))
        if bad:
            return [f"{_at(path)}{' or '.join(bad)} is not {' or '.join(sorted(dst_types))}"]

    problems: list[str] = []
    dst_values = _values(target)
    src_values = _values(source)
    if dst_values is not None and src_values is not None:
        extra = [v for v in src_values if not any(_same(v, d) for d in dst_values)]
        if extra:
            problems.append(
                f"{_at(path)}{', '.join(map(repr, extra))} not among the input's values "
                f"({', '.join(map(repr, dst_values))})"
            )

    maybe_object = (src_types is None or "object" in src_types) and (
        dst_types is None or "object" in dst_types
    )
    if maybe_object:
        problems.extend(_object_problems(source, target, path))
    maybe_array = (src_types is None or "array" in src_types) and (
        dst_types is None or "array" in dst_types
    )
    if maybe_array and isinstance(source.get("items"), dict) and isinstance(target.get("items"), (dict, bool)):
        problems.extend(schema_problems(source["items"], target["items"], f"{path}[*]"))
    return problems


def _object_problems(source: dict[str, Any], target: dict[str, Any], path: str) -> list[str]:
    out: list[str] = []
    src_props = source.get("properties") if isinstance(source.get("properties"), dict) else {}
    dst_props = target.get("properties") if isinstance(target.get("properties"), dict) else {}
    assert isinstance(src_props, dict) and isinstance(dst_props, dict)
    src_required = source.get("required") if isinstance(source.get("required"), list) else []
    dst_required = target.get("required") if isinstance(target.get("required"), list) else []
    assert isinstance(src_required, list) and isinstance(dst_required, list)
    described = "properties" in source or "required" in source
    if described:
        for name in dst_required:
            if name in src_required:
                continue
            if name in src_props:
                out.append(f"{_at(path)}property {name!r} is required by the input but optional in the output")
            else:
                out.append(f"{_at(path)}property {name!r} is required by the input but missing from the output")
        if target.get("additionalProperties") is False:
            for name in src_props:
                if name not in dst_props:
                    out.append(f"{_at(path)}property {name!r} is not allowed by the input")
    for name, sub in dst_props.items():
        if name in src_props:
            out.extend(schema_problems(src_props[name], sub, f"{path}.{name}"))
    return out
