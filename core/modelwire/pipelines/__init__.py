"""Pipelines as data: steps over tools, compiled and checked before they run, and the orchestrator.

``from modelwire.pipelines import Flow, Orchestrator, load_pipelines``.
"""

from __future__ import annotations

from ._iocheck import schema_problems
from ._model import (
    Branch,
    FallbackTool,
    Flow,
    Pipeline,
    PipelineError,
    RetryPolicy,
    Step,
    compile_pipeline,
    load_pipelines,
    parse_pipelines,
    read_pipelines,
)
from ._orchestrator import Orchestrator, PipelineResult, StepResult

__all__ = [
    "Branch",
    "FallbackTool",
    "Flow",
    "Orchestrator",
    "Pipeline",
    "PipelineError",
    "PipelineResult",
    "RetryPolicy",
    "Step",
    "StepResult",
    "compile_pipeline",
    "load_pipelines",
    "parse_pipelines",
    "read_pipelines",
    "schema_problems",
]
