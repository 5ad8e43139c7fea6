"""The ``jsonchunk`` parser: NDJSON, JSON Lines and (pretty-printed) JSON bodies."""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonchunk_strategies import (
    SPLITS,
    chunkings,
    documents,
    dump,
    json_soup,
    json_values,
    ndjson,
    run,
    split_at,
    where,
)

import modelwire
from modelwire import Frame, ParseError
from modelwire_jsonchunk import (
    DEFAULT_MAX_DOCUMENT_SIZE,
    DEFAULT_MAX_LINE_SIZE,
    JSONChunkParser,
)

PRETTY = json.dumps({"id": "x", "choices": [{"delta": {"content": "hé"}}], "n": [1, 2]}, indent=2)

CASES = [
    pytest.param(b"", [], id="empty"),
    pytest.param(b'{"a":1}\n', [{"a": 1}], id="one-line"),
    pytest.param(b'{"a":1}\n{"b":2}\n[3]\n', [{"a": 1}, {"b": 2}, [3]], id="ndjson"),
    pytest.param(b'{"a":1}\r\n{"b":2}\r\n', [{"a": 1}, {"b": 2}], id="crlf"),
    pytest.param(b'{"a":1}\n{"b":2}', [{"a": 1}, {"b": 2}], id="last-line-without-newline"),
    pytest.param(b"1\n\n\n2\n", [1, 2], id="empty-lines-skipped"),
    pytest.param(b"1\n \t \r\n\r\n  \n2", [1, 2], id="blank-lines-skipped"),
    pytest.param(b"  1  \n\t[2]\t\r\n", [1, [2]], id="whitespace-around-values"),
    pytest.param(
        b'1\n2.5\n-3e2\ntrue\nfalse\nnull\n"s"\n',
        [1, 2.5, -300.0, True, False, None, "s"],
        id="scalars",
    ),
    pytest.param('{"t":"héllo 😀 ✓"}\n'.encode(), [{"t": "héllo 😀 ✓"}], id="utf8"),
    pytest.param(b'{"t":"\\u00e9\\ud83d\\ude00"}\n', [{"t": "é😀"}], id="escapes"),
    pytest.param(
        '"a\u2028b\u0085c"\n'.encode(),
        ["a\u2028b\u0085c"],
        id="unicode-line-breaks-are-not-line-ends",
    ),
    pytest.param(b'\xef\xbb\xbf{"a":1}\n', [{"a": 1}], id="bom-ignored"),
    pytest.param(b'{"a":1} {"b":2}\n', [{"a": 1}, {"b": 2}], id="two-values-one-line"),
    pytest.param(b'{"a":1}{"b":2}[3]"s"\n', [{"a": 1}, {"b": 2}, [3], "s"], id="concatenated"),
    pytest.param(b"1 2 3", [1, 2, 3], id="numbers-on-one-line"),
    pytest.param(PRETTY.encode(), [json.loads(PRETTY)], id="pretty-document"),
    pytest.param(PRETTY.replace("\n", "\r\n").encode(), [json.loads(PRETTY)], id="pretty-crlf"),
    pytest.param((PRETTY + "\n").encode() * 3, [json.loads(PRETTY)] * 3, id="pretty-documents"),
    pytest.param(
        b'{"a":1}\n' + PRETTY.encode() + b'\n{"b":2}\n',
        [{"a": 1}, json.loads(PRETTY), {"b": 2}],
        id="pretty-between-ndjson",
    ),
    pytest.param(b"[\n1,\n2\n] [\n3\n]\n4\n", [[1, 2], [3], 4], id="documents-sharing-lines"),
    pytest.param(b'{\n"a"\n:\n1\n}', [{"a": 1}], id="every-token-on-its-own-line"),
    pytest.param(b"[\n\n  \r\n]\n", [[]], id="blank-lines-inside-document"),
    pytest.param(b'[{"a": 1},\r\n{"a": 2}\r\n]', [[{"a": 1}, {"a": 2}]], id="streamed-json-array"),
]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("wire", "expected"), CASES)
def test_cases(wire: bytes, expected: list[Any], split: str) -> None:
    for chunks in chunkings(wire, split):
        assert run(JSONChunkParser(), chunks) == (expected, None), chunks


def test_frames_carry_only_data() -> None:
    assert JSONChunkParser().feed(b'{"a":1}\n') == [Frame({"a": 1})]


