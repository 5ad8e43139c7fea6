"""The ``sse`` parser against the WHATWG event-stream rules."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sse_strategies import SPLITS, Block, blocks, chunkings, encode, expected_frames, run, split_at

import modelwire
from modelwire import Frame, ParseError
from modelwire_sse import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LINE_SIZE, SSEParser

M = "message"


def F(data: str, event: str = M, id: str | None = None, retry: int | None = None) -> Frame:
    return Frame(data, event, id, retry)


CASES = [
    # -- dispatch and data ---------------------------------------------------
    pytest.param(b"", [], id="empty-stream"),
    pytest.param(b"data: hello\n\n", [F("hello")], id="one-event"),
    pytest.param(b"data: a\n\ndata: b\n\n", [F("a"), F("b")], id="two-events"),
    pytest.param(b"data: a\ndata: b\ndata: c\n\n", [F("a\nb\nc")], id="data-lines-joined-by-lf"),
    pytest.param(b"data: a\ndata:\n\n", [F("a\n")], id="only-last-newline-removed"),
    pytest.param(b"data\n\n", [F("")], id="data-without-colon-is-empty-data"),
    pytest.param(b"data:\n\n", [F("")], id="empty-data-dispatches-empty-string"),
    pytest.param(b"data\ndata\n\n", [F("\n")], id="two-empty-data-lines"),
    pytest.param(b"data:x\n\n", [F("x")], id="no-space-after-colon"),
    pytest.param(b"data:  x \n\n", [F(" x ")], id="exactly-one-leading-space-stripped"),
    pytest.param(b"data:\tx\n\n", [F("\tx")], id="tab-is-not-stripped"),
    pytest.param(b"data: a:b: c\n\n", [F("a:b: c")], id="colons-in-value"),
    pytest.param(b"data: [DONE]\n\n", [F("[DONE]")], id="done-marker"),
    pytest.param(b"\n\n\ndata: a\n\n\n\n", [F("a")], id="extra-blank-lines"),
    pytest.param(b"event: x\n\n", [], id="no-data-no-dispatch"),
    pytest.param(b"data: a\n", [], id="unterminated-event-discarded"),
    pytest.param(b"data: a\n\ndata: b", [F("a")], id="unterminated-line-discarded"),
    pytest.param(b"data: a\r", [], id="cr-at-eof-is-one-line-end"),
    # -- event type ----------------------------------------------------------
    pytest.param(b"event: add\ndata: 1\n\n", [F("1", "add")], id="event-type"),
    pytest.param(b"data: 1\nevent: add\n\n", [F("1", "add")], id="event-after-data"),
    pytest.param(
        b"event: add\ndata: 1\n\ndata: 2\n\n", [F("1", "add"), F("2")], id="event-type-resets"
    ),
    pytest.param(b"event: add\n\ndata: 2\n\n", [F("2")], id="event-type-resets-without-dispatch"),
    pytest.param(b"event:\ndata: 1\n\n", [F("1")], id="empty-event-is-message"),
    pytest.param(b"event\ndata: 1\n\n", [F("1")], id="event-without-colon-is-message"),
    pytest.param(b"event: a\nevent: b\ndata: 1\n\n", [F("1", "b")], id="last-event-field-wins"),
    pytest.param(b"event: \xc3\xa9v\xe2\x82\xac\ndata: 1\n\n", [F("1", "év€")], id="unicode-event"),
    # -- comments and unknown fields ------------------------------------------
    pytest.param(b": keep-alive\n\n", [], id="comment-only"),
    pytest.param(b":\ndata: a\n:x\n\n", [F("a")], id="comments-ignored"),
    pytest.param(b": data: x\n\n", [], id="comment-holding-a-field"),
    pytest.param(b"foo: bar\ndata: a\nbaz\n\n", [F("a")], id="unknown-fields-ignored"),
    pytest.param(b"Data: a\nDATA: b\n\n", [], id="field-names-case-sensitive"),
    pytest.param(b"data : a\n data: b\n\n", [], id="spaces-make-unknown-names"),
    pytest.param(b"dataa: a\ndat: b\n\n", [], id="near-miss-names"),
    # -- id ------------------------------------------------------------------
    pytest.param(b"data: a\n\n", [F("a", id=None)], id="id-none-until-set"),
    pytest.param(b"id: 1\ndata: a\n\n", [F("a", id="1")], id="id"),
    pytest.param(b"data: a\nid: 7\n\n", [F("a", id="7")], id="id-after-data"),
    pytest.param(
        b"id: 1\ndata: a\n\ndata: b\n\n", [F("a", id="1"), F("b", id="1")], id="id-persists"
    ),
    pytest.param(b"id: 5\n\ndata: a\n\n", [F("a", id="5")], id="id-of-block-without-data-kept"),
    pytest.param(
        b"id: 1\ndata: a\n\nid\ndata: b\n\n", [F("a", id="1"), F("b", id="")], id="empty-id-resets"
    ),
    pytest.param(
        b"id: 1\ndata: a\n\nid:\ndata: b\n\n", [F("a", id="1"), F("b", id="")], id="id-colon-resets"
    ),
    pytest.param(
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [F("a", id="1"), F("b", id="1")],
        id="id-with-null-ignored",
    ),
    pytest.param(b"id: \x00\ndata: b\n\n", [F("b")], id="null-id-ignored-before-any-id"),
    pytest.param(b"id:  x\ndata: a\n\n", [F("a", id=" x")], id="id-one-space-stripped"),
    pytest.param(b"id: \xf0\x9f\x98\x80\ndata: a\n\n", [F("a", id="😀")], id="unicode-id"),
    # -- retry ---------------------------------------------------------------
    pytest.param(b"retry: 1000\ndata: a\n\n", [F("a", retry=1000)], id="retry"),
    pytest.param(
        b"retry: 10\ndata: a\n\ndata: b\n\n",
        [F("a", retry=10), F("b", retry=10)],
        id="retry-persists",
    ),
    pytest.param(b"retry: 10\n\ndata: a\n\n", [F("a", retry=10)], id="retry-without-data-kept"),
    pytest.param(b"retry: 007\ndata: a\n\n", [F("a", retry=7)], id="retry-leading-zeros"),
    pytest.param(b"retry: 0\ndata: a\n\n", [F("a", retry=0)], id="retry-zero"),
    pytest.param(
        b"retry: 5\nretry: 1x\nretry: -1\nretry: 1.5\nretry: 1e3\nretry:\nretry\n"
        b"retry:  6\nretry: 6 \nretry: \xd9\xa3\nretry: \xef\xbc\x97\ndata: a\n\n",
        [F("a", retry=5)],
        id="retry-not-all-ascii-digits-ignored",
    ),
    pytest.param(
        b"retry: " + b"0" * 5000 + b"1\ndata: a\n\n", [F("a", retry=1)], id="retry-many-zeros"
    ),
    pytest.param(
        b"retry: 3\nretry: " + b"9" * 5000 + b"\ndata: a\n\n",
        [F("a", retry=3)],
        id="retry-beyond-int-limit-ignored",
    ),
    # -- line ends -----------------------------------------------------------
    pytest.param(b"data: a\r\n\r\n", [F("a")], id="crlf"),
    pytest.param(b"data: a\r\r", [F("a")], id="cr"),
    pytest.param(b"data: a\r\ndata: b\rdata: c\n\r\n", [F("a\nb\nc")], id="mixed-line-ends"),
    pytest.param(b"data: a\n\rdata: b\r\n\n", [F("a"), F("b")], id="lf-then-cr-is-two-ends"),
    pytest.param(b"data: a\r\n\ndata: b\r\r\n", [F("a"), F("b")], id="crlf-then-lf"),
    pytest.param(b"data: a\r\r\r\rdata: b\r\r", [F("a"), F("b")], id="runs-of-cr"),
    # -- encoding ------------------------------------------------------------
    pytest.param("data: héllo wörld 😀 ✓\n\n".encode(), [F("héllo wörld 😀 ✓")], id="utf8"),
    pytest.param(b"\xef\xbb\xbfdata: a\n\n", [F("a")], id="bom-stripped"),
    pytest.param(b"\xef\xbb\xbf\n\ndata: a\n\n", [F("a")], id="bom-then-blank-line"),
    pytest.param(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n", [], id="second-bom-kept"),
    pytest.param(b"\xef\xbb\xbf", [], id="bom-only"),
    pytest.param(
        b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [F("a")], id="bom-after-start-is-part-of-name"
    ),
    pytest.param(b"data: \xef\xbb\xbfa\n\n", [F("\ufeffa")], id="bom-in-value-kept"),
    pytest.param(b"\xef\xbb\n\ndata: a\n\n", [F("a")], id="partial-bom-is-invalid-utf8"),
    pytest.param(b"\xef\xbbdata: a\n\n", [], id="partial-bom-spoils-field-name"),
    pytest.param(b"data: a\xffb\n\n", [F("a\ufffdb")], id="invalid-byte-replaced"),
    pytest.param(b"data: \xe2\x82\n\n", [F("\ufffd")], id="truncated-sequence-one-replacement"),
    pytest.param(
        b"data: \xe2\x82\ndata: \xac\n\n",
        [F("\ufffd\n\ufffd")],
        id="sequence-not-joined-over-lines",
    ),
    pytest.param(b"data: \xed\xa0\x80\n\n", [F("\ufffd" * 3)], id="surrogate-bytes-replaced"),
    pytest.param(b"data: \xf0\x80\x80\n\n", [F("\ufffd" * 3)], id="overlong-replaced"),
    pytest.param(b"data:\xe2 x\n\n", [F("\ufffd x")], id="replacement-is-not-a-space"),
    pytest.param(b"da\xfata: x\n\n", [], id="invalid-byte-in-name"),
    # -- a realistic stream ----------------------------------------------------
    pytest.param(
        b'event: message_start\r\ndata: {"type": "message_start"}\r\n\r\n'
        b": ping\r\n\r\n"
        b'event: content_block_delta\r\ndata: {"text": "Hi"}\r\n\r\n',
        [
            F('{"type": "message_start"}', "message_start"),
            F('{"text": "Hi"}', "content_block_delta"),
        ],
        id="anthropic-style",
    ),
]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("wire", "expected"), CASES)
def test_cases(wire: bytes, expected: list[Frame], split: str) -> None:
    for chunks in chunkings(wire, split):
        assert run(SSEParser(), chunks) == (expected, None), chunks


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"], ["a\nb"], id="crlf-split"),
        pytest.param(
            [b"data: a\r", b"", b"\n", b"data: b\r", b"", b"\n\r", b"", b"\n"],
            ["a\nb"],
            id="empty-chunks-between",
        ),
        pytest.param(
            [b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"], ["a", "b"], id="crlf-split-then-blank"
        ),
        pytest.param([b"data: a\r", b"\r", b"\n"], ["a"], id="cr-cr-lf"),
    ],
)
def test_crlf_split_across_chunks_is_one_line_end(chunks: list[bytes], expected: list[str]) -> None:
    assert run(SSEParser(), chunks) == ([F(d) for d in expected], None)


def test_cr_at_chunk_end_dispatches_without_waiting() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == [F("a")]
    assert parser.feed(b"\ndata: b\n\n") == [F("b")]  # the LF closes the CR, no extra line


def test_event_is_returned_by_the_feed_that_completes_it() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\ndata: b\n") == [F("a")]
    assert parser.feed(b"\n") == [F("b")]
    assert parser.close() == []


def test_bom_split_over_chunks() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"\xbb") == []
    assert parser.feed(b"\xbfdata: a\n\n") == [F("a")]


def test_state_properties() -> None:
    parser = SSEParser()
    assert (parser.last_event_id, parser.retry) == (None, None)
    parser.feed(b"id: 42\nretry: 3000\n\n")
    assert (parser.last_event_id, parser.retry) == ("42", 3000)


# -- size limits -----------------------------------------------------------------

ERROR_CASES = [
    pytest.param(
        {"max_line_size": 10}, b"data: 0123456789\n\n", [], (1, 0), id="first-line-too-long"
    ),
    pytest.param(
        {"max_line_size": 10},
        b"data: a\n\ndata: 0123456789abc\n\ndata: c\n\n",
        [F("a")],
        (3, 9),
        id="line-too-long-after-an-event",
    ),
    pytest.param(
        {"max_line_size": 10},
        b"data: a\r\n\r\ndata: 0123456789abc\r\n",
        [F("a")],
        (3, 11),
        id="line-too-long-crlf-offsets",
    ),
    pytest.param(
        {"max_line_size": 10},
        b"data: a\r\rdata: 0123456789abc",
        [F("a")],
        (3, 9),
        id="unterminated-line-too-long",
    ),
    pytest.param(
        {"max_line_size": 10},
        b"\xef\xbb\xbf:c\ndata: 0123456789abc\n",
        [],
        (2, 6),
        id="offsets-count-the-bom",
    ),
    pytest.param(
        {"max_line_size": 10},
        b": 0123456789\n\n",
        [],
        (1, 0),
        id="long-comment-too",
    ),
    pytest.param(
        {"max_line_size": 10},
        b"data: 0123\ndata:01234\n\ndata: 0123456789\n\n",
        [F("0123\n01234")],
        (4, 23),
        id="line-at-the-limit-passes",
    ),
    pytest.param(
        {"max_event_size": 5},
        b"data: abc\r\ndata: de\r\n\r\n",
        [],
        (2, 11),
        id="event-too-big",
    ),
    pytest.param(
        {"max_event_size": 5},
        b"data: abc\ndata: d\n\ndata: abcde\n\ndata: abc\ndata:\ndata\ndata\n\n",
        [F("abc\nd"), F("abcde")],
        (9, 53),
        id="event-at-the-limit-passes",
    ),
    pytest.param(
        {"max_event_size": 5, "max_line_size": 9},
        b"data: abc\ndata: de\ndata: 0123456789\n\n",
        [],
        (2, 10),
        id="first-error-in-stream-order-wins",
    ),
]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("options", "wire", "expected", "where"), ERROR_CASES)
def test_size_limits(
    options: dict[str, Any],
    wire: bytes,
    expected: list[Frame],
    where: tuple[int, int],
    split: str,
) -> None:
    for chunks in chunkings(wire, split):
        frames, error = run(SSEParser(**options), chunks)
        assert frames == expected
        assert error is not None
        assert (error.line, error.offset) == where
        assert error.kind == "parse"
        assert error.code in {"SSE_LINE_TOO_LONG", "SSE_EVENT_TOO_BIG"}


def test_frames_before_an_error_come_first_then_every_call_raises() -> None:
    parser = SSEParser(max_line_size=10)
    assert parser.feed(b"data: a\n\ndata: 0123456789abc\n") == [F("a")]
    with pytest.raises(ParseError) as first:
        parser.feed(b"data: b\n\n")
    with pytest.raises(ParseError) as second:
        parser.close()
    assert first.value is second.value
    assert "max_line_size" in str(first.value) and "line=3" in str(first.value)


def test_long_line_in_small_chunks_is_stopped_early() -> None:
    parser = SSEParser(max_line_size=1000)
    parser.feed(b"data: a\n\n")
    with pytest.raises(ParseError) as info:
        for _ in range(200):
            parser.feed(b"x" * 10)
    assert (info.value.line, info.value.offset) == (3, 9)


def test_defaults() -> None:
    assert DEFAULT_MAX_LINE_SIZE == DEFAULT_MAX_EVENT_SIZE == 16 * 1024 * 1024
    big = b"data: " + b"x" * (2 * 1024 * 1024) + b"\n\n"
    assert SSEParser().feed(big) == [F("x" * (2 * 1024 * 1024))]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param({"max_line_size": 0}, ValueError, id="zero"),
        pytest.param({"max_event_size": -1}, ValueError, id="negative"),
        pytest.param({"max_line_size": "10"}, TypeError, id="str"),
        pytest.param({"max_line_size": True}, TypeError, id="bool"),
        pytest.param({"max_size": 10}, TypeError, id="unknown-option"),
    ],
)
def test_bad_options(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        SSEParser(**options)


# -- properties --------------------------------------------------------------------


@given(
    st.lists(blocks(), max_size=8),
    st.booleans(),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 10_000), max_size=10),
)
def test_random_streams(
    stream: list[Block], bom: bool, rng: random.Random, cuts: list[int]
) -> None:
    wire = encode(stream, rng, bom)
    expected = expected_frames(stream)
    assert run(SSEParser(), [wire]) == (expected, None)
    assert run(SSEParser(), split_at(wire, cuts)) == (expected, None)


#: Bytes biased towards what matters to SSE.
sse_soup = st.lists(
    st.sampled_from(
        [
            *(b"data", b"event", b"id", b"retry", b":", b" ", b"\r", b"\n", b"\r\n", b"1", b"x"),
            *(b"\0", b"\xef\xbb\xbf", b"\xef", b"\xff", b"\xe2\x82", b"\xac", "é😀".encode()),
        ]
    ),
    max_size=80,
).map(b"".join)


@given(sse_soup, st.lists(st.integers(0, 300), max_size=8))
def test_any_bytes_any_chunking(wire: bytes, cuts: list[int]) -> None:
    whole = run(SSEParser(), [wire])
    assert whole[1] is None  # SSE has no invalid input, only limits
    assert run(SSEParser(), split_at(wire, cuts)) == whole
    assert run(SSEParser(), [wire[i : i + 1] for i in range(len(wire))]) == whole


@given(sse_soup, st.lists(st.integers(0, 200), max_size=8))
def test_size_errors_do_not_depend_on_chunking(wire: bytes, cuts: list[int]) -> None:
    whole = run(SSEParser(max_line_size=12, max_event_size=20), [wire])
    chunked = run(SSEParser(max_line_size=12, max_event_size=20), split_at(wire, cuts))
    assert chunked[0] == whole[0]
    assert (chunked[1] is None) == (whole[1] is None)
    if whole[1] is not None and chunked[1] is not None:
        assert (chunked[1].line, chunked[1].offset, chunked[1].code) == (
            whole[1].line,
            whole[1].offset,
            whole[1].code,
        )


# -- the plugin ----------------------------------------------------------------------


def test_entry_point() -> None:
    # Only this distribution's entry points (plus the core's built-ins): other
    # plugins installed in a test venv may clash on purpose.
    plugins = modelwire.Plugins(only=["modelwire-sse"])
    assert plugins.load_errors == []
    registration = plugins.get("parser", "sse")
    assert registration.distribution == "modelwire-sse"
    assert registration.version == "0.1.0"
    assert registration.media_types == ("text/event-stream",)
    parser = plugins.get_parser("sse", max_line_size=100)
    assert isinstance(parser, SSEParser)
    assert isinstance(parser, modelwire.Parser)
    assert plugins.parser_for_media_type("text/event-stream; charset=utf-8") is registration
    assert plugins.parser_for_media_type("Text/Event-Stream") is registration
