"""Helpers and hypothesis strategies for the jsonchunk parser tests.

The module name is unique across modelwire's test trees on purpose: all test
directories run in one pytest session in "prepend" import mode.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from typing import Any

from hypothesis import strategies as st

from modelwire import Frame, ParseError, Parser

#: How a case's bytes are cut into chunks: all at once, one byte at a time,
#: and at several random (seeded, so reproducible) places, empty chunks included.
SPLITS = ("whole", "bytewise", "random")


def chunkings(data: bytes, how: str) -> Iterator[list[bytes]]:
    """The chunkings of ``data`` for one split mode."""
    if how == "whole":
        yield [data]
    elif how == "bytewise":
        yield [data[i : i + 1] for i in range(len(data))]
    else:
        for seed in range(8):
            rng = random.Random(seed)
            yield split_at(data, [rng.randint(0, len(data)) for _ in range(rng.randint(1, 12))])


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at the given offsets (clamped and sorted; duplicates give empty chunks)."""
    points = sorted(min(max(c, 0), len(data)) for c in cuts)
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def run(parser: Parser, chunks: Sequence[bytes]) -> tuple[list[Any], ParseError | None]:
    """Feed every chunk, then close; the frames' data and the error, if any.

    Frames that ``close()`` completed before failing ride on its error.
    """
    frames: list[Frame] = []
    try:
        for chunk in chunks:
            frames += parser.feed(chunk)
        frames += parser.close()
    except ParseError as exc:
        frames += getattr(exc, "frames", [])
        return [f.data for f in frames], exc
    for frame in frames:
        assert (frame.event, frame.id, frame.retry) == (None, None, None)
    return [f.data for f in frames], None


def where(error: ParseError | None) -> tuple[str, int | None, int | None] | None:
    """What must not depend on the chunking: the code, the line, the offset."""
    return None if error is None else (error.code, error.line, error.offset)


# -- random JSON -------------------------------------------------------------

#: Text of every kind, astral characters and the Unicode line separators included.
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=10)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)


def dump(value: Any, rng: random.Random) -> str:
    """One line of JSON, in one of several equivalent spellings."""
    separators = rng.choice([(",", ":"), (", ", ": ")])
    return json.dumps(value, ensure_ascii=rng.random() < 0.5, separators=separators)


def dump_pretty(value: Any, rng: random.Random) -> str:
    """A pretty-printed (usually multi-line) document, LF or CRLF."""
    indents: list[int | str] = [0, 1, 2, 4, "\t"]
    indent = rng.choice(indents)
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return text.replace("\n", "\r\n") if rng.random() < 0.5 else text


def ndjson(values: Sequence[Any], rng: random.Random) -> bytes:
    """NDJSON with random LF / CRLF line ends and blank lines; the last line
    ends without a line end half the time."""
    out: list[str] = []
    for value in values:
        while rng.random() < 0.15:
            out.append(rng.choice(["", " ", "\t", "  \t", "\r", " \r"]) + "\n")
        out.append(dump(value, rng) + rng.choice(["\n", "\r\n"]))
    if out and rng.random() < 0.5:
        out[-1] = out[-1].rstrip("\r\n")
    return "".join(out).encode("utf-8")


def documents(values: Sequence[Any], rng: random.Random) -> bytes:
    """Values one after another, each compact or pretty-printed, separated by
    any JSON whitespace (several may share a line)."""
    out: list[str] = []
    for value in values:
        out.append(dump_pretty(value, rng) if rng.random() < 0.5 else dump(value, rng))
        out.append(rng.choice([" ", "\n", "\r\n", "\n\n", " \n\t", "\r\n  \r\n"]))
    return "".join(out).encode("utf-8")


#: Bytes biased towards what matters to a JSON stream.
json_soup = st.lists(
    st.sampled_from(
        [
            *("{", "}", "[", "]", '"a"', '"', ":", ",", "1", "-", "true", "nul", "x"),
            *(" ", "\t", "\n", "\r\n", "\r", "é", "😀", "\\", "\u2028"),
        ]
    ).map(str.encode)
    | st.sampled_from([b"\xff", b"\xc3", b"\xef\xbb\xbf"]),
    max_size=60,
).map(b"".join)
