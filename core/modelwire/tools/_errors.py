"""Tool errors: :class:`ToolError` and its timeout subclass.
"""

from __future__ import annotations

from typing import Any

from .._errors import ModelError

__all__ = [
    "ToolError",
    "ToolTimeout",
]


class ToolError(ModelError):
    """A tool failed, or its input or output broke its manifest.

    Names the ``tool``, the ``port`` and the JSON ``path`` where known; for a
    pipeline also the ``step`` and the ``attempts`` made. Codes:
    ``TOOL_FAILED`` (the function raised; the cause is chained),
    ``TOOL_BAD_INPUT``, ``TOOL_BAD_OUTPUT``, ``TOOL_TIMEOUT``,
    ``TOOL_IMPL_NOT_FOUND``, ``TOOL_SIGNATURE``, ``RESOURCE_FAILED``,
    ``RESOURCES_CLOSED``.
    """

    kind = "invalid_request"
    default_code = "TOOL_FAILED"

    tool: str | None
    port: str | None
    path: str | None
    step: str | None
    attempts: int | None

    def __init__(
        self,
        message: str,
        *,
        tool: str | None = None,
        port: str | None = None,
        path: str | None = None,
        step: str | None = None,
        attempts: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, tool=tool, port=port, path=path, step=step, attempts=attempts, **kw)

    def where(self) -> str:
        parts = [super().where()]
        for name in ("step", "tool", "port", "path", "resource", "attempts"):
            value = getattr(self, name, None)
            if value is not None:
                parts.append(f"{name}={value}")
        return " ".join(p for p in parts if p)


class ToolTimeout(ToolError):
    """A tool call ran past its timeout and was cancelled (``TOOL_TIMEOUT``)."""

    kind = "timeout"
    default_code = "TOOL_TIMEOUT"
