"""The ``text`` parser: incremental UTF-8 decoding."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from text_strategies import SPLITS, any_text, chunkings, run, split_at, utf8_soup

import modelwire
from modelwire import Frame, ParseError
from modelwire_text import TextParser

CASES = [
    pytest.param(b"", "", id="empty"),
    pytest.param(b"hello world", "hello world", id="ascii"),
    pytest.param("héllo wörld € ✓".encode(), "héllo wörld € ✓", id="two-and-three-byte"),
    pytest.param("😀🎉 𝄞 astral".encode(), "😀🎉 𝄞 astral", id="four-byte"),
    pytest.param(b"a\r\nb\rc\n", "a\r\nb\rc\n", id="line-ends-verbatim"),
    pytest.param(b"\xef\xbb\xbfhi", "\ufeffhi", id="bom-kept"),
    pytest.param(b"\x00\x7f\xc2\x80\xf4\x8f\xbf\xbf", "\x00\x7f\x80\U0010ffff", id="extremes"),
    pytest.param(b"data: x\n\n", "data: x\n\n", id="anything-is-text"),
]


@pytest.mark.parametrize("errors", ["strict", "replace"])
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("wire", "expected"), CASES)
def test_cases(wire: bytes, expected: str, split: str, errors: str) -> None:
    for chunks in chunkings(wire, split):
        assert run(TextParser(errors=errors), chunks) == (expected, None), chunks


def test_one_frame_per_feed_with_the_text_completed() -> None:
    parser = TextParser()
    euro = "€".encode()
    assert parser.feed(b"ab" + euro[:1]) == [Frame("ab")]
    assert parser.feed(euro[1:2]) == []  # no character completed: no frame
    assert parser.feed(euro[2:] + b"c") == [Frame("€c")]
    assert parser.feed(b"") == []
    assert parser.close() == []


STRICT_ERRORS = [
    pytest.param(b"\xff", "", (1, 0), id="invalid-byte"),
    pytest.param(b"ab\xffcd", "ab", (1, 2), id="text-before-the-error-kept"),
    pytest.param(b"a\nb\r\n\xc3(", "a\nb\r\n", (3, 5), id="bad-continuation-line-3"),
    pytest.param(b"x\x80", "x", (1, 1), id="lone-continuation"),
    pytest.param(b"\xc0\xaf", "", (1, 0), id="overlong"),
    pytest.param(b"ok\xed\xa0\x80", "ok", (1, 2), id="surrogate"),
    pytest.param(b"\xf4\x90\x80\x80", "", (1, 0), id="beyond-u10ffff"),
    pytest.param(b"\xe2\x82", "", (1, 0), id="incomplete-at-close"),
    pytest.param(b"ok\n\xf0\x9f\x98", "ok\n", (2, 3), id="incomplete-four-byte-at-close"),
    pytest.param("é€😀".encode() + b"\xe2\x28", "é€😀", (1, 9), id="after-multibyte"),
]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("wire", "text", "where"), STRICT_ERRORS)
def test_strict_errors(wire: bytes, text: str, where: tuple[int, int], split: str) -> None:
    for chunks in chunkings(wire, split):
        got, exc = run(TextParser(), chunks)
        assert got == text
        assert exc is not None
        assert (exc.line, exc.offset, exc.code, exc.kind) == (*where, "TEXT_INVALID_UTF8", "parse")


REPLACE_CASES = [
    pytest.param(b"a\xffb", "a\ufffdb", id="invalid-byte"),
    pytest.param(b"\xe2\x82", "\ufffd", id="incomplete-at-close-is-one-replacement"),
    pytest.param(b"\xe2\x82x", "\ufffdx", id="truncated-sequence-is-one-replacement"),
    pytest.param(b"\xed\xa0\x80", "\ufffd" * 3, id="surrogate"),
    pytest.param(b"\xf0\x80\x80", "\ufffd" * 3, id="overlong"),
    pytest.param(b"\xc3(\x80", "\ufffd(\ufffd", id="mixed"),
]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("wire", "expected"), REPLACE_CASES)
def test_replace(wire: bytes, expected: str, split: str) -> None:
    assert wire.decode("utf-8", "replace") == expected
    for chunks in chunkings(wire, split):
        assert run(TextParser(errors="replace"), chunks) == (expected, None), chunks


def test_text_before_an_error_comes_first_then_every_call_raises() -> None:
    parser = TextParser()
    assert parser.feed(b"ab\xffcd") == [Frame("ab")]
    with pytest.raises(ParseError) as first:
        parser.feed(b"more")
    with pytest.raises(ParseError) as second:
        parser.close()
    assert first.value is second.value
    assert "line=1 offset=2" in str(first.value)


def test_error_offset_counts_bytes_held_for_an_unfinished_character() -> None:
    parser = TextParser()
    assert parser.feed(b"abc\xe2") == [Frame("abc")]
    with pytest.raises(ParseError) as info:
        parser.feed(b"\x82(")
    assert info.value.offset == 3


def test_errors_property_and_bad_options() -> None:
    assert TextParser().errors == "strict"
    assert TextParser(errors="replace").errors == "replace"
    with pytest.raises(ValueError, match="strict, replace"):
        TextParser(errors="ignore")
    with pytest.raises(TypeError):
        TextParser(max_line_size=10)  # type: ignore[call-arg]


# -- properties --------------------------------------------------------------------


@given(any_text, st.lists(st.integers(0, 300), max_size=12), st.sampled_from(["strict", "replace"]))
def test_random_text_any_chunking(text: str, cuts: list[int], errors: str) -> None:
    wire = text.encode("utf-8")
    assert run(TextParser(errors=errors), split_at(wire, cuts)) == (text, None)
    assert run(TextParser(errors=errors), [wire[i : i + 1] for i in range(len(wire))]) == (
        text,
        None,
    )


@given(utf8_soup, st.lists(st.integers(0, 200), max_size=12))
def test_replace_matches_bytes_decode(wire: bytes, cuts: list[int]) -> None:
    expected = wire.decode("utf-8", "replace")
    assert run(TextParser(errors="replace"), split_at(wire, cuts)) == (expected, None)
    assert run(TextParser(errors="replace"), [wire[i : i + 1] for i in range(len(wire))]) == (
        expected,
        None,
    )


@given(utf8_soup, st.lists(st.integers(0, 200), max_size=12))
def test_strict_matches_bytes_decode(wire: bytes, cuts: list[int]) -> None:
    try:
        expected: tuple[str, Any] = (wire.decode("utf-8"), None)
    except UnicodeDecodeError as exc:
        good = wire[: exc.start]
        expected = (good.decode("utf-8"), (good.count(b"\n") + 1, exc.start))
    for chunks in (split_at(wire, cuts), [wire[i : i + 1] for i in range(len(wire))]):
        text, error = run(TextParser(), chunks)
        assert (text, error and (error.line, error.offset)) == expected


# -- the plugin ----------------------------------------------------------------------


def test_entry_point() -> None:
    # Only this distribution's entry points (plus the core's built-ins): other
    # plugins installed in a test venv may clash on purpose.
    plugins = modelwire.Plugins(only=["modelwire-text"])
    assert plugins.load_errors == []
    registration = plugins.get("parser", "text")
    assert registration.distribution == "modelwire-text"
    assert registration.version == "0.1.0"
    assert registration.media_types == ("text/*",)
    parser = plugins.get_parser("text", errors="replace")
    assert isinstance(parser, TextParser)
    assert isinstance(parser, modelwire.Parser)
    for media_type in ("text/plain", "text/plain; charset=utf-8", "text/markdown", "TEXT/HTML"):
        assert plugins.parser_for_media_type(media_type) is registration
    assert plugins.parser_for_media_type("application/octet-stream") is not registration
