"""The built-in auth injectors ``none``, ``bearer``, ``header`` and ``query``.

An injector adds credentials to an :class:`OutgoingRequest`; every value it
adds is recorded in ``request.secrets`` so errors, logs and reprs can hide it.
"""

from __future__ import annotations

import os
from typing import Any

from .._errors import AuthError
from .request import OutgoingRequest


def secret(auth: Any, request: OutgoingRequest) -> str | None:
    """The key named by ``auth.env`` (or a literal ``auth.value``).

    Unset: AuthError naming the variable, or None when ``auth.optional``.
    """
    value = getattr(auth, "value", None)
    if value:
        return str(value)
    env = getattr(auth, "env", None)
    if not env:
        raise AuthError(
            "auth needs `env` (the variable holding the key) or `value`",
            code="AUTH_NOT_CONFIGURED",
            provider=request.provider,
            model=request.model,
        )
    key = (request.env if request.env is not None else os.environ).get(env)
    if not key and getattr(auth, "optional", False):
        return None
    if not key:
        raise AuthError(
            f"environment variable {env} is not set (the API key for this provider)",
            code="AUTH_KEY_MISSING",
            provider=request.provider,
            model=request.model,
            variable=env,
        )
    return key


def none(request: OutgoingRequest, auth: Any) -> None:
    """No credentials (local servers)."""


def bearer(request: OutgoingRequest, auth: Any) -> None:
    """``Authorization: Bearer <key>``."""
    key = secret(auth, request)
    if key is not None:
        request.headers["Authorization"] = f"Bearer {key}"


def header(request: OutgoingRequest, auth: Any) -> None:
    """A named header, e.g. ``x-api-key: <key>`` (``auth.name``, optional ``auth.prefix``)."""
    name = getattr(auth, "name", None) or "x-api-key"
    key = secret(auth, request)
    if key is not None:
        request.headers[name] = (getattr(auth, "prefix", None) or "") + key


def query(request: OutgoingRequest, auth: Any) -> None:
    """A query parameter, e.g. ``?key=<key>`` (``auth.name``)."""
    name = getattr(auth, "name", None) or "key"
    key = secret(auth, request)
    if key is not None:
        request.params[name] = key
