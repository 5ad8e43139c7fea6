"""The outgoing HTTP request, as built from a manifest before transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["OutgoingRequest"]


@attrs.define
class OutgoingRequest:
    """A request about to be sent; auth injectors mutate ``headers`` and ``params``."""

    method: str
    url: str
    headers: dict[str, str] = attrs.Factory(dict)
    params: dict[str, str] = attrs.Factory(dict)
    json: Any = None
    provider: str | None = None
    model: str | None = None
    env: Mapping[str, str] | None = None  # where auth keys are read (default: os.environ)
    #: values an auth injector added (scrubbed from error messages)
    secrets: list[str] = attrs.Factory(list)
    #: query parameters an auth injector filled (masked in httpx's log lines)
    secret_params: list[str] = attrs.Factory(list)

    def __repr__(self) -> str:  # never show credentials
        return f"OutgoingRequest(method={self.method!r}, url={self.url!r})"
