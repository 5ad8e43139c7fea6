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
    from ._errors import AuthError as AuthError
    from ._errors import InternalError as InternalError
    from ._errors import InvalidRequestError as InvalidRequestError
    from ._errors import LimitExceededError as LimitExceededError
    from ._errors import ManifestError as ManifestError
    from ._errors import ManifestIssue as ManifestIssue
    from ._errors import ModelError as ModelError
    from ._errors import NetworkError as NetworkError
    from ._errors import NotFoundError as NotFoundError
    from ._errors import OutputSchemaError as OutputSchemaError
    from ._errors import ParseError as ParseError
    from ._errors import PluginError as PluginError
    from ._errors import ProviderDownError as ProviderDownError
    from ._errors import RateLimitError as RateLimitError
    from ._errors import RequestTimeout as RequestTimeout
    from ._errors import error_class as error_class
    from ._events import Citation as Citation
    from ._events import Data as Data
    from ._events import Done as Done
    from ._events import Embedding as Embedding
    from ._events import Event as Event
    from ._events import Fallback as Fallback
    from ._events import Finish as Finish
    from ._events import Reasoning as Reasoning
    from ._events import ReasoningDelta as ReasoningDelta
    from ._events import ServerToolCall as ServerToolCall
    from ._events import ServerToolResult as ServerToolResult
    from ._events import TextDelta as TextDelta
    from ._events import ToolCall as ToolCall
    from ._events import ToolCallDelta as ToolCallDelta
    from ._events import Usage as Usage
    from ._frames import Frame as Frame
    from ._frames import Parser as Parser
    from ._frames import ParserFactory as ParserFactory
    from ._manifest.catalog import Catalog as Catalog
    from ._manifest.catalog import load_manifests as load_manifests
    from ._plugins.hookspecs import hookimpl as hookimpl
    from ._plugins.limiter import Admission as Admission
    from ._plugins.limiter import LimiterBackend as LimiterBackend
    from ._plugins.limiter import LocalLimiter as LocalLimiter
    from ._plugins.manager import Plugins as Plugins
    from ._plugins.manager import Registration as Registration
    from ._plugins.manager import get_parser as get_parser
    from ._plugins.manager import get_plugins as get_plugins
    from ._plugins.manager import set_plugins as set_plugins
    from ._plugins.policies import Attempt as Attempt
    from ._plugins.policies import Decision as Decision
    from ._plugins.policies import FallbackPolicy as FallbackPolicy
    from ._plugins.request import OutgoingRequest as OutgoingRequest
    from ._plugins.tokenizers import Tokenizer as Tokenizer
    from ._plugins.tokenizers import count_messages as count_messages
    from ._runtime.client import Response as Response
    from ._runtime.client import Runtime as Runtime
    from ._runtime.client import SyncRuntime as SyncRuntime
    from ._runtime.client import Totals as Totals
    from ._runtime.metrics import Metrics as Metrics
    from ._runtime.operators import OperatorResult as OperatorResult

_ERRORS = "._errors"
_EVENTS = "._events"

#: public name -> the module that defines it (relative to this package)
_EXPORTS: dict[str, str] = {
    "Admission": "._plugins.limiter",
    "Attempt": "._plugins.policies",
    "AuthError": _ERRORS,
    "Catalog": "._manifest.catalog",
    "Citation": _EVENTS,
    "Decision": "._plugins.policies",
    "Data": _EVENTS,
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
    "OperatorResult": "._runtime.operators",
    "OutgoingRequest": "._plugins.request",
    "OutputSchemaError": _ERRORS,
    "ParseError": _ERRORS,
    "Parser": "._frames",
    "ParserFactory": "._frames",
    "PluginError": _ERRORS,
    "Plugins": "._plugins.manager",
    "ProviderDownError": _ERRORS,
    "RateLimitError": _ERRORS,
    "Reasoning": _EVENTS,
    "ReasoningDelta": _EVENTS,
    "Registration": "._plugins.manager",
    "RequestTimeout": _ERRORS,
    "Response": "._runtime.client",
    "Runtime": "._runtime.client",
    "ServerToolCall": _EVENTS,
    "ServerToolResult": _EVENTS,
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
