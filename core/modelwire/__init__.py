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
from ._frames import Frame, Parser, ParserFactory
from ._loader import Catalog, load_manifests
from ._hookspecs import hookimpl
from ._plugins import Plugins, Registration, get_parser, get_plugins, set_plugins
from ._request import OutgoingRequest
from ._runtime import Response, Runtime, SyncRuntime
from ._version import __version__

__all__ = [
    "AuthError",
    "Catalog",
    "Done",
    "Embedding",
    "Event",
    "Fallback",
    "Finish",
    "Frame",
    "InternalError",
    "InvalidRequestError",
    "LimitExceededError",
    "ManifestError",
    "ManifestIssue",
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
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "__version__",
    "error_class",
    "get_parser",
    "get_plugins",
    "hookimpl",
    "load_manifests",
    "set_plugins",
]
