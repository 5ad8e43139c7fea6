"""The compiled plan the orchestrator runs: steps in order, with their expressions compiled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ..tools import Port, Tool, ToolManifest
from ._definition import Pipeline, RetryPolicy

if TYPE_CHECKING:
    from .._manifest.expr import Expr

__all__ = [
    "INPUT",
    "CompiledBranch",
    "CompiledCall",
    "CompiledStep",
    "Feed",
    "PipelinePlan",
    "node_manifest",
]


INPUT = "input"  # the scope name of the pipeline's own inputs


@attrs.frozen
class Feed:
    """How one input port gets its value: an expression, or a literal."""

    port: str
    expr: Expr | None = None
    literal: Any = None


@attrs.frozen
class CompiledCall:
    tool: Tool
    #: "tool 'x'", "fallback tool 'y'": for messages
    label: str
    feeds: tuple[Feed, ...]
    timeout: float | None
    retry: RetryPolicy
    #: the pipeline this call runs (``tool`` is its node form), else None
    pipeline: str | None = None


@attrs.frozen
class CompiledBranch:
    name: str | None
    chain: tuple[CompiledCall, ...]


@attrs.frozen
class CompiledStep:
    name: str
    deps: tuple[str, ...]
    when: Expr | None
    branches: tuple[CompiledBranch, ...]
    parallel: bool
    mode: str
    on_skipped: str


@attrs.frozen
class PipelinePlan:
    pipeline: Pipeline
    #: in a topological order
    steps: tuple[CompiledStep, ...]
    outputs: dict[str, Expr] | None
    #: the ``input.NAME`` it reads (declared or not); None: it reads ``input`` as a whole
    reads: tuple[str, ...] | None = ()


def node_manifest(plan: PipelinePlan) -> ToolManifest:
    """A pipeline seen from a step that runs it: its inputs and outputs as ports.

    Declared ``inputs`` keep their schemas; undeclared, the node takes the
    inputs the pipeline reads, any value, each optional. Declared
    ``outputs`` are the node's outputs; undeclared, one object per step
    (absent when the step was skipped).
    """
    p = plan.pipeline
    if p.inputs is not None:
        inputs = [Port(name, dict(schema)) for name, schema in p.inputs.items()]
    else:
        inputs = [Port(name, {}, required=False) for name in plan.reads or ()]
    if p.outputs is not None:
        outputs = [Port(name, {}) for name in p.outputs]
    else:
        outputs = [Port(s.name, {"type": "object"}, required=False) for s in p.steps]
    return ToolManifest(name=p.name, description=p.description, inputs=inputs, outputs=outputs)
