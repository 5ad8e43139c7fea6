"""Pipelines declared in YAML: parse, read and load ``pipelines:`` documents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from .._errors import ManifestError, ManifestIssue
from .._manifest.sources import read_source
from .._manifest.structure import converter, describe, issues_from
from .._manifest.yaml import Located, expand_env, format_path, read_yaml
from ..tools import Tool, ToolRegistry
from ._compiler import compile_pipeline
from ._definition import (
    Branch,
    FallbackTool,
    Pipeline,
    RetryPolicy,
    Step,
    _names,
    _retry,
    _retry_default,
)
from ._plan import node_manifest

__all__ = [
    "load_pipelines",
    "parse_pipelines",
    "read_pipelines",
]


@attrs.frozen
class _CallDoc:
    tool: str
    inputs: dict[str, Any] | None = None
    timeout: float | None = None
    retry: int | RetryPolicy | None = None


@attrs.frozen
class _BranchDoc:
    tool: str
    inputs: dict[str, Any] | None = None
    timeout: float | None = None
    retry: int | RetryPolicy | None = None
    fallback: list[str | _CallDoc] = attrs.Factory(list)


@attrs.frozen
class _StepDoc:
    tool: str | None = None
    pipeline: str | None = None
    parallel: dict[str, str | _BranchDoc] | None = None
    mode: Literal["all", "first"] = "all"
    inputs: dict[str, Any] = attrs.Factory(dict)
    depends_on: str | list[str] = attrs.Factory(list)
    when: str | None = None
    timeout: float | None = None
    retry: int | RetryPolicy | None = None
    fallback: list[str | _CallDoc] = attrs.Factory(list)
    on_skipped: Literal["skip", "run"] = "skip"
    description: str = ""


@attrs.frozen
class _PipelineDoc:
    steps: dict[str, _StepDoc]
    description: str = ""
    inputs: dict[str, dict[str, Any]] | None = None
    outputs: dict[str, str] | None = None


@attrs.frozen
class _FileDoc:
    version: int
    #: tool manifests may share the file; the tools loader reads them
    tools: Any = None
    pipelines: dict[str, _PipelineDoc] = attrs.Factory(dict)


def _call(doc: str | _CallDoc) -> FallbackTool:
    if isinstance(doc, str):
        return FallbackTool(tool=doc)
    return FallbackTool(tool=doc.tool, inputs=doc.inputs, timeout=doc.timeout, retry=_retry(doc.retry))


def _from_doc(name: str, doc: _PipelineDoc, source: Located) -> Pipeline:
    steps: list[Step] = []
    for sname, s in doc.steps.items():
        branches = []
        for bname, b in (s.parallel or {}).items():
            if isinstance(b, str):
                branches.append(Branch(name=bname, tool=b))
            else:
                branches.append(
                    Branch(
                        name=bname, tool=b.tool, inputs=b.inputs, timeout=b.timeout,
                        retry=_retry(b.retry), fallback=tuple(_call(c) for c in b.fallback),
                    )
                )
        steps.append(
            Step(
                name=sname,
                tool=s.tool,
                pipeline=s.pipeline,
                inputs=s.inputs,
                depends_on=_names(s.depends_on),
                when=s.when,
                timeout=s.timeout,
                retry=_retry_default(s.retry),
                fallback=tuple(_call(c) for c in s.fallback),
                branches=tuple(branches),
                mode=s.mode,
                on_skipped=s.on_skipped,
                description=s.description,
            )
        )
    return Pipeline(
        name=name, steps=tuple(steps), inputs=doc.inputs, outputs=doc.outputs,
        description=doc.description, source=source,
    )


def parse_pipelines(
    text: str | bytes, file: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[list[Pipeline], list[ManifestIssue]]:
    """One YAML/JSON document -> its pipelines (unchecked against tools), or the issues found."""
    doc, issues = read_yaml(text, file)
    if doc is None:
        return [], issues
    if not isinstance(doc.value, dict):
        return [], [doc.issue((), f"a pipeline file must be a mapping, got {describe(doc.value)}")]
    value = doc.value
    if "pipelines" not in value and "tools" in value:
        return [], []  # a tool manifest: the tools loader reads it
    if "version" not in value:
        issues.append(doc.issue((), "field 'version' is required (use `version: 1`)"))
    elif value["version"] != 1 or isinstance(value["version"], bool):
        return [], [
            doc.issue(("version",), f"unsupported manifest version {value['version']!r}; this modelwire reads 1")
        ]
    if "pipelines" not in value:
        issues.append(doc.issue((), "a pipeline file needs a `pipelines:` mapping"))
    env_issues = expand_env(doc, os.environ if env is None else env)
    issues.extend(env_issues)
    unexpanded = {i.path for i in env_issues}
    value = {"version": 1, **doc.value}
    try:
        structured = converter().structure(value, _FileDoc)
    except Exception as exc:
        issues.extend(i for i in issues_from(exc, (), doc) if i.path not in unexpanded)
        return [], issues
    pipelines = [_from_doc(name, pdoc, doc) for name, pdoc in structured.pipelines.items()]
    return pipelines, issues


def read_pipelines(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    registry: ToolRegistry | None,
    *,
    env: Mapping[str, str] | None = None,
    pipelines: Mapping[str, Tool | None] | None = None,
) -> tuple[list[Pipeline], list[ManifestIssue]]:
    """Like :func:`load_pipelines`, but returns every issue instead of raising."""
    sources = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    found: list[Pipeline] = []
    issues: list[ManifestIssue] = []
    reported: dict[str, set[str | None]] = {}
    origin: dict[str, str] = {}
    for source in sources:
        label = os.fspath(source)
        try:
            raw = read_source(source)
        except OSError as exc:
            issues.append(ManifestIssue(f"cannot read pipelines: {exc}", file=label))
            continue
        for file, data in raw:
            parsed, problems = parse_pipelines(data, file, env)
            issues.extend(problems)
            for pipeline in parsed:
                prev = origin.get(pipeline.name)
                if prev is not None:
                    assert pipeline.source is not None
                    issues.append(
                        pipeline.source.issue(
                            ("pipelines", pipeline.name),
                            f"pipeline {pipeline.name!r} is defined twice: in {prev} and in {file}",
                        )
                    )
                    continue
                origin[pipeline.name] = file
                # a field already reported (an unset ${VAR}) gets no second issue
                reported[pipeline.name] = {i.path for i in problems}
                found.append(pipeline)
    ordered, cycles = _nesting_order(found)
    issues.extend(cycles)
    # dependencies come first, so None here is a pipeline in a cycle or with errors (reported)
    known: dict[str, Tool | None] = {**(pipelines or {}), **{p.name: None for p in ordered}}
    for pipeline in ordered:
        plan, problems = compile_pipeline(pipeline, registry, known)
        issues.extend(i for i in problems if i.path not in reported[pipeline.name])
        known[pipeline.name] = None if plan is None else Tool(node_manifest(plan), _checked_only)
    return ordered, issues


def _checked_only(**_inputs: Any) -> None:  # pragma: no cover - read_pipelines never runs a pipeline
    raise AssertionError("read_pipelines only checks pipelines; an Orchestrator runs them")


def _nesting_order(found: list[Pipeline]) -> tuple[list[Pipeline], list[ManifestIssue]]:
    """The pipelines, each after those its steps run (else file order); a cycle is an issue."""
    by_name = {p.name: p for p in found}
    order: list[Pipeline] = []
    state: dict[str, int] = {}
    issues: list[ManifestIssue] = []

    def visit(p: Pipeline, trail: list[str]) -> None:
        state[p.name] = 1
        trail.append(p.name)
        for step in p.steps:
            sub = by_name.get(step.pipeline or "")
            if sub is None or sub.name == p.name:
                continue  # unknown, or itself: the compiler says so
            if state.get(sub.name) == 1:
                cycle = " -> ".join([*trail[trail.index(sub.name):], sub.name])
                where = ("pipelines", p.name, "steps", step.name, "pipeline")
                message = f"pipelines run each other in a cycle: {cycle}"
                issues.append(p.source.issue(where, message) if p.source else ManifestIssue(message, path=format_path(where)))
            elif sub.name not in state:
                visit(sub, trail)
        trail.pop()
        state[p.name] = 2
        order.append(p)

    for p in found:
        if p.name not in state:
            visit(p, [])
    return order, issues


def load_pipelines(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    registry: ToolRegistry | None,
    *,
    env: Mapping[str, str] | None = None,
    pipelines: Mapping[str, Tool | None] | None = None,
) -> list[Pipeline]:
    """Load pipelines from YAML/JSON files or directories and check them.

    With a ``registry``: every tool must exist and the IO check must pass
    (``None`` checks the structure only). A step may run a pipeline of the
    same files or of ``pipelines`` (name -> its node tool); the list comes
    back in that order, each pipeline after those it runs. Raises one
    :class:`~modelwire.ManifestError` (code ``PIPELINE_INVALID``) listing
    every issue with its file, field path and line.
    """
    found, issues = read_pipelines(paths, registry, env=env, pipelines=pipelines)
    if issues:
        raise ManifestError(issues=issues, code="PIPELINE_INVALID")
    return found
