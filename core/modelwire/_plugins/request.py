"""The outgoing HTTP request, as built from a manifest before transport."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from .._errors import InvalidRequestError

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

    #: the encoded body, once :meth:`body` ran
    _body: bytes | None = attrs.field(default=None, init=False)

    def body(self) -> bytes | None:
        """The JSON body exactly as it is sent (compact UTF-8), encoded once.

        Transport sends these bytes, so an injector that signs the body
        (``sigv4``) signs what goes on the wire. Change ``json`` before the
        first call, not after.
        """
        if self.json is None:
            return None
        if self._body is None:
            try:
                text = json.dumps(self.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
                self._body = text.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate in a message: not valid UTF-8
                raise InvalidRequestError(
                    f"the request holds text that is not valid Unicode ({exc.reason} at character "
                    f"{exc.start} of the encoded body); remove lone surrogates from the messages",
                    code="INVALID_UNICODE", provider=self.provider, model=self.model,
                ) from None
        return self._body

    def __repr__(self) -> str:  # never show credentials
        return f"OutgoingRequest(method={self.method!r}, url={self.url!r})"
