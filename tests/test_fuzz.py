"""Fuzzing: any input gives a value or a typed error, never a stray exception.

Properties over the three parser plugins (arbitrary bytes in arbitrary
chunks, then ``close``), the YAML reader and manifest loader (arbitrary text
and bytes, and mutated valid manifests), and the expression compiler
(arbitrary text, syntax-shaped soup, and deep nesting).

"Typed" means a :class:`modelwire.ModelError`. The one exception at a lower
layer: ``compile_expr`` reports a *syntax* error as jmespath's own
``JMESPathError`` (a ``ValueError``), which every caller maps to a
``ManifestIssue`` / ``ParseError`` with its position; anything else it
raises must be a ``ModelError`` (nesting too deep: ``ExpressionTooDeep``,
which is both).

Hypothesis runs with ``deadline=None`` (shared CI machines) and no state
outside Hypothesis, so ``--hypothesis-seed`` / derandomised runs reproduce.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from typing import Any

import jmespath.exceptions
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import modelwire
from modelwire import Frame, ModelError
from modelwire._manifest.expr import MAX_EXPR_DEPTH, Expr, ExpressionTooDeep, compile_expr
from modelwire._manifest.yaml import Located, read_yaml
from modelwire_jsonchunk import JSONChunkParser
from modelwire_sse import SSEParser
from modelwire_text import TextParser

from strategies import manifest_documents

FUZZ = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

# -- shared strategies ---------------------------------------------------------------


def soup(tokens: list[Any], max_size: int = 60) -> st.SearchStrategy[Any]:
    """Concatenations of format-relevant tokens, to reach past the first check."""
    join = "".join if isinstance(tokens[0], str) else b"".join
    return st.lists(st.sampled_from(tokens), max_size=max_size).map(join)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary places (empty chunks included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    return [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]


# -- parsers -------------------------------------------------------------------------

PARSERS = {"sse": SSEParser, "jsonchunk": JSONChunkParser, "text": TextParser}

WIRE_TOKENS = [
    b"data:",
    b"data: ",
    b"event: ",
    b"id: ",
    b"retry: ",
    b": comment",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"[DONE]",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b'\\"',
    b"\\u",
    b"d800",
    b":",
    b",",
    b"1",
    b"-",
    b"9" * 50,
    b"e999",
    b"NaN",
    b"true",
    b"null",
    b'{"a": 1}',
    b" ",
    b"\t",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\xc3",
    b"\xa9",
    b"\xf0\x9f\x98",
    b"\x80",
    b"x" * 100,
]

wire_bytes = st.one_of(st.binary(max_size=800), soup(WIRE_TOKENS, 80))


def run_parser(name: str, chunks: list[bytes]) -> list[Frame]:
    """Feed every chunk then close; a typed error ends the stream (re-raised)."""
    parser = PARSERS[name]()
    frames: list[Frame] = []
    for chunk in chunks:
        frames += parser.feed(chunk)
    frames += parser.close()
    return frames


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_parsers_give_frames_or_a_typed_error(name: str, data: st.DataObject) -> None:
    raw = data.draw(wire_bytes, label="bytes")
    chunks = data.draw(chunked(raw), label="chunks")
    try:
        frames = run_parser(name, chunks)
    except ModelError as exc:
        assert exc.kind == "parse", exc
        return
    assert isinstance(frames, list)
    assert all(isinstance(f, Frame) for f in frames)


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000 + b"\n", id="deep-json"),
        pytest.param(b'{"a": ' + b"9" * 5000 + b"}\n", id="5000-digit-int"),
        pytest.param(b"data: " + b"[" * 50_000 + b"\n\n", id="deep-sse-data"),
        pytest.param(b"retry: " + b"9" * 5000 + b"\n\n", id="huge-retry"),
        pytest.param(b'{"a": "\\ud800"}\n', id="lone-surrogate-escape"),
        pytest.param(b"\xff\xfe\x00\n" * 100, id="not-utf8"),
    ],
)
def test_parsers_on_hostile_inputs(name: str, raw: bytes) -> None:
    for chunks in ([raw], [raw[i : i + 7] for i in range(0, len(raw), 7)]):
        try:
            run_parser(name, chunks)
        except ModelError as exc:
            assert exc.kind == "parse"


# -- YAML reader and manifest loader -------------------------------------------------

YAML_TOKENS = [
    "version: 1\n",
    "providers:\n",
    "models:\n",
    "  ",
    "- ",
    ": ",
    "\n",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "!!int ",
    "!!binary ",
    "!!set ",
    "!!python/object ",
    "? ",
    "|",
    ">",
    "'",
    '"',
    "\\u",
    "d800",
    "\\ud83d\\ude00",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "${X}",
    "${X:-d}",
    "0x",
    "0o",
    "1_000",
    "9" * 50,
    "1e-05",
    ".inf",
    "2001-13-45",
    "2001-12-14t21:59:43.10-99:00",
    "12:30:45",
    "~",
    "null",
    "yes",
    "\t",
    "\x00",
    "\ud800",
    "\ufeff",
    "é",
    "😀",
]

yaml_text = st.one_of(
    st.text(max_size=300),  # any code point, lone surrogates included
    soup(YAML_TOKENS, 80),
)


def check_read(result: tuple[Located | None, list[Any]]) -> None:
    located, issues = result
    assert (located is None) == bool(issues), result
    if located is not None:
        assert isinstance(located, Located)


@FUZZ
@given(yaml_text)
@example("a: " + "9" * 5000)  # ValueError: int beyond 4300 digits (fixed)
@example("a: 2001-13-45")  # ValueError: month must be in 1..12 (fixed)
@example("a: 2001-12-14 21:59:43 +99:00")  # ValueError from the time zone offset
@example("a: \ud800")  # UnicodeEncodeError in the C loader (fixed)
def test_read_yaml_gives_a_value_or_issues(text: str) -> None:
    check_read(read_yaml(text, "m.yaml"))


@FUZZ
@given(
    st.one_of(st.binary(max_size=300), yaml_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
)
def test_read_yaml_bytes_gives_a_value_or_issues(raw: bytes) -> None:
    check_read(read_yaml(raw, "m.yaml"))


def load_text(raw: bytes) -> Any:
    """``load_manifests`` on a temporary file holding ``raw``."""
    with tempfile.TemporaryDirectory(prefix="modelwire-fuzz-") as tmp:
        path = os.path.join(tmp, "m.yaml")
        with open(path, "wb") as fh:
            fh.write(raw)
        return modelwire.load_manifests(path, env={"X": "x"})


@FUZZ
@given(
    st.one_of(st.binary(max_size=300), yaml_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
)
@example(b"version: 1\nmodels: {m: {provider: p, limits: {rpm: " + b"9" * 5000 + b"}}}\n")
def test_load_manifests_gives_a_catalog_or_a_manifest_error(raw: bytes) -> None:
    try:
        load_text(raw)
    except ModelError:
        pass


@st.composite
def mutated_manifests(draw: st.DrawFn) -> bytes:
    """A valid manifest with a few tokens spliced in at random places."""
    doc = draw(manifest_documents())
    text = (
        json.dumps(doc)
        if draw(st.booleans())
        else yaml.safe_dump(doc, default_flow_style=draw(st.booleans()), allow_unicode=True)
    )
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(YAML_TOKENS)) + text[at:]
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(mutated_manifests())
def test_mutated_manifests_give_a_catalog_or_a_manifest_error(raw: bytes) -> None:
    try:
        load_text(raw)
    except ModelError:
        pass


# -- expressions ---------------------------------------------------------------------

EXPR_TOKENS = [
    "a",
    "b",
    "c",
    ".",
    "[",
    "]",
    "[]",
    "[*]",
    "[0]",
    "[-1]",
    "[1:]",
    "[::-1]",
    "[?",
    "?",
    "*",
    "|",
    "||",
    "&&",
    "!",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "@",
    "(",
    ")",
    "{",
    "}",
    ":",
    ",",
    "&",
    "`1`",
    "`null`",
    '`"x"`',
    '`[1,{"a":2}]`',
    "'x'",
    '"a"',
    " ",
    "length(",
    "keys(",
    "to_json(",
    "from_json(",
    "as_text(",
    "lookup(",
    "merge_consecutive(",
    "concat(",
    "when(",
    "items(",
    "from_items(",
    "sort_by(",
    "max_by(",
    "join(",
    "`",
]

json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=12,
)

#: what a caller may see from compile_expr or an evaluation (see the module docstring)
EXPR_ERRORS = (ModelError, jmespath.exceptions.JMESPathError)


@FUZZ
@given(st.one_of(st.text(max_size=200), soup(EXPR_TOKENS, 40)), json_data)
def test_compile_expr_gives_an_expression_or_a_typed_error(text: str, data: Any) -> None:
    try:
        expr = compile_expr(text)
    except EXPR_ERRORS:
        return
    assert isinstance(expr, Expr)
    try:
        expr(data)
    except EXPR_ERRORS:
        pass


DEEP = {
    "parentheses": "(" * 500 + "a" + ")" * 500,
    "nots": "!" * 3000 + "a",
    "pipes": "a" + "|a" * 3000,
    "ors": "||".join(["a"] * 1000),
    "filters": "a[?" * 500 + "b" + "]" * 500,
    "lists": "[" * 2000 + "a" + "]" * 2000,
    "json-literal": "`" + "[" * 3000 + "]" * 3000 + "`",
    "hashes": "{a: " * 500 + "a" + "}" * 500,
}


@pytest.mark.parametrize("text", DEEP.values(), ids=DEEP.keys())
def test_deep_expressions_are_a_typed_error(text: str) -> None:
    """Before: RecursionError from the parser (or later, per frame, from the closures)."""
    with pytest.raises(ModelError) as info:
        compile_expr(text)
    assert isinstance(info.value, ExpressionTooDeep)
    assert isinstance(info.value, modelwire.InvalidRequestError)
    assert isinstance(
        info.value, jmespath.exceptions.JMESPathError
    )  # callers map it as a syntax error
    assert info.value.code == "EXPRESSION_TOO_DEEP"


def test_nesting_up_to_the_limit_compiles_and_runs() -> None:
    depth = MAX_EXPR_DEPTH - 1
    expr = compile_expr("!" * depth + "a")
    assert expr({"a": 1}) is (depth % 2 == 0)


def test_a_long_dotted_path_is_flat_and_fine() -> None:
    """``a.b.c...`` parses to a flat chain: 3000 fields compile and run."""
    data: Any = 1
    for _ in range(3000):
        data = {"a": data}
    assert compile_expr(".".join(["a"] * 3000))(data) == 1


def test_a_deep_expression_in_a_manifest_is_a_manifest_error() -> None:
    manifest = (
        "version: 1\nproviders:\n  p:\n    base_url: http://127.0.0.1:1\n    operators:\n"
        "      generate:\n        path: /x\n        request: '" + DEEP["parentheses"] + "'\n"
    )
    with pytest.raises(modelwire.ManifestError):
        load_text(manifest.encode())
