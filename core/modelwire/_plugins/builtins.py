"""The plugin that ships inside the core: every built-in, registered through the same hooks as third-party plugins.

Auth injectors ``none``, ``bearer``, ``header``, ``query``; the ``local``
limiter; the ``default`` and ``raise`` fallback policies; the ``approx``
tokenizer. Parsers are separate distributions (``plugins/``).
"""

from __future__ import annotations

from typing import Any

from .auth import bearer, header, none, query
from .hookspecs import hookimpl
from .limiter import LocalLimiter
from .policies import DefaultPolicy, RaisePolicy
from .tokenizers import APPROX


@hookimpl
def register_auth_injectors(register: Any) -> None:
    register("none", none)
    register("bearer", bearer)
    register("header", header)
    register("query", query)


@hookimpl
def register_limiters(register: Any) -> None:
    register("local", LocalLimiter)


@hookimpl
def register_fallback_policies(register: Any) -> None:
    register("default", DefaultPolicy())
    register("raise", RaisePolicy())


@hookimpl
def register_tokenizers(register: Any) -> None:
    register("approx", APPROX)
