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
    from ._plugins import Plugins, Registration, get_parser, get_plugins, set_plugins
    from ._runtime import Response, Runtime, SyncRuntime, Totals
    from ._tokenizers import Tokenizer, count_messages

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
