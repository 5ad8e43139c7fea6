"""Helpers and hypothesis strategies for the SSE parser tests.

The module name is unique across modelwire's test trees on purpose: all test
directories run in one pytest session in "prepend" import mode.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

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
            cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(1, 12)))
            yield [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def run(parser: Parser, chunks: Sequence[bytes]) -> tuple[list[Frame], ParseError | None]:
    """Feed every chunk, then close; the frames seen and the error, if any."""
    frames: list[Frame] = []
    try:
        for chunk in chunks:
            frames += parser.feed(chunk)
        frames += parser.close()
    except ParseError as exc:
        return frames, exc
    return frames, None


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at the given offsets (clamped and sorted; duplicates give empty chunks)."""
    points = sorted(min(max(c, 0), len(data)) for c in cuts)
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


# -- random event streams ---------------------------------------------------

#: Text that can sit on one SSE line: any encodable character (astral ones
#: included) except CR and LF.
line_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=20
)


@dataclass
class Block:
    """One blank-line-terminated block of the stream, and the fields it sets."""

    data: list[str] | None = None  # None: no data line, nothing dispatched
    event: str | None = None
    id: str | None = None  # may hold NULL: then the spec ignores it
    retry: int | None = None
    bad_retry: str | None = None  # a retry value that must be ignored
    comments: list[str] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    """One random block: data or not, any mix of the other fields."""
    bad_retries = ["", " 5", "5 ", "-1", "1.5", "1e3", "x", "\u0663", "12a"]
    unknown_names = ["foo", "Data", "data ", "ID", "retry2"]
    return Block(
        data=draw(st.none() | st.lists(line_text, min_size=1, max_size=4)),
        event=draw(st.none() | line_text),
        id=draw(st.none() | line_text | line_text.map(lambda s: s + "\0")),
        retry=draw(st.none() | st.integers(0, 10**12)),
        bad_retry=draw(st.none() | st.sampled_from(bad_retries)),
        comments=draw(st.lists(line_text, max_size=2)),
        unknown=draw(st.lists(st.tuples(st.sampled_from(unknown_names), line_text), max_size=2)),
    )


def field_line(name: str, value: str, rng: random.Random) -> str:
    """``name: value`` in one of its equivalent spellings."""
    if value == "" and rng.random() < 0.3:
        return name  # a field without a colon has an empty value
    if not value.startswith(" ") and rng.random() < 0.3:
        return f"{name}:{value}"  # the space after the colon is optional
    return f"{name}: {value}"


def encode(blocks: Sequence[Block], rng: random.Random, bom: bool) -> bytes:
    """The wire form of ``blocks``, with random line ends and field order."""
    out: list[str] = ["\ufeff"] if bom else []
    previous = "\n"
    for block in blocks:
        lines: list[str] = [":" + c for c in block.comments]
        lines += [field_line(name, value, rng) for name, value in block.unknown]
        if block.event is not None:
            lines.append(field_line("event", block.event, rng))
        if block.id is not None:
            lines.append(field_line("id", block.id, rng))
        if block.retry is not None:
            lines.append(f"retry: {block.retry}")
        if block.bad_retry is not None:
            lines.append(f"retry: {block.bad_retry}")
        rng.shuffle(lines)
        # Data lines keep their order; the other lines interleave at random.
        data = [field_line("data", value, rng) for value in block.data or []]
        merged: list[str] = []
        while lines or data:
            source = data if data and (not lines or rng.random() < 0.5) else lines
            merged.append(source.pop(0))
        lines = merged
        lines.append("")  # the blank line that dispatches
        if rng.random() < 0.2:
            lines.append("")
        for line in lines:
            ending = rng.choice(["\n", "\r", "\r\n"])
            if previous == "\r" and not line and ending == "\n":
                ending = "\r\n"  # CR + LF would merge into one line end
            out.append(line + ending)
            previous = ending
    return "".join(out).encode("utf-8")


def expected_frames(blocks: Sequence[Block]) -> list[Frame]:
    """What the WHATWG rules dispatch for ``blocks``."""
    frames: list[Frame] = []
    last_id: str | None = None
    retry: int | None = None
    for block in blocks:
        if block.id is not None and "\0" not in block.id:
            last_id = block.id
        if block.retry is not None:
            retry = block.retry
        if block.data is not None:
            frames.append(Frame("\n".join(block.data), block.event or "message", last_id, retry))
    return frames
