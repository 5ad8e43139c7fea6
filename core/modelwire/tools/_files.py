"""Tools declared in YAML: parse, read and load tool manifests.

Every issue of every document (file, field path, line) is collected, and a
tool defined twice names both files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._errors import ManifestError, ManifestIssue, ModelError
from .._manifest.model import SUPPORTED_VERSIONS, doc
from .._manifest.sources import read_source
from .._manifest.structure import converter, describe, issues_from
from .._manifest.yaml import Located, expand_env, read_yaml
from ._checks import manifest_problems, signature_issues
from ._errors import ToolError
from ._manifest import IMPL_PATH, PathT, Port, ResourceSpec, ToolManifest
from ._registry import ToolRegistry
from ._tool import Tool, resolve_impl

__all__ = [
    "PortDoc",
    "ResourceDoc",
    "load_tools",
    "parse_tools",
    "read_tools",
]


@attrs.frozen
class PortDoc:
    """One port in a tool manifest (a port may also be written as a JSON type name: ``city: string``)."""

    schema: dict[str, Any] = attrs.field(factory=dict, metadata=doc("JSON Schema of the value"))
    format: Literal["json", "text", "binary"] = attrs.field(default="json", metadata=doc("json, text or binary"))
    type_name: str | None = attrs.field(default=None, metadata=doc("a name for the value's type"))
    description: str | None = attrs.field(default=None, metadata=doc("what the value means"))
    examples: list[Any] = attrs.field(factory=list, metadata=doc("example values (checked against the schema)"))
    required: bool | None = attrs.field(default=None, metadata=doc("inputs: required unless the schema has a default"))


@attrs.frozen
class ResourceDoc:
    """A resource a tool needs for each call."""

    kind: str = attrs.field(metadata=doc("sqlite, http_client, file_cache or a registered kind"))
    options: dict[str, Any] = attrs.field(factory=dict, metadata=doc("options of the kind"))


@attrs.frozen
class _ToolShell:
    """One tool; its ports (:class:`PortDoc` or a JSON type name) and resources
    (:class:`ResourceDoc`) are structured one by one, so every error shows."""

    impl: str = attrs.field(metadata=doc("the function: package.module:function"))
    description: str = attrs.field(default="", metadata=doc("what the tool does (models read this)"))
    inputs: dict[str, Any] = attrs.field(factory=dict, metadata=doc("input ports by name"))
    outputs: dict[str, Any] = attrs.field(factory=dict, metadata=doc("output ports by name"))
    capabilities: list[str] = attrs.field(factory=list, metadata=doc("capability tags"))
    permissions: list[str] = attrs.field(factory=list, metadata=doc("permissions the tool needs"))
    resources: dict[str, Any] = attrs.field(factory=dict, metadata=doc("resources by name"))


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
    conv = converter()
    base: PathT = ("tools", name)
    issues: list[ManifestIssue] = []
    try:
        shell = conv.structure(value, _ToolShell)
    except Exception as exc:
        issues.extend(issues_from(exc, base, doc))
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
                issues.extend(issues_from(exc, path, doc))
                continue
            ports[direction].append(_port_from_doc(str(pname), pdoc, path, doc, issues))
    resources: list[ResourceSpec] = []
    for rname, rvalue in shell.resources.items():
        try:
            rdoc = conv.structure(rvalue, ResourceDoc)
        except Exception as exc:
            issues.extend(issues_from(exc, (*base, "resources", rname), doc))
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
    for path, message in manifest_problems(manifest, kinds, True):
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
    doc, issues = read_yaml(text, file)
    if doc is None:
        return [], None, issues
    if not isinstance(doc.value, dict):
        return [], doc, [doc.issue((), f"a tool manifest must be a mapping, got {describe(doc.value)}")]
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
        found.extend(issues_from(exc, (), doc))
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
    registry = registry if registry is not None else ToolRegistry()
    kinds = registry._resources.kinds() if registry._resources is not None else None
    issues: list[ManifestIssue] = []
    tools: list[tuple[Tool, Located]] = []
    origins: dict[str, str] = {name: "(already registered)" for name in registry.names()}
    for source in sources:
        label = os.fspath(source)
        try:
            raw = read_source(source)
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
                # The issue names the file and line already: not the origin again.
                fn = resolve_impl(t.impl, tool=t.name) if t.impl else t.fn
            except ToolError as exc:
                issues.append(doc.issue(("tools", t.name, "impl"), exc.message))
                continue
            problems = signature_issues(t.manifest, fn, None)
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
