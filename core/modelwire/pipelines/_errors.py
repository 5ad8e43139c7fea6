"""The error a running pipeline raises: :class:`PipelineError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..tools import ToolError

__all__ = [
    "PipelineError",
]


class PipelineError(ToolError):
    """A pipeline failed while running.

    ``code`` says how (``STEP_FAILED``, ``STEP_TIMEOUT``, ``BRANCHES_FAILED``,
    ``PIPELINE_BAD_INPUT``, ``EXPRESSION_FAILED``); ``pipeline``, ``step``,
    ``branch``, ``tool`` and ``attempts`` say where and how often; the last
    underlying error is the ``__cause__`` and ``failures`` holds the last
    error of each alternative tried (fallbacks, branches).

    Problems in a pipeline's definition are not this: they are found at load
    or registration and raised as :class:`~modelwire.ManifestError`
    (code ``PIPELINE_INVALID``) listing every issue.
    """

    default_code = "PIPELINE_FAILED"

    pipeline: str | None
    branch: str | None
    failures: tuple[ToolError, ...]

    def __init__(
        self,
        message: str,
        *,
        pipeline: str | None = None,
        branch: str | None = None,
        failures: Sequence[ToolError] = (),
        **kw: Any,
    ) -> None:
        super().__init__(message, pipeline=pipeline, branch=branch, failures=tuple(failures), **kw)

    def where(self) -> str:
        parts = [f"pipeline={self.pipeline}"] if getattr(self, "pipeline", None) else []
        if getattr(self, "branch", None):
            parts.append(f"branch={self.branch}")
        rest = super().where()
        return " ".join([*parts, rest] if rest else parts)
