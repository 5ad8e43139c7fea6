"""modelwire: call language-model providers from manifests.

``import modelwire`` is the client core: the runtime, manifests, plugins,
events and errors. Tools, pipelines and the agent runtime are the public
subpackages :mod:`modelwire.tools`, :mod:`modelwire.pipelines` and
:mod:`modelwire.agent`; :mod:`modelwire.plugin` is what plugin authors use.

One table, :data:`_EXPORTS`, names every public attribute and the module it
lives in; it generates ``__all__`` and the lazy imports. Modules in
:data:`_EAGER` are cheap and load with the package; the rest (cattrs, yaml,
anyio, httpx, pluggy discovery) load on first use, so ``import modelwire``
stays light for plugin authors and CLIs.
"""

import importlib as _importlib
import typing as _typing

from ._version import __version__

if _typing.TYPE_CHECKING:  # the same names as _EXPORTS (tests/test_exported_members.py checks)
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
    from ._manifest.catalog import Catalog, load_manifests
    from ._plugins.hookspecs import hookimpl
    from ._plugins.limiter import Admission, LimiterBackend, LocalLimiter
    from ._plugins.manager import Plugins, Registration, get_parser, get_plugins, set_plugins
    from ._plugins.policies import Attempt, Decision, FallbackPolicy
    from ._plugins.request import OutgoingRequest
    from ._plugins.tokenizers import Tokenizer, count_messages
    from ._runtime.client import Response, Runtime, SyncRuntime, Totals
    from ._runtime.metrics import Metrics

_ERRORS = "._errors"
_EVENTS = "._events"

#: public name -> the module that defines it (relative to this package)
_EXPORTS: dict[str, str] = {
    "Admission": "._plugins.limiter",
    "Attempt": "._plugins.policies",
    "AuthError": _ERRORS,
    "Catalog": "._manifest.catalog",
    "Decision": "._plugins.policies",
    "Done": _EVENTS,
    "Embedding": _EVENTS,
    "Event": _EVENTS,
    "Fallback": _EVENTS,
    "FallbackPolicy": "._plugins.policies",
    "Finish": _EVENTS,
    "Frame": "._frames",
    "InternalError": _ERRORS,
    "InvalidRequestError": _ERRORS,
    "LimitExceededError": _ERRORS,
    "LimiterBackend": "._plugins.limiter",
    "LocalLimiter": "._plugins.limiter",
    "ManifestError": _ERRORS,
    "ManifestIssue": _ERRORS,
    "Metrics": "._runtime.metrics",
    "ModelError": _ERRORS,
    "NetworkError": _ERRORS,
    "NotFoundError": _ERRORS,
    "OutgoingRequest": "._plugins.request",
    "ParseError": _ERRORS,
    "Parser": "._frames",
    "ParserFactory": "._frames",
    "PluginError": _ERRORS,
    "Plugins": "._plugins.manager",
    "ProviderDownError": _ERRORS,
    "RateLimitError": _ERRORS,
    "Registration": "._plugins.manager",
    "RequestTimeout": _ERRORS,
    "Response": "._runtime.client",
    "Runtime": "._runtime.client",
    "SyncRuntime": "._runtime.client",
    "TextDelta": _EVENTS,
    "Tokenizer": "._plugins.tokenizers",
    "ToolCall": _EVENTS,
    "ToolCallDelta": _EVENTS,
    "Totals": "._runtime.client",
    "Usage": _EVENTS,
    "count_messages": "._plugins.tokenizers",
    "error_class": _ERRORS,
    "get_parser": "._plugins.manager",
    "get_plugins": "._plugins.manager",
    "hookimpl": "._plugins.hookspecs",
    "load_manifests": "._manifest.catalog",
    "set_plugins": "._plugins.manager",
}

#: cheap modules, imported with the package (no third-party imports but pluggy's marker)
_EAGER = frozenset({_ERRORS, _EVENTS, "._frames", "._plugins.hookspecs", "._plugins.request"})

__all__ = sorted([*_EXPORTS, "__version__"])


def _load(name: str) -> _typing.Any:
    value = getattr(_importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


for _name, _module in _EXPORTS.items():
    if _module in _EAGER:
        _load(_name)
del _name, _module


#: public subpackages, imported on first attribute access (``modelwire.tools.tool``)
_SUBPACKAGES = frozenset({"agent", "pipelines", "plugin", "testing", "tools"})


def __getattr__(name: str) -> _typing.Any:
    if name in _SUBPACKAGES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'modelwire' has no attribute {name!r}")
    return _load(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
