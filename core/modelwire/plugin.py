"""The public plugin API: everything a plugin distribution may import.

Plugin packages (parsers, auth injectors, tokenizers, fallback policies,
limiter backends) import from here or from ``modelwire`` itself, never from
a private module; ``tests/test_layers.py`` checks that every distribution
under ``plugins/`` does. The hooks are documented in docs/plugins.md::

    from modelwire.plugin import Frame, ParseError, hookimpl

    @hookimpl
    def register_parsers(register):
        register("upper-lines", UpperLines, media_types=["text/x-upper"])
"""

from __future__ import annotations

from ._errors import (
    AuthError,
    InternalError,
    InvalidRequestError,
    ModelError,
    NetworkError,
    ParseError,
    PluginError,
    RateLimitError,
)
from ._frames import Frame, Parser, ParserFactory
from ._plugins.auth import secret
from ._plugins.hookspecs import hookimpl
from ._plugins.limiter import WINDOW as LIMIT_WINDOW
from ._plugins.limiter import Admission, LimiterBackend, LocalLimiter
from ._plugins.policies import (
    Attempt,
    Decision,
    FallbackPolicy,
    RetrySettings,
    full_jitter,
    retryable,
)
from ._plugins.request import OutgoingRequest
from ._plugins.tokenizers import EncodingTokenizer, Tokenizer

__all__ = [
    "LIMIT_WINDOW",
    "Admission",
    "Attempt",
    "AuthError",
    "Decision",
    "EncodingTokenizer",
    "FallbackPolicy",
    "Frame",
    "InternalError",
    "InvalidRequestError",
    "LimiterBackend",
    "LocalLimiter",
    "ModelError",
    "NetworkError",
    "OutgoingRequest",
    "ParseError",
    "Parser",
    "ParserFactory",
    "PluginError",
    "RateLimitError",
    "RetrySettings",
    "Tokenizer",
    "full_jitter",
    "hookimpl",
    "retryable",
    "secret",
]
