"""The AWS event stream (``application/vnd.amazon.eventstream``), sans-IO.

A stream is a sequence of binary messages::

    total length  u32 BE   (the whole message, these 4 bytes and the CRC included)
    header length u32 BE
    prelude CRC   u32 BE   CRC-32 of the 8 bytes above
    headers       name (u8 length + UTF-8), type (u8), value (by type)
    payload       total - header length - 16 bytes
    message CRC   u32 BE   CRC-32 of every byte before it

Both CRCs are checked. A length field is read before the message arrives, so
it is hostile input: a total length above ``max_message_size`` (or one that
cannot hold the prelude, the headers and the CRC) fails at once with
:class:`modelwire.ParseError`, instead of waiting for gigabytes that will
never come. Each check runs when the bytes it needs have arrived, in stream
order, so frames and errors never depend on the chunking.

One message -> one :class:`modelwire.Frame` (see :func:`message_frame`).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

from modelwire.plugin import Frame, ParseError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MEDIA_TYPE",
    "EventStreamParser",
    "HeaderValue",
    "encode_message",
    "message_frame",
]

#: The Content-Type AWS sends event streams with.
MEDIA_TYPE = "application/vnd.amazon.eventstream"

#: botocore's own limits: 128 KiB of headers, 24 MiB of payload.
_MAX_HEADERS = 128 * 1024
_MAX_PAYLOAD = 24 * 1024 * 1024
#: The largest message accepted by default: botocore's limits plus prelude and CRC.
DEFAULT_MAX_MESSAGE_SIZE = _MAX_HEADERS + _MAX_PAYLOAD + 16

_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_crc32 = zlib.crc32

#: A decoded header value: bool (types 0, 1), int (2-5; 8, a timestamp in ms),
#: bytes (6 and 9, a UUID) or str (7).
HeaderValue = bool | int | bytes | str

# type -> (struct format or None, fixed size) for the fixed-size types
_FIXED: dict[int, struct.Struct] = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
    8: struct.Struct(">q"),
}


def _size_option(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 16:
        raise ValueError(f"{name} must be at least 16 (an empty message), got {value}")
    return value


def _decode_headers(raw: bytes, offset: int) -> dict[str, HeaderValue]:
    """Headers of one message; ``offset`` is where ``raw`` starts in the stream."""
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(raw)

    def bad(what: str, at: int) -> ParseError:
        return ParseError(
            f"bad event stream header at byte {offset + at}: {what}",
            code="AWS_BAD_HEADER", offset=offset + at,
        )

    while pos < end:
        start = pos
        size = raw[pos]
        pos += 1
        if size == 0 or pos + size + 1 > end:
            raise bad("name length out of bounds", start)
        try:
            name = raw[pos : pos + size].decode("utf-8")
        except UnicodeDecodeError:
            raise bad("name is not UTF-8", start) from None
        pos += size
        kind = raw[pos]
        pos += 1
        value: HeaderValue
        if kind == 0 or kind == 1:
            value = kind == 0
        elif kind in _FIXED:
            fmt = _FIXED[kind]
            if pos + fmt.size > end:
                raise bad(f"{name!r} is cut short", start)
            (value,) = fmt.unpack_from(raw, pos)
            pos += fmt.size
        elif kind == 6 or kind == 7:
            if pos + 2 > end:
                raise bad(f"{name!r} is cut short", start)
            (length,) = struct.unpack_from(">H", raw, pos)
            pos += 2
            if pos + length > end:
                raise bad(f"{name!r} is cut short", start)
            data = raw[pos : pos + length]
            pos += length
            if kind == 6:
                value = data
            else:
                try:
                    value = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise bad(f"{name!r} is not UTF-8", start) from None
        elif kind == 9:
            if pos + 16 > end:
                raise bad(f"{name!r} is cut short", start)
            value = raw[pos : pos + 16]
            pos += 16
        else:
            raise bad(f"{name!r} has unknown type {kind}", start)
        if name in headers:
            raise bad(f"duplicate header {name!r}", start)
        headers[name] = value
    return headers


def _decode_payload(headers: Mapping[str, HeaderValue], payload: bytes, offset: int) -> Any:
    """JSON for a JSON (or absent) content type, text for ``text/*``, else the bytes."""
    content_type = headers.get(":content-type")
    media = content_type.split(";", 1)[0].strip().lower() if isinstance(content_type, str) else None
    if media is None or media == "application/json" or media.endswith("+json"):
        if not payload:
            return {}
        try:
            return json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise ParseError(
                f"event stream payload at byte {offset} is not valid JSON: {exc}",
                code="AWS_INVALID_JSON", offset=offset,
            ) from None
    if media.startswith("text/"):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(
                f"event stream text payload at byte {offset} is not UTF-8",
                code="AWS_INVALID_UTF8", offset=offset,
            ) from None
    return payload


def message_frame(headers: Mapping[str, HeaderValue], data: Any) -> Frame:
    """One decoded message as a frame, by its ``:message-type`` header.

    * ``event`` (or none): ``Frame(data, event=<:event-type>)``.
    * ``exception`` (a modelled service error inside a 200 stream):
      ``Frame({"type": <:exception-type>, "payload": data}, event="exception")``,
      so one manifest rule maps every exception type to an error kind.
    * ``error`` (an unmodelled one): ``Frame({"code": <:error-code>,
      "message": <:error-message>}, event="error")``.
    * anything else: ``Frame(data, event=<the message type>)``.
    """
    kind = headers.get(":message-type", "event")
    if kind == "event":
        event = headers.get(":event-type")
        return Frame(data, event if isinstance(event, str) else None)
    if kind == "exception":
        return Frame({"type": headers.get(":exception-type"), "payload": data}, "exception")
    if kind == "error":
        return Frame({"code": headers.get(":error-code"), "message": headers.get(":error-message")}, "error")
    return Frame(data, str(kind))


class EventStreamParser:
    """An incremental AWS event-stream parser (see the module docstring).

    Frames completed before bad input are returned first; the ParseError is
    then raised by the next call (``feed`` or ``close``) and every call after
    it, so what a caller sees does not depend on the chunking.
    """

    __slots__ = ("_base", "_buf", "_checked", "_error", "_max")

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._max = _size_option("max_message_size", max_message_size)
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self._checked = False  # the prelude at _buf[0] was checked already
        self._error: ParseError | None = None

    def feed(self, data: bytes) -> list[Frame]:
        """Take the next bytes of the stream; return the messages they completed."""
        if self._error is not None:
            raise self._error
        if not data:
            return []
        self._buf += data
        frames: list[Frame] = []
        try:
            self._parse(frames)
        except ParseError as exc:
            self._error = exc
            if not frames:
                raise
        return frames

    def close(self) -> list[Frame]:
        """End of stream: a message cut short is an error."""
        if self._error is not None:
            raise self._error
        if self._buf:
            self._error = ParseError(
                f"event stream ended inside the message starting at byte {self._base} "
                f"({len(self._buf)} bytes of it arrived)",
                code="AWS_TRUNCATED", offset=self._base,
            )
            raise self._error
        return []

    def _parse(self, frames: list[Frame]) -> None:
        buf = self._buf
        size = len(buf)
        pos = 0
        try:
            while size - pos >= 12:
                total, header_length, prelude_crc = _PRELUDE.unpack_from(buf, pos)
                if not self._checked:
                    self._check_prelude(buf, pos, total, header_length, prelude_crc)
                    self._checked = True
                if size - pos < total:
                    break
                end = pos + total - 4
                view = memoryview(buf)
                try:
                    (crc,) = _U32.unpack_from(buf, end)
                    if _crc32(view[pos:end]) != crc:
                        raise ParseError(
                            f"event stream message at byte {self._base + pos} fails its message CRC",
                            code="AWS_MESSAGE_CRC", offset=self._base + pos,
                        )
                    start = pos + 12
                    headers = _decode_headers(bytes(view[start : start + header_length]), self._base + start)
                    body_at = start + header_length
                    data = _decode_payload(headers, bytes(view[body_at:end]), self._base + body_at)
                finally:
                    view.release()
                frames.append(message_frame(headers, data))
                pos += total
                self._checked = False
        finally:
            if pos:
                del buf[:pos]
                self._base += pos

    def _check_prelude(self, buf: bytearray, pos: int, total: int, header_length: int, crc: int) -> None:
        at = self._base + pos
        if _crc32(bytes(buf[pos : pos + 8])) != crc:
            raise ParseError(
                f"event stream message at byte {at} fails its prelude CRC",
                code="AWS_PRELUDE_CRC", offset=at,
            )
        if total < 16 or header_length > total - 16:
            raise ParseError(
                f"event stream message at byte {at} has impossible lengths "
                f"(total {total}, headers {header_length})",
                code="AWS_BAD_LENGTH", offset=at,
            )
        if total > self._max:
            raise ParseError(
                f"event stream message at byte {at} is {total} bytes, more than "
                f"max_message_size ({self._max})",
                code="AWS_MESSAGE_TOO_BIG", offset=at,
            )


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw = name.encode("utf-8")
    out = bytes([len(raw)]) + raw
    if isinstance(value, bool):
        return out + bytes([0 if value else 1])
    if isinstance(value, int):
        return out + b"\x05" + struct.pack(">q", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return out + b"\x07" + struct.pack(">H", len(data)) + data
    return out + b"\x06" + struct.pack(">H", len(value)) + value


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One message, framed and checksummed as AWS writes it (for tests and servers).

    Strings are type 7, ints type 5 (int64), bytes type 6, bools types 0 and 1.
    """
    head = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = 16 + len(head) + len(payload)
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", _crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", _crc32(body))
