"""Transport: the httpx pump, and the only I/O of a call.

Opens one streaming HTTP request, reads bodies with a cap, yields body
chunks under the total deadline, and translates httpx exceptions into the
:class:`~modelwire.ModelError` tree at this boundary (cause chained, as
httpcore's ``map_exceptions``). What the bytes mean is the exchange's job.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import aclosing, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import NetworkError, RequestTimeout, redact
from .._manifest.model import Timeout
from .._plugins.request import OutgoingRequest

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_DRAIN", "MAX_ERROR_BODY", "Deadline", "RedactingFilter", "install_log_filter", "map_exceptions",
    "open_stream", "read_capped", "retry_after",
]

#: bytes of an error body read (the rest is not needed to classify it)
MAX_ERROR_BODY = 64 * 1024
#: bytes read after the end marker so the connection returns to the pool
MAX_DRAIN = 256 * 1024


class RedactingFilter(logging.Filter):
    """Masks credentials in httpx's and httpcore's log records (``HTTP Request: POST https://...?key=...``).

    Query parameters that an auth injector filled (their names are collected
    in :attr:`names`; names are not secrets) are masked whatever the value
    looks like, and anything else :func:`~modelwire._errors.redact` knows.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        for name in self.names:
            masked = re.sub(rf"([?&]{re.escape(name)}=)[^&\s\"']+", r"\1***", masked)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_FILTER = RedactingFilter()


def install_log_filter(query_names: Iterable[str] = ()) -> None:
    """Attach the redacting filter to httpx's loggers (once) and learn auth query parameter names."""
    _FILTER.names.update(query_names)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Deadline:
    """The total timeout of one attempt, checked between chunks."""

    __slots__ = ("at", "total")

    def __init__(self, total: float | None) -> None:
        self.total = total
        self.at = None if total is None else anyio.current_time() + total

    def check(self, context: dict[str, Any]) -> None:
        if self.at is not None and anyio.current_time() > self.at:
            raise RequestTimeout(f"total timeout of {self.total}s expired", code="TOTAL_TIMEOUT", **context)


@contextmanager
def map_exceptions(context: dict[str, Any]) -> Iterator[None]:
    """httpx's exceptions -> typed modelwire errors naming the model, provider and endpoint."""
    import httpx

    try:
        yield
    except httpx.TimeoutException as exc:
        raise RequestTimeout(f"{type(exc).__name__}: {exc or 'timed out'}", **context) from exc
    except httpx.RemoteProtocolError as exc:
        raise NetworkError(f"connection broke mid-response: {exc}", code="STREAM_BROKEN", **context) from exc
    except httpx.TransportError as exc:
        raise NetworkError(f"{type(exc).__name__}: {exc}", **context) from exc


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, outgoing: OutgoingRequest, timeouts: Timeout
) -> AsyncIterator[httpx.Response]:
    """One streaming request; its response with the body still unread."""
    import httpx

    if outgoing.secret_params:
        install_log_filter(outgoing.secret_params)

    read = timeouts.read if timeouts.total is None else min(timeouts.read, timeouts.total)
    timeout = httpx.Timeout(connect=timeouts.connect, read=read, write=timeouts.write, pool=timeouts.connect)
    content = outgoing.body()  # the bytes an auth injector may have signed
    headers = outgoing.headers
    if content is not None and not any(k.lower() == "content-type" for k in headers):
        headers = {**headers, "Content-Type": "application/json"}
    request = client.build_request(
        outgoing.method,
        outgoing.url,
        headers=headers,
        params=outgoing.params or None,
        content=content,
        timeout=timeout,
    )
    resp = await client.send(request, stream=True)
    try:
        yield resp
    finally:
        await resp.aclose()


async def read_capped(resp: httpx.Response, limit: int) -> bytes:
    """At most about ``limit`` bytes of a body (error pages, HTML), never the whole of a huge one."""
    body = b""
    async with aclosing(resp.aiter_bytes()) as chunks:  # type: ignore[type-var]
        async for chunk in chunks:
            body += chunk
            if len(body) >= limit:
                break
    return body[:limit]
