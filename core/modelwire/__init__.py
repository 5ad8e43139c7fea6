"""modelwire: call language-model providers from manifests."""

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
from ._fallback import Attempt, Decision, FallbackPolicy
from ._frames import Frame, Parser, ParserFactory
from ._hookspecs import hookimpl
from ._limits import Admission, LimiterBackend, LocalLimiter
from ._loader import Catalog, load_manifests
from ._plugins import Plugins, Registration, get_parser, get_plugins, set_plugins
from ._request import OutgoingRequest
from ._runtime import Response, Runtime, SyncRuntime, Totals
from ._tokenizers import Tokenizer, count_messages
from ._version import __version__


def __getattr__(name: str) -> object:
    # Metrics imports prometheus_client: load it only when asked for.
    if name == "Metrics":
        from ._metrics import Metrics

        return Metrics
    raise AttributeError(f"module 'modelwire' has no attribute {name!r}")


__all__ = [
    "Admission",
    "Attempt",
    "AuthError",
    "Catalog",
    "Decision",
    "Done",
    "Embedding",
    "Event",
    "Fallback",
    "FallbackPolicy",
    "Finish",
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
    "OutgoingRequest",
    "ParseError",
    "Parser",
    "ParserFactory",
    "PluginError",
    "Plugins",
    "ProviderDownError",
    "RateLimitError",
    "Registration",
    "RequestTimeout",
    "Response",
    "Runtime",
    "SyncRuntime",
    "TextDelta",
    "Tokenizer",
    "ToolCall",
    "ToolCallDelta",
    "Totals",
    "Usage",
    "__version__",
    "count_messages",
    "error_class",
    "get_parser",
    "get_plugins",
    "hookimpl",
    "load_manifests",
    "set_plugins",
]
