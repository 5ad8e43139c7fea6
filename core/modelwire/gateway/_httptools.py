"""uvicorn's httptools protocol with the request-head limit its h11 protocol has.

httptools (llhttp) keeps a header value in memory until it ends, and uvicorn
sets no bound on it: ``h11_max_incomplete_event_size`` applies to h11 only, so
one client sending an endless header grows the worker without limit (200 MB
of one header: 250 MB of RSS). The gateway keeps httptools for speed and
counts the bytes of each request head itself: past the limit the answer is
431 and the connection closes, as with h11.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BoundedHttpToolsProtocol"]

_MESSAGE = b"request head too large"
_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _MESSAGE
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Refuses a request line + headers longer than ``config.h11_max_incomplete_event_size``."""

    # a connection starts waiting for a request head
    _in_head = True
    _head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # still inside a head after this chunk: all of the chunk was head bytes
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            limit = self.config.h11_max_incomplete_event_size
            if limit is not None and self._head_bytes > limit:
                self.transport.write(_RESPONSE)
                self.transport.close()