def test_a_line_is_returned_by_the_feed_that_ends_it() -> None:
    parser = JSONChunkParser()
    assert parser.feed(b'{"a":') == []
    assert parser.feed(b'1}\n{"b"') == [Frame({"a": 1})]
    assert parser.feed(b":2}") == []
    assert parser.close() == [Frame({"b": 2})]


def test_pretty_document_completes_by_close() -> None:
    parser = JSONChunkParser()
    frames = parser.feed(PRETTY.encode())
    assert frames + parser.close() == [Frame(json.loads(PRETTY))]


# -- errors --------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(b"x\n", [], ("JSON_INVALID", 1, 0), id="not-json"),
    pytest.param(b'{"a":1}\n{bad}\n{"b":2}\n', [{"a": 1}], ("JSON_INVALID", 2, 8), id="bad-line"),
    pytest.param(
        b'{"a":1}\r\n\r\nnope\r\n{"b":2}\r\n',
        [{"a": 1}],
        ("JSON_INVALID", 3, 11),
        id="crlf-offsets",
    ),
    pytest.param(b"1\n  x\n", [1], ("JSON_INVALID", 2, 2), id="offset-is-line-start"),
    pytest.param(b'{"a":1} x\n', [{"a": 1}], ("JSON_INVALID", 1, 0), id="junk-after-value"),
    pytest.param(b'1\n"abc\n"\n', [1], ("JSON_INVALID", 2, 2), id="string-over-lines"),
    pytest.param(b"1\ntru", [1], ("JSON_INVALID", 2, 2), id="bad-last-line"),
    pytest.param(b"[1,,2]\n", [], ("JSON_INVALID", 1, 0), id="double-comma"),
    pytest.param(b"data: {}\n\n", [], ("JSON_INVALID", 1, 0), id="sse-is-not-json"),
    pytest.param(
        b'{"a":1}\n{\n "a": 1,\n "b" 2\n}\n{"c":3}\n',
        [{"a": 1}],
        ("JSON_INVALID", 2, 8),
        id="bad-pretty-document-points-at-its-start",
    ),
    pytest.param(
        b"[\n1\n] [\n2,\n3 4\n]\n",
        [[1]],
        ("JSON_INVALID", 3, 4),
        id="second-document-on-shared-line",
    ),
    pytest.param(
        b'{"a":1}\n{"b":\n2\n', [{"a": 1}], ("JSON_INCOMPLETE", 2, 8), id="incomplete-at-close"
    ),
    pytest.param(b"[\n1,\n2", [], ("JSON_INCOMPLETE", 1, 0), id="incomplete-unterminated"),
    pytest.param(b"1\n{", [1], ("JSON_INCOMPLETE", 2, 2), id="open-brace-at-close"),
    pytest.param(
        b'{"a":1}\n{"a":"\xff"}\n', [{"a": 1}], ("JSON_INVALID_UTF8", 2, 14), id="invalid-utf8"
    ),
    pytest.param(b'1\n"\xc3', [1], ("JSON_INVALID_UTF8", 2, 3), id="truncated-utf8-at-close"),
    pytest.param(b'"\xed\xa0\x80"\n', [], ("JSON_INVALID_UTF8", 1, 1), id="utf8-surrogate"),
    pytest.param(b'"\xc0\xaf"\n', [], ("JSON_INVALID_UTF8", 1, 1), id="utf8-overlong"),
    pytest.param(b"\xef\xbb", [], ("JSON_INVALID_UTF8", 1, 0), id="partial-bom"),
    pytest.param(b"\xef\xbb\xbf\xef\xbb\xbf1\n", [], ("JSON_INVALID", 1, 3), id="second-bom"),
    pytest.param(b'1\n2\n[\n"\xff"]\n', [1, 2], ("JSON_INVALID_UTF8", 4, 7), id="utf8-inside-doc"),
    pytest.param(
        b"[" * 100_000 + b"]" * 100_000 + b"\n", [], ("JSON_INVALID", 1, 0), id="too-deep"
    ),
]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("wire", "expected", "error"), ERROR_CASES)
def test_errors(wire: bytes, expected: list[Any], error: tuple[str, int, int], split: str) -> None:
    for chunks in chunkings(wire, split) if len(wire) < 1000 else [[wire], split_at(wire, [7])]:
        frames, exc = run(JSONChunkParser(), chunks)
        assert (frames, where(exc)) == (expected, error), chunks
        assert exc is not None and exc.kind == "parse"


