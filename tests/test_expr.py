"""Compiled expressions must agree with jmespath's own interpreter."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelwire._manifest.expr import compile_expr, is_true

EXPRESSIONS = [
    "a",
    "a.b",
    "a.b.c",
    "a[0]",
    "a[-1]",
    "a[1:3]",
    "a[]",
    "a[].b",
    "a[*].b",
    "a.*",
    "a[?b].c",
    "a[?b == `1`].c",
    "a[?b != 'x']",
    "a[?b > `1`]",
    "a[?b <= `2`].b",
    "a || b",
    "a && b",
    "!a",
    "a == b",
    "{x: a, y: b.c}",
    "[a, b]",
    "a | [0]",
    "@",
    "`null`",
    "length(a || '')",
    "to_json(a)",
    "type(a)",
    "concat(a, b)",
    "when(a, b, c)",
    "keys(a || `{}`)",
    "sort_by(a, &to_string(b))",
    "choices[].delta.content",
    "choices[].delta.tool_calls[]",
    "choices[?finish_reason].finish_reason",
    # the inlined shapes (one field, then one or two) and their near neighbours
    "choices[].delta.content[0]",
    "a[].a",
    "a[].b.c.a",
    "a.b[].c",
    "a[?a].a",
    "a[?b.c].c",
    "a[?b].c.a",
    "a.b[0]",
    "usage && {i: usage.prompt_tokens, o: usage.completion_tokens}",
]

keys = st.sampled_from(["a", "b", "c", "choices", "delta", "content", "usage", "x"])
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "é", "1"])
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)


def _run(fn: Any, data: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(data)
    except jmespath.exceptions.JMESPathError as exc:
        return "error", type(exc).__name__
    except TypeError:  # ordering across types raises in both
        return "error", "TypeError"


@pytest.mark.parametrize("text", EXPRESSIONS)
@settings(max_examples=150, deadline=None)
@given(data=json_values)
def test_compiled_agrees_with_interpreter(text: str, data: Any) -> None:
    expr = compile_expr(text)
    assert _run(expr, data) == _run(expr.interpret, data)


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        pytest.param("lookup(`{\"assistant\": \"model\"}`, role)", {"role": "assistant"}, "model", id="lookup-hit"),
        pytest.param("lookup(`{\"assistant\": \"model\"}`, role)", {"role": "user"}, "user", id="lookup-miss"),
        pytest.param("from_json(a)", {"a": '{"x": 1}'}, {"x": 1}, id="from-json"),
        pytest.param("from_json(a)", {"a": ""}, {}, id="from-json-empty"),
        pytest.param("as_parts(c)", {"c": "hi"}, [{"type": "text", "text": "hi"}], id="as-parts-str"),
        pytest.param("as_text(c)", {"c": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]}, "ab", id="as-text-parts"),
        pytest.param("enumerate(a)", {"a": ["x", "y"]}, [{"index": 0, "value": "x"}, {"index": 1, "value": "y"}], id="enumerate"),
        pytest.param("attach(a, {m: m})", {"a": ["x"], "m": "M"}, [{"m": "M", "index": 0, "value": "x"}], id="attach"),
        pytest.param(
            "merge_consecutive(m, 'role', 'content')",
            {"m": [{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "x"}]}, {"role": "assistant", "content": "b"}]},
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "x"}]}, {"role": "assistant", "content": "b"}],
            id="merge-consecutive",
        ),
        pytest.param("items(o)", {"o": {"k": 1}}, [{"key": "k", "value": 1}], id="items"),
        pytest.param("from_items(items(o))", {"o": {"k": 1}}, {"k": 1}, id="from-items"),
        pytest.param("when(a, 'y', 'n')", {"a": 0}, "y", id="when-zero-is-true"),
    ],
)
def test_functions(text: str, data: Any, expected: Any) -> None:
    expr = compile_expr(text)
    assert expr(data) == expected
    assert expr.interpret(data) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), (False, False), ("", False), ([], False), ({}, False), (0, True), ("0", True), ([0], True)],
)
def test_truthiness(value: Any, expected: bool) -> None:
    assert is_true(value) is expected


def test_compile_is_cached() -> None:
    assert compile_expr("a.b") is compile_expr("a.b")
