"""The :class:`Flow` builder: a pipeline written as chained calls.

``Flow("p").add_tool_node("a", tool="x").add_tool_node("b", tool="y").connect("a", "b")``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from .._errors import InvalidRequestError, ManifestError, ManifestIssue
from .._manifest.yaml import format_path
from ..tools import ToolRegistry
from ._compiler import compile_pipeline, name_hint
from ._definition import (
    Branch,
    FallbackTool,
    Pipeline,
    RetryPolicy,
    Step,
    _calls,
    _names,
    _retry_default,
)

__all__ = [
    "Flow",
]


class Flow:
    """Build a pipeline step by step; every method returns the flow, for chaining.

    >>> flow = (Flow("report")
    ...         .add_tool_node("a", tool="fetch", inputs={"url": "input.url"})
    ...         .add_tool_node("b", tool="summarise")
    ...         .connect("a", "b"))
    >>> flow.build().name
    'report'

    ``connect("a", "b")`` makes ``b`` depend on ``a``; ``b``'s unmapped input
    ports are then fed by ``a``'s outputs of the same names.
    """

    def __init__(
        self,
        name: str,
        *,
        inputs: Mapping[str, Mapping[str, Any]] | None = None,
        outputs: Mapping[str, str] | None = None,
        description: str = "",
    ) -> None:
        self.name = name
        self.description = description
        self._inputs = None if inputs is None else {k: dict(v) for k, v in inputs.items()}
        self._outputs = None if outputs is None else dict(outputs)
        self._steps: dict[str, Step] = {}
        self._edges: list[tuple[str, str]] = []

    def _add(self, step: Step) -> Flow:
        if step.name in self._steps:
            raise InvalidRequestError(
                f"flow {self.name!r}: a node named {step.name!r} exists already",
                code="PIPELINE_INVALID",
            )
        self._steps[step.name] = step
        return self

    def add_tool_node(
        self,
        name: str,
        tool: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        depends_on: str | Iterable[str] = (),
        when: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | int | None = None,
        fallback: Iterable[str | FallbackTool] = (),
        on_skipped: Literal["skip", "run"] = "skip",
        description: str = "",
    ) -> Flow:
        """A step that calls ``tool`` (then each of ``fallback`` in turn if it fails)."""
        return self._add(_single(name, inputs, depends_on, when, timeout, retry, fallback, on_skipped,
                                 description, tool=tool))

    def add_pipeline_node(
        self,
        name: str,
        pipeline: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        depends_on: str | Iterable[str] = (),
        when: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | int | None = None,
        fallback: Iterable[str | FallbackTool] = (),
        on_skipped: Literal["skip", "run"] = "skip",
        description: str = "",
    ) -> Flow:
        """A step that runs the pipeline named ``pipeline`` (registered first) as one node.

        Its declared inputs are the node's input ports, its outputs the
        node's outputs (``summary.text``). ``timeout`` bounds the whole
        nested run; ``retry`` and ``fallback`` (tools) apply as to a tool.
        """
        return self._add(_single(name, inputs, depends_on, when, timeout, retry, fallback, on_skipped,
                                 description, pipeline=pipeline))

    def add_parallel_node(
        self,
        name: str,
        branches: Mapping[str, str | Branch] | Iterable[Branch],
        *,
        mode: Literal["all", "first"] = "all",
        inputs: Mapping[str, Any] | None = None,
        depends_on: str | Iterable[str] = (),
        when: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | int | None = None,
        on_skipped: Literal["skip", "run"] = "skip",
        description: str = "",
    ) -> Flow:
        """A step running ``branches`` at once; ``mode`` ``all`` or ``first`` (first success wins).

        ``branches`` maps a branch name to a tool name or a :class:`Branch`
        (renamed to the key), or lists :class:`Branch` objects. Branches
        without inputs of their own take the step's ``inputs``; ``timeout``
        and ``retry`` likewise.
        """
        built: list[Branch] = []
        if isinstance(branches, Mapping):
            for bname, spec in branches.items():
                if isinstance(spec, str):
                    built.append(Branch(name=bname, tool=spec))
                else:
                    built.append(attrs.evolve(spec, name=bname))
        else:
            built.extend(branches)
        return self._add(
            Step(
                name=name,
                inputs=dict(inputs or {}),
                depends_on=_names(depends_on),
                when=when,
                timeout=timeout,
                retry=_retry_default(retry),
                branches=tuple(built),
                mode=mode,
                on_skipped=on_skipped,
                description=description,
            )
        )

    def connect(self, source: str, target: str) -> Flow:
        """``target`` runs after ``source`` (checked when the flow is built)."""
        self._edges.append((source, target))
        return self

    def add_input(self, name: str, schema: Mapping[str, Any] | None = None) -> Flow:
        """Declare a pipeline input (``schema`` is JSON Schema; empty accepts anything)."""
        if self._inputs is None:
            self._inputs = {}
        self._inputs[name] = dict(schema or {})
        return self

    def add_output(self, name: str, expression: str) -> Flow:
        """A pipeline output: ``expression`` over the scope (``"b.summary"``)."""
        if self._outputs is None:
            self._outputs = {}
        self._outputs[name] = expression
        return self

    def to_pipeline(self) -> Pipeline:
        """The pipeline as written, unchecked (``connect`` with unknown names kept as is)."""
        steps = dict(self._steps)
        issues: list[ManifestIssue] = []
        for i, (source, target) in enumerate(self._edges):
            if target not in steps:
                issues.append(
                    ManifestIssue(
                        f"connect({source!r}, {target!r}): no node named {target!r}{name_hint(target, steps)}",
                        path=format_path(("pipelines", self.name, "connect", i)),
                    )
                )
                continue
            step = steps[target]
            if source not in step.depends_on:
                steps[target] = attrs.evolve(step, depends_on=(*step.depends_on, source))
        if issues:
            raise ManifestError(issues=issues, code="PIPELINE_INVALID", pipeline=self.name)
        return Pipeline(
            name=self.name,
            steps=tuple(steps.values()),
            inputs=self._inputs,
            outputs=self._outputs,
            description=self.description,
        )

    def build(self, registry: ToolRegistry | None = None) -> Pipeline:
        """The pipeline, checked: against ``registry`` too when given (tools, IO check)."""
        pipeline = self.to_pipeline()
        _plan, issues = compile_pipeline(pipeline, registry)
        if issues:
            raise ManifestError(issues=issues, code="PIPELINE_INVALID", pipeline=self.name)
        return pipeline


def _single(
    name: str,
    inputs: Mapping[str, Any] | None,
    depends_on: str | Iterable[str],
    when: str | None,
    timeout: float | None,
    retry: RetryPolicy | int | None,
    fallback: Iterable[str | FallbackTool],
    on_skipped: Literal["skip", "run"],
    description: str,
    *,
    tool: str | None = None,
    pipeline: str | None = None,
) -> Step:
    """A step that runs one thing (a tool or a pipeline) with its fallbacks."""
    return Step(
        name=name, tool=tool, pipeline=pipeline, inputs=dict(inputs or {}), depends_on=_names(depends_on),
        when=when, timeout=timeout, retry=_retry_default(retry), fallback=_calls(fallback),
        on_skipped=on_skipped, description=description,
    )
