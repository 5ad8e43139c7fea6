"""Helpers and hypothesis strategies for the text parser tests.

The module name is unique across modelwire's test trees on purpose: all test
directories run in one pytest session in "prepend" import mode.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

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


def run(parser: Parser, chunks: Sequence[bytes]) -> tuple[str, ParseError | None]:
    """Feed every chunk, then close; the text of all frames and the error, if any.

    Also checks the shape every call must have: at most one frame, never an
    empty one, nothing but ``data`` set.
    """
    frames: list[Frame] = []

    def take(out: list[Frame]) -> None:
        assert len(out) <= 1
        for frame in out:
            assert isinstance(frame.data, str) and frame.data
            assert (frame.event, frame.id, frame.retry) == (None, None, None)
        frames.extend(out)

    try:
        for chunk in chunks:
            take(parser.feed(chunk))
        take(parser.close())
    except ParseError as exc:
        return "".join(f.data for f in frames), exc
    return "".join(f.data for f in frames), None


#: Any text UTF-8 can carry: astral characters, controls, U+FEFF, U+2028 ...
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)

#: Bytes biased towards UTF-8 trouble: lead bytes, continuation bytes, and
#: sequences that are overlong, surrogates or beyond U+10FFFF.
utf8_soup = st.lists(
    st.sampled_from(["a", "\n", "é", "€", "😀", "\ufeff"]).map(str.encode)
    | st.sampled_from(
        [
            *(b"\x80", b"\xbf", b"\xc0", b"\xc3", b"\xe2", b"\xe2\x82", b"\xed\xa0"),
            *(b"\xf0\x9f", b"\xf0\x9f\x98", b"\xf4\x90", b"\xf5", b"\xff", b"\xef\xbb"),
        ]
    ),
    max_size=40,
).map(b"".join)