def test_error_names_the_line_inside_a_document() -> None:
    _, exc = run(JSONChunkParser(), [b'{"a":1}\n{\n "a": 1,\n "b" 2\n}\n'])
    assert exc is not None
    assert exc.message.startswith("invalid JSON on line 4 (document from line 2): Expecting ':'")
    assert "line=2 offset=8" in str(exc)


@pytest.mark.skipif(sys.get_int_max_str_digits() == 0, reason="no int digit limit")
def test_integer_beyond_the_digit_limit() -> None:
    assert where(run(JSONChunkParser(), [b"1\n" + b"7" * 5000 + b"\n"])[1]) == (
        "JSON_INVALID",
        2,
        2,
    )


def test_frames_before_an_error_come_first_then_every_call_raises() -> None:
    parser = JSONChunkParser()
    assert parser.feed(b'{"a":1}\nnope\n{"b":2}\n') == [Frame({"a": 1})]
    with pytest.raises(ParseError) as first:
        parser.feed(b"3\n")
    with pytest.raises(ParseError) as second:
        parser.close()
    assert first.value is second.value


def test_close_error_carries_the_frames_close_completed() -> None:
    parser = JSONChunkParser()
    assert parser.feed(b'{\n"a": 1\n} x') == []
    with pytest.raises(ParseError) as info:
        parser.close()
    assert info.value.frames == [Frame({"a": 1})]  # type: ignore[attr-defined]
    assert (info.value.line, info.value.offset) == (3, 9)


# -- size limits -----------------------------------------------------------------

LIMIT_CASES = [
    pytest.param(
        {"max_line_size": 10}, b"[1,2,3,4,5,6]\n", [], ("JSON_LINE_TOO_LONG", 1, 0), id="line"
    ),
    pytest.param(
        {"max_line_size": 10},
        b"[1,2,3,44]\n[1,2,3,4,5,6]\n",
        [[1, 2, 3, 44]],
        ("JSON_LINE_TOO_LONG", 2, 11),
        id="line-at-limit-passes",
    ),
    pytest.param(
        {"max_line_size": 10},
        b"1\n[1,2,3,4,5,6,7,8",
        [1],
        ("JSON_LINE_TOO_LONG", 2, 2),
        id="unterminated-line",
    ),
    pytest.param(
        {"max_line_size": 10},
        b"1\n\xff234567890123\n",
        [1],
        ("JSON_LINE_TOO_LONG", 2, 2),
        id="long-line-before-its-utf8-error",
    ),
    pytest.param(
        {"max_line_size": 10},
        b"1\n\xff\n[1,2,3,4,5,6,7,8]\n",
        [1],
        ("JSON_INVALID_UTF8", 2, 2),
        id="utf8-error-before-a-long-line",
    ),
    pytest.param(
        {"max_document_size": 10},
        b"1\n[\n1,\n2,\n3,\n4\n]\n",
        [1],
        ("JSON_DOCUMENT_TOO_BIG", 2, 2),
        id="document",
    ),
    pytest.param(
        {"max_document_size": 10},
        b"[\n1,\n2,\n3]\n[\n1,\n2,\n3,\n4]\n",
        [[1, 2, 3]],
        ("JSON_DOCUMENT_TOO_BIG", 5, 11),
        id="document-at-limit-passes",
    ),
    pytest.param(
        {"max_document_size": 10},
        b"[\n1,\n2,\n3]",
        [[1, 2, 3]],
        None,
        id="document-at-limit-at-close",
    ),
]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("options", "wire", "expected", "error"), LIMIT_CASES)
def test_size_limits(
    options: dict[str, Any],
    wire: bytes,
    expected: list[Any],
    error: tuple[str, int, int] | None,
    split: str,
) -> None:
    for chunks in chunkings(wire, split):
        frames, exc = run(JSONChunkParser(**options), chunks)
        assert (frames, where(exc)) == (expected, error), chunks


def test_long_line_in_small_chunks_is_stopped_early() -> None:
    parser = JSONChunkParser(max_line_size=1000)
    parser.feed(b"1\n")
    with pytest.raises(ParseError) as info:
        for _ in range(200):
            parser.feed(b" " * 10)
    assert (info.value.line, info.value.offset) == (2, 2)


def test_big_pretty_document_costs_linear_time() -> None:
    # 200,000 lines: re-parsing the document at every line end would take minutes.
    value = {"rows": [{"i": i, "s": "x" * (i % 7)} for i in range(40_000)]}
    wire = json.dumps(value, indent=1).encode()
    parser = JSONChunkParser()
    frames = [f for i in range(0, len(wire), 4096) for f in parser.feed(wire[i : i + 4096])]
    assert frames + parser.close() == [Frame(value)]


