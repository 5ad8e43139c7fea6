"""The sans-IO exchange: bytes in, events out, whatever the chunking; nothing before a failure is lost."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import modelwire
from modelwire._runtime.exchange import Exchange
from modelwire._runtime.mapping import compile_rules
from modelwire._runtime.planning import plan

CATALOG = modelwire.load_manifests("builtin:*", env={})
OPENAI = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"lo \xce\xb3"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
FAILING = (
    b'data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}\n\n'
    b'data: {"error":{"code":"server_error","message":"bad"}}\n\n'
)


def exchange(model: str = "gpt-4.1") -> Exchange:
    p = plan(CATALOG, model, "generate")
    return Exchange(modelwire.get_parser(p.operator.parser), compile_rules(p.operator), p.context())


def run(chunks: list[bytes]) -> tuple[list[Any], Exchange, BaseException | None]:
    ex = exchange()
    out: list[Any] = []
    try:
        for chunk in chunks:
            out.extend(ex.feed(chunk))
            ex.raise_error()
        out.extend(ex.close())
        ex.raise_error()
    except modelwire.ModelError as exc:
        return out, ex, exc
    return out, ex, None


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(st.lists(st.integers(min_value=0), max_size=20))
def test_events_do_not_depend_on_chunking(cuts: list[int]) -> None:
    whole, _, _ = run([OPENAI])
    pieces, ex_pieces, _ = run(split(OPENAI, cuts))
    assert pieces == whole
    assert (ex_pieces.tally.input_tokens, ex_pieces.tally.output_tokens) == (3, 2)


@pytest.mark.parametrize("chunks", [pytest.param([FAILING], id="one-chunk"), pytest.param(
    [FAILING[:40], FAILING[40:]], id="two-chunks")])
def test_text_before_an_in_stream_error_is_passed_on_first(chunks: list[bytes]) -> None:
    events, _, error = run(chunks)
    assert [e.text for e in events if isinstance(e, modelwire.TextDelta)] == ["partial"]
    assert isinstance(error, modelwire.ProviderDownError)


def test_a_stream_without_its_end_marker_is_truncated() -> None:
    events, _, error = run([OPENAI[: OPENAI.index(b"data: [DONE]")]])
    assert isinstance(error, modelwire.NetworkError) and error.code == "STREAM_TRUNCATED"
    assert "".join(e.text for e in events if isinstance(e, modelwire.TextDelta)) == "Hello \u03b3"
