"""modelwire: call language-model providers from manifests."""

import importlib as _importlib
import typing as _typing

from ._errors import (
    AuthError,
    InternalError,
    InvalidRequestError,
    LimitExceededError,
    ManifestError,
    ManifestIssue,
    ModelError,
    NetworkError,
    NotFoundError,
    ParseError,
    PluginError,
    ProviderDownError,
    RateLimitError,
    RequestTimeout,
    error_class,
)
from ._events import (
    Done,
    Embedding,
    Event,
    Fallback,
    Finish,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from ._frames import Frame, Parser, ParserFactory
from ._hookspecs import hookimpl
from ._request import OutgoingRequest
from ._version import __version__

if _typing.TYPE_CHECKING:
    from ._fallback import Attempt, Decision, FallbackPolicy
    from ._limits import Admission, LimiterBackend, LocalLimiter
    from ._loader import Catalog, load_manifests
    from ._metrics import Metrics
    from ._orchestrator import Orchestrator, PipelineResult, StepResult
    from ._pipeline import (
        Branch,
        FallbackTool,
        Flow,
        Pipeline,
        PipelineError,
        RetryPolicy,
        Step,
        load_pipelines,
    )
    from ._plugins import Plugins, Registration, get_parser, get_plugins, set_plugins
    from ._resources import FileCache, ResourceKind, ResourceManager, ResourcePool, SharedPool
    from ._runtime import Response, Runtime, SyncRuntime, Totals
    from ._tokenizers import Tokenizer, count_messages
    from ._toolloop import ToolLoopDone, ToolResult, ToolStarted
    from ._tools import (
        AgentContext,
        Port,
        ResourceSpec,
        Tool,
        ToolBuilder,
        ToolContext,
        ToolError,
        ToolManifest,
        ToolRegistry,
        ToolTimeout,
        call_tool,
        load_tools,
        tool,
        validate_ports,
    )

# Heavier parts (cattrs, yaml, anyio, pluggy discovery, prometheus_client) load
# on first use, so `import modelwire` stays cheap for plugin authors and CLIs.
_LAZY = {
    "Attempt": "_fallback",
    "Decision": "_fallback",
    "FallbackPolicy": "_fallback",
    "Admission": "_limits",
    "LimiterBackend": "_limits",
    "LocalLimiter": "_limits",
    "Catalog": "_loader",
    "load_manifests": "_loader",
    "Metrics": "_metrics",
    "Orchestrator": "_orchestrator",
    "PipelineResult": "_orchestrator",
    "StepResult": "_orchestrator",
    "Branch": "_pipeline",
    "FallbackTool": "_pipeline",
    "Flow": "_pipeline",
    "Pipeline": "_pipeline",
    "PipelineError": "_pipeline",
    "RetryPolicy": "_pipeline",
    "Step": "_pipeline",
    "load_pipelines": "_pipeline",
    "Plugins": "_plugins",
    "Registration": "_plugins",
    "get_parser": "_plugins",
    "get_plugins": "_plugins",
    "set_plugins": "_plugins",
    "Response": "_runtime",
    "Runtime": "_runtime",
    "SyncRuntime": "_runtime",
    "Totals": "_runtime",
    "Tokenizer": "_tokenizers",
    "count_messages": "_tokenizers",
    "FileCache": "_resources",
    "ResourceKind": "_resources",
    "ResourceManager": "_resources",
    "ResourcePool": "_resources",
    "SharedPool": "_resources",
    "AgentContext": "_tools",
    "Port": "_tools",
    "ResourceSpec": "_tools",
    "Tool": "_tools",
    "ToolBuilder": "_tools",
    "ToolContext": "_tools",
    "ToolError": "_tools",
    "ToolManifest": "_tools",
    "ToolRegistry": "_tools",
    "ToolTimeout": "_tools",
    "call_tool": "_tools",
    "load_tools": "_tools",
    "tool": "_tools",
    "validate_ports": "_tools",
    "ToolLoopDone": "_toolloop",
    "ToolResult": "_toolloop",
    "ToolStarted": "_toolloop",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelwire' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Admission",
    "AgentContext",
    "Attempt",
    "AuthError",
    "Branch",
    "Catalog",
    "Decision",
    "Done",
    "Embedding",
    "Event",
    "Fallback",
    "FallbackPolicy",
    "FallbackTool",
    "FileCache",
    "Finish",
    "Flow",
    "Frame",
    "InternalError",
    "InvalidRequestError",
    "LimitExceededError",
    "LimiterBackend",
    "LocalLimiter",
    "ManifestError",
    "ManifestIssue",
    "Metrics",
    "ModelError",
    "NetworkError",
    "NotFoundError",
    "Orchestrator",
    "OutgoingRequest",
    "ParseError",
    "Parser",
    "ParserFactory",
    "Pipeline",
    "PipelineError",
    "PipelineResult",
    "PluginError",
    "Plugins",
    "Port",
    "ProviderDownError",
    "RateLimitError",
    "Registration",
    "RequestTimeout",
    "ResourceKind",
    "ResourceManager",
    "ResourcePool",
    "ResourceSpec",
    "Response",
    "RetryPolicy",
    "Runtime",
    "SharedPool",
    "Step",
    "StepResult",
    "SyncRuntime",
    "TextDelta",
    "Tokenizer",
    "Tool",
    "ToolBuilder",
    "ToolCall",
    "ToolCallDelta",
    "ToolContext",
    "ToolError",
    "ToolLoopDone",
    "ToolManifest",
    "ToolRegistry",
    "ToolResult",
    "ToolStarted",
    "ToolTimeout",
    "Totals",
    "Usage",
    "__version__",
    "call_tool",
    "count_messages",
    "error_class",
    "get_parser",
    "get_plugins",
    "hookimpl",
    "load_manifests",
    "load_pipelines",
    "load_tools",
    "set_plugins",
    "tool",
    "validate_ports",
]