def test_defaults() -> None:
    assert DEFAULT_MAX_LINE_SIZE == DEFAULT_MAX_DOCUMENT_SIZE == 16 * 1024 * 1024
    big = [0] * 1_000_000  # a 2 MB single-line body
    assert run(JSONChunkParser(), [json.dumps(big).encode()]) == ([big], None)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param({"max_line_size": 0}, ValueError, id="zero"),
        pytest.param({"max_document_size": -5}, ValueError, id="negative"),
        pytest.param({"max_line_size": 1.5}, TypeError, id="float"),
        pytest.param({"max_event_size": 10}, TypeError, id="unknown-option"),
    ],
)
def test_bad_options(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        JSONChunkParser(**options)


# -- properties --------------------------------------------------------------------


@given(
    st.lists(json_values, max_size=10),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 5000), max_size=10),
)
def test_random_ndjson(values: list[Any], rng: random.Random, cuts: list[int]) -> None:
    wire = ndjson(values, rng)
    assert run(JSONChunkParser(), [wire]) == (values, None)
    assert run(JSONChunkParser(), split_at(wire, cuts)) == (values, None)


@given(
    st.lists(json_values, max_size=6),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 5000), max_size=10),
)
def test_random_documents(values: list[Any], rng: random.Random, cuts: list[int]) -> None:
    wire = documents(values, rng)
    assert run(JSONChunkParser(), [wire]) == (values, None)
    assert run(JSONChunkParser(), split_at(wire, cuts)) == (values, None)


BAD_LINES = ["x", "}", "]", ":", ",", "nul", "tru", "-", '"abc', "{bad}", "[1,,2]", '{"a" 1}']


@given(
    st.lists(json_values, max_size=8),
    st.integers(0, 8),
    st.sampled_from(BAD_LINES),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 5000), max_size=10),
)
def test_error_line_and_offset(
    values: list[Any], at: int, bad: str, rng: random.Random, cuts: list[int]
) -> None:
    at = min(at, len(values))
    lines = [dump(v, rng) + rng.choice(["\n", "\r\n"]) for v in values]
    lines.insert(at, bad + rng.choice(["\n", "\r\n", ""]) if at == len(values) else bad + "\n")
    wire = "".join(lines).encode()
    offset = len("".join(lines[:at]).encode())
    for chunks in ([wire], split_at(wire, cuts)):
        frames, exc = run(JSONChunkParser(), chunks)
        assert frames == values[:at]
        assert where(exc) == ("JSON_INVALID", at + 1, offset)


@given(json_soup, st.lists(st.integers(0, 300), max_size=8))
def test_any_bytes_any_chunking(wire: bytes, cuts: list[int]) -> None:
    frames, exc = run(JSONChunkParser(), [wire])
    for chunks in (split_at(wire, cuts), [wire[i : i + 1] for i in range(len(wire))]):
        chunked, chunked_exc = run(JSONChunkParser(), chunks)
        assert chunked == frames
        assert where(chunked_exc) == where(exc)


@given(json_soup, st.lists(st.integers(0, 300), max_size=8))
def test_limits_do_not_depend_on_chunking(wire: bytes, cuts: list[int]) -> None:
    options = {"max_line_size": 12, "max_document_size": 30}
    frames, exc = run(JSONChunkParser(**options), [wire])
    chunked, chunked_exc = run(JSONChunkParser(**options), split_at(wire, cuts))
    assert chunked == frames
    assert where(chunked_exc) == where(exc)


# -- the plugin ----------------------------------------------------------------------


def test_entry_point() -> None:
    # Only this distribution's entry points (plus the core's built-ins): other
    # plugins installed in a test venv may clash on purpose.
    plugins = modelwire.Plugins(only=["modelwire-jsonchunk"])
    assert plugins.load_errors == []
    registration = plugins.get("parser", "jsonchunk")
    assert registration.distribution == "modelwire-jsonchunk"
    assert registration.version == "0.1.0"
    assert registration.media_types == (
        "application/x-ndjson",
        "application/jsonl",
        "application/json",
    )
    parser = plugins.get_parser("jsonchunk", max_line_size=100)
    assert isinstance(parser, JSONChunkParser)
    assert isinstance(parser, modelwire.Parser)
    for media_type in registration.media_types:
        assert plugins.parser_for_media_type(media_type + "; charset=utf-8") is registration
