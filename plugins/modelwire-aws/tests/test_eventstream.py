"""The ``aws-eventstream`` parser: framing, CRCs, bounds, chunk invariance, botocore as oracle."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st
from modelwire_aws import DEFAULT_MAX_MESSAGE_SIZE, EventStreamParser, encode_message

import modelwire
from modelwire import Frame, ParseError

JSON = "application/json"


def event(name: str, payload: Any) -> bytes:
    headers = {":event-type": name, ":content-type": JSON, ":message-type": "event"}
    return encode_message(headers, json.dumps(payload).encode())


def exception(name: str, message: str) -> bytes:
    headers = {":exception-type": name, ":content-type": JSON, ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())


def parse(data: bytes, cuts: list[int] | None = None, **options: Any) -> list[Frame]:
    """Feed ``data`` split at ``cuts`` (None: whole), then close."""
    parser = EventStreamParser(**options)
    out: list[Frame] = []
    start = 0
    for end in [*(cuts or []), len(data)]:
        out += parser.feed(data[start:end])
        start = end
    return out + parser.close()


def byte_by_byte(data: bytes) -> list[int]:
    return list(range(1, len(data)))


START = event("messageStart", {"role": "assistant", "p": "abc"})
DELTA = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé 😀"}})

CASES = [
    pytest.param(b"", [], id="empty-stream"),
    pytest.param(START, [Frame({"role": "assistant", "p": "abc"}, "messageStart")], id="one-event"),
    pytest.param(
        START + DELTA,
        [Frame({"role": "assistant", "p": "abc"}, "messageStart"),
         Frame({"contentBlockIndex": 0, "delta": {"text": "Hé 😀"}}, "contentBlockDelta")],
        id="two-events",
    ),
    pytest.param(
        exception("throttlingException", "slow down"),
        [Frame({"type": "throttlingException", "payload": {"message": "slow down"}}, "exception")],
        id="exception",
    ),
    pytest.param(
        encode_message({":message-type": "error", ":error-code": "Boom", ":error-message": "it broke"}, b""),
        [Frame({"code": "Boom", "message": "it broke"}, "error")],
        id="error-message",
    ),
    pytest.param(
        encode_message({":event-type": "chunk", ":content-type": "text/plain"}, "é".encode()),
        [Frame("é", "chunk")],
        id="text-payload",
    ),
    pytest.param(
        encode_message({":event-type": "blob", ":content-type": "application/octet-stream"}, b"\x00\xff"),
        [Frame(b"\x00\xff", "blob")],
        id="binary-payload",
    ),
    pytest.param(encode_message({":event-type": "ping"}, b""), [Frame({}, "ping")], id="empty-payload-no-type"),
    pytest.param(
        encode_message({":event-type": "x", "flag": True, "off": False, "n": -5, "b": b"\x01"}, b"{}"),
        [Frame({}, "x")],
        id="other-header-types",
    ),
]


@pytest.mark.parametrize(("data", "frames"), CASES)
@pytest.mark.parametrize("split", ["whole", "byte-by-byte"])
def test_table(data: bytes, frames: list[Frame], split: str) -> None:
    assert parse(data, byte_by_byte(data) if split == "byte-by-byte" else None) == frames


def test_registered_under_its_name_and_media_type() -> None:
    assert isinstance(modelwire.get_parser("aws-eventstream"), EventStreamParser)


def _corrupt(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


BAD = [
    pytest.param(_corrupt(START, 9), "AWS_PRELUDE_CRC", 0, id="prelude-crc"),
    pytest.param(_corrupt(START, 2), "AWS_PRELUDE_CRC", 0, id="length-without-fixing-crc"),
    pytest.param(START + _corrupt(DELTA, len(DELTA) - 6), "AWS_MESSAGE_CRC", len(START), id="payload-bit-flip"),
    pytest.param(START + _corrupt(DELTA, len(DELTA) - 1), "AWS_MESSAGE_CRC", len(START), id="message-crc"),
    pytest.param(START[:-3], "AWS_TRUNCATED", 0, id="truncated"),
    pytest.param(START + DELTA[:12], "AWS_TRUNCATED", len(START), id="truncated-second"),
    pytest.param(
        encode_message({":event-type": "x", ":content-type": JSON}, b"{nope"), "AWS_INVALID_JSON", None,
        id="invalid-json",
    ),
]


def _prelude(total: int, headers: int) -> bytes:
    head = struct.pack(">II", total, headers)
    return head + struct.pack(">I", zlib.crc32(head))


BAD += [
    pytest.param(_prelude(2**32 - 1, 0), "AWS_MESSAGE_TOO_BIG", 0, id="hostile-total-length"),
    pytest.param(_prelude(15, 0), "AWS_BAD_LENGTH", 0, id="total-below-minimum"),
    pytest.param(_prelude(20, 10), "AWS_BAD_LENGTH", 0, id="headers-longer-than-message"),
    pytest.param(
        START + _prelude(DEFAULT_MAX_MESSAGE_SIZE + 1, 0), "AWS_MESSAGE_TOO_BIG", len(START), id="over-default-cap"
    ),
]


@pytest.mark.parametrize(("data", "code", "offset"), BAD)
@pytest.mark.parametrize("split", ["whole", "byte-by-byte"])
def test_bad_input_is_a_typed_error_with_offset(data: bytes, code: str, offset: int | None, split: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(data, byte_by_byte(data) if split == "byte-by-byte" else None)
    assert info.value.code == code
    if offset is not None:
        assert info.value.offset == offset


def test_hostile_length_fails_before_buffering() -> None:
    # A 4 GiB promise fails on its 12-byte prelude: nothing waits for the rest.
    parser = EventStreamParser(max_message_size=1024)
    with pytest.raises(ParseError) as info:
        parser.feed(_prelude(2000, 0))
    assert info.value.code == "AWS_MESSAGE_TOO_BIG"
    with pytest.raises(ParseError):  # and every call after it
        parser.feed(START)


def test_frames_before_an_error_come_first() -> None:
    parser = EventStreamParser()
    assert parser.feed(START + _corrupt(DELTA, len(DELTA) - 1)) == parse(START)
    with pytest.raises(ParseError) as info:
        parser.close()
    assert info.value.code == "AWS_MESSAGE_CRC"


@pytest.mark.parametrize("value", [0, 15, True, "16"])
def test_bad_options(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        EventStreamParser(max_message_size=value)


# -- property tests ------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_characters=":"), min_size=1, max_size=12).filter(
    lambda s: len(s.encode()) < 256
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
extra_headers = st.dictionaries(
    names.map(lambda s: "x-" + s),
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=20) | st.text(max_size=20),
    max_size=3,
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    headers: dict[str, Any] = {":event-type": draw(names), ":content-type": JSON, ":message-type": "event"}
    headers.update(draw(extra_headers))
    return encode_message(headers, json.dumps(draw(json_values), ensure_ascii=draw(st.booleans())).encode())


streams = st.lists(messages(), max_size=6).map(b"".join)


@st.composite
def cuts_for(draw: st.DrawFn, data: bytes) -> list[int]:
    return sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))


@given(st.data())
def test_chunk_invariance(data: st.DataObject) -> None:
    stream = data.draw(streams)
    assert parse(stream, data.draw(cuts_for(stream))) == parse(stream)


@given(streams)
def test_botocore_decodes_the_same_messages(stream: bytes) -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(stream)
    expected = [Frame(json.loads(m.payload), m.headers[":event-type"]) for m in buffer]
    assert parse(stream) == expected


@given(st.data())
def test_any_flipped_bit_is_a_typed_error(data: st.DataObject) -> None:
    stream = data.draw(streams.filter(bool))
    index = data.draw(st.integers(0, len(stream) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = stream[:index] + bytes([stream[index] ^ (1 << bit)]) + stream[index + 1 :]
    cuts = data.draw(cuts_for(bad))
    with pytest.raises(ParseError) as info:
        parse(bad, cuts)
    # CRC-32 catches every single-bit error; a length change may first look
    # like a truncation or an impossible length, never like valid frames.
    assert info.value.code in {"AWS_PRELUDE_CRC", "AWS_MESSAGE_CRC", "AWS_TRUNCATED", "AWS_BAD_LENGTH"}
    with pytest.raises(ParseError) as again:
        parse(bad)
    assert (again.value.code, again.value.offset) == (info.value.code, info.value.offset)
