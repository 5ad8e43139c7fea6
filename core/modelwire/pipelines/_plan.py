"""The compiled plan the orchestrator runs: steps in order, with their expressions compiled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ..tools import Tool
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
