"""Pipelines as data: steps over tools, compiled and checked before they run, and the orchestrator.

``from modelwire.pipelines import Flow, Orchestrator, load_pipelines``.
"""

from __future__ import annotations

from ._compiler import compile_pipeline
from ._definition import Branch, FallbackTool, Pipeline, RetryPolicy, Step
from ._errors import PipelineError
from ._files import load_pipelines, parse_pipelines, read_pipelines
from ._flow import Flow
from ._iocheck import schema_problems
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
