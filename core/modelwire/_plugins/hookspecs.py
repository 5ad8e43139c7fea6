"""The plugin hooks of modelwire (pluggy project name ``modelwire``).

Each hook receives a ``register`` callback, so the host owns the names and can
report a clash between two plugins (the pattern of simonw/llm).
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("modelwire")
hookimpl = pluggy.HookimplMarker("modelwire")


@hookspec
def register_parsers(register: Any) -> None:
    """Register stream parsers.

    Call ``register(name, factory, media_types=[...])``. ``factory(**options)``
    returns an object with ``feed(bytes) -> list[Frame]`` and
    ``close() -> list[Frame]``. ``media_types`` join Content-Type detection
    (``text/*`` style wildcards are allowed).
    """


@hookspec
def register_auth_injectors(register: Any) -> None:
    """Register auth injectors.

    Call ``register(name, injector)``; ``injector(request, auth)`` adds
    credentials to an outgoing request (headers and query are mutable dicts)
    from the manifest's ``auth:`` block.
    """


@hookspec
def register_tokenizers(register: Any) -> None:
    """Register tokenizers.

    Call ``register(name, tokenizer)``; a tokenizer has ``count(text) -> int``
    and optionally ``encode(text) -> list[int]``.
    """


@hookspec
def register_limiters(register: Any) -> None:
    """Register rate-limiter backends.

    Call ``register(name, factory)``; ``factory(**options)`` returns a backend
    with ``try_acquire(key, *, rpm, tpm, tokens) -> Admission``,
    ``reconcile(key, ticket, tokens)``, ``close()`` and a ``blocking`` flag
    (blocking backends are called from a worker thread). See
    ``modelwire._plugins.limiter``.
    """


@hookspec
def register_fallback_policies(register: Any) -> None:
    """Register fallback policies.

    Call ``register(name, policy)``; for a typed error the policy decides
    whether to retry (after a delay), move to the next model, or raise.
    """
