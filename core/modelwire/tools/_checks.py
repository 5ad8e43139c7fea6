"""Checking a tool manifest: every problem as a :class:`ManifestIssue`.

A name providers accept, unique ports and resources, well-formed JSON
Schemas, defaults and examples that fit them, known resource kinds with
valid options, and a function signature that matches the inputs.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from .._errors import ManifestError, ManifestIssue
from .._manifest.yaml import format_path
from ._manifest import FORMATS, PORT_NAME, TOOL_NAME, PathT, ToolManifest
from ._ports import first_error, format_problem
from ._resources import builtin_kinds, option_problems

__all__ = [
    "check_tool_manifest",
    "manifest_problems",
    "raise_issues",
    "signature_issues",
]


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


def manifest_problems(
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
                found = first_error(port.schema, port.schema["default"])
                if found is not None:
                    out.append(((*where, "schema", "default"), f"default does not fit the schema at {found[0]}: {found[1]}"))
            for i, example in enumerate(port.examples):
                problem = format_problem(port, example)
                found = (("$", problem) if problem else None) or first_error(port.schema, example)
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
        ManifestIssue(message, file=file or f"<tool {manifest.name}>", path=format_path(("tools", manifest.name, *path)), line=line)
        for path, message in manifest_problems(manifest, resource_kinds, check_kinds)
    ]


def signature_issues(manifest: ToolManifest, fn: Any, origin: str | None) -> list[ManifestIssue]:
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


def raise_issues(manifest: ToolManifest, issues: list[ManifestIssue]) -> None:
    if issues:
        raise ManifestError(issues=issues, code="TOOL_MANIFEST_INVALID", tool=manifest.name)
