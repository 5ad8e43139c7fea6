"""Safe YAML: positions, alias and merge-key bombs, size and depth limits, tags."""

from __future__ import annotations

import pytest

from modelwire._manifest.structure import parse_manifest
from modelwire._manifest.yaml import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_NODES,
    format_path,
    read_yaml,
)


def billion_laughs(levels: int, width: int = 10) -> str:
    lines = ["version: 1", 'a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int) -> str:
    lines = ["version: 1", "m0: &m0 {k: 1}"]
    for i in range(1, levels + 1):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            billion_laughs(9),
            f"m.yaml:1: document expands to more than {MAX_NODES} values (an alias bomb?); refusing it",
            id="billion-laughs",
        ),
        pytest.param(
            merge_bomb(30),
            f"m.yaml:1: document expands to more than {MAX_NODES} values (a merge-key bomb?); refusing it",
            id="merge-key-bomb",
        ),
        pytest.param(
            "version: 1\nx: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n",
            f"m.yaml:1: document nests deeper than {MAX_DEPTH} levels; refusing it",
            id="too-deep",
        ),
        pytest.param(
            "version: 1\nx: " + "[" * 100_000 + "]" * 100_000 + "\n",
            None,
            id="far-too-deep",
        ),
    ],
)
def test_bombs_are_refused_quickly(text: str, message: str | None) -> None:
    _m, _d, issues = parse_manifest(text, "m.yaml", env={})
    assert len(issues) == 1
    if message is not None:
        assert str(issues[0]) == message
    else:
        assert "nest" in issues[0].message


def test_shared_aliases_below_the_limit_are_fine() -> None:
    doc, issues = read_yaml(billion_laughs(3))
    assert issues == []
    assert doc is not None and len(doc.value["a3"]) == 10


def test_merge_keys_work_and_explicit_keys_override() -> None:
    text = "base: &b {x: 1, y: 2}\nderived: &d {<<: *b, y: 3}\nagain: *d\n"
    doc, issues = read_yaml(text)
    assert issues == []
    assert doc is not None
    assert doc.value == {
        "base": {"x": 1, "y": 2},
        "derived": {"x": 1, "y": 3},
        "again": {"x": 1, "y": 3},
    }
    assert doc.lines[("derived", "y")] == 2


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"version: 1\n" + b"#" * MAX_DOCUMENT_BYTES, id="bytes"),
        pytest.param(
            "version: 1\n#" + "\u20ac" * (MAX_DOCUMENT_BYTES // 3), id="str-counted-in-utf8-bytes"
        ),
    ],
)
def test_oversize_document_is_refused_before_parsing(text: str | bytes) -> None:
    size = len(text) if isinstance(text, bytes) else len(text.encode())
    _m, _d, issues = parse_manifest(text, "big.yaml", env={})
    assert [str(i) for i in issues] == [
        f"big.yaml: document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}"
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b"version: 1\nx: \xff\n", "not UTF-8: invalid start byte at byte 14", id="bad-utf8"
        ),
        pytest.param(
            "version: 1\nx: !!set {a, b}\n",
            "invalid YAML: unsupported tag 'tag:yaml.org,2002:set'",
            id="set-tag",
        ),
        pytest.param(
            "version: 1\nx: !custom [1]\n",
            "invalid YAML: unsupported tag '!custom'",
            id="custom-tag-on-a-list",
        ),
        pytest.param(
            "version: 1\n? [a, b]\n: 1\n",
            "invalid YAML: a mapping key must be a scalar",
            id="complex-key",
        ),
    ],
)
def test_unsafe_or_odd_yaml_is_refused(data: str | bytes, message: str) -> None:
    doc, issues = read_yaml(data, "m.yaml")
    assert doc is None
    assert [i.message for i in issues] == [message]


def test_utf8_bom_is_accepted() -> None:
    doc, issues = read_yaml("\ufeffversion: 1\n".encode())
    assert issues == [] and doc is not None and doc.value == {"version": 1}


def test_lines_are_recorded_for_keys_and_items() -> None:
    doc, issues = read_yaml("version: 1\nmodels:\n  m:\n    fallback:\n      - a\n      - b\n")
    assert issues == [] and doc is not None
    assert doc.line_of(("models", "m", "fallback", 1)) == 6
    assert doc.line_of(("models", "m", "fallback")) == 4
    assert doc.line_of(("models", "m", "nope", "deeper")) == 3  # nearest ancestor
    assert doc.line_of(()) == 1


@pytest.mark.parametrize(
    ("path", "text"),
    [
        pytest.param((), "", id="root"),
        pytest.param(
            ("models", "gpt-4.1", "limits", "rpm"), "models.gpt-4.1.limits.rpm", id="dotted"
        ),
        pytest.param(
            ("providers", "p", "operators", "g", "events", 2, "emit"),
            "providers.p.operators.g.events[2].emit",
            id="index",
        ),
        pytest.param((0, "a"), "[0].a", id="leading-index"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param('{"n": 1e-05}', 1e-05, id="json-exponent-without-dot"),
        pytest.param('{"n": 2E6}', 2e6, id="json-capital-exponent"),
        pytest.param('{"n": 1.5e10}', 1.5e10, id="json-unsigned-exponent"),
        pytest.param("n: -3e+2", -300.0, id="yaml-signed-exponent"),
        pytest.param('{"n": "1e5"}', "1e5", id="quoted-stays-a-string"),
        pytest.param('{"n": "\\ud83d\\ude00 \\u00e9"}', "\U0001f600 \u00e9", id="json-surrogate-pair"),
        pytest.param('{"n": "\\\\ud83d"}', "\\ud83d", id="escaped-backslash-is-not-an-escape"),
        pytest.param("n: '\\ud83d\\ude00'", "\\ud83d\\ude00", id="single-quoted-is-literal"),
    ],
)
def test_json_documents_read_as_json_does(text: str, value: object) -> None:
    doc, issues = read_yaml(text)
    assert issues == []
    assert doc is not None and doc.value == {"n": value}


def test_a_lone_surrogate_is_still_an_error() -> None:
    _doc, issues = read_yaml('{"n": "\\ud800"}')
    assert [i.message for i in issues] == [
        "invalid YAML: while parsing a quoted scalar, found invalid Unicode character escape code"
    ]


def test_merge_keys_chained_through_thousands_of_anchors_are_refused() -> None:
    lines = ["x0: &a0 {k: 1}"]
    lines += [f"x{i}: &a{i} {{<<: *a{i - 1}, k{i}: 1}}" for i in range(1, 3000)]
    lines.append("<<: *a2999")
    _doc, issues = read_yaml("\n".join(lines), "m.yaml")
    assert [str(i) for i in issues] == ["m.yaml:1: document chains merge keys too deeply; refusing it"]
