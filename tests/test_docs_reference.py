"""docs/manifest.md documents every field of every manifest class, as _manifest.py does.

The field tables between the ``<!-- fields:begin -->`` / ``<!-- fields:end -->``
markers are generated; regenerate them with ``python tests/test_docs_reference.py``.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import attrs

from modelwire._manifest.model import Manifest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST_MD = ROOT / "docs" / "manifest.md"
BEGIN, END = "<!-- fields:begin -->", "<!-- fields:end -->"


def _classes() -> list[type]:
    seen: list[type] = []

    def visit(t: Any) -> None:
        if attrs.has(t):
            if t in seen:
                return
            seen.append(t)
            hints = typing.get_type_hints(t)
            for field in attrs.fields(t):
                visit(hints[field.name])
        for arg in typing.get_args(t):
            visit(arg)

    visit(Manifest)
    return seen


def _type(t: Any) -> str:
    if t is Any:
        return "any"
    if t is type(None):
        return "null"
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if t in simple:
        return simple[t]
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_type(a) for a in args)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return "mapping" if args[1] is Any else f"mapping of name to {_type(args[1])}"
    if attrs.has(t):
        return f"[{t.__name__}](#{t.__name__.lower()})"
    raise TypeError(t)


def _default(field: attrs.Attribute) -> str:  # type: ignore[type-arg]
    default = field.default
    if default is attrs.NOTHING:
        return "**required**"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        value = default.factory()
        if attrs.has(type(value)):
            return "(its defaults)"
        return (
            f"`{value!r}`".replace("'", '"')
            if value
            else ("`[]`" if isinstance(value, list) else "`{}`")
        )
    if default is None:
        return "`null`"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


def render() -> str:
    """The generated part of docs/manifest.md."""
    out: list[str] = []
    for cls in _classes():
        hints = typing.get_type_hints(cls)
        doc = " ".join((cls.__doc__ or "").split()).replace("``", "`")
        out += [
            f"### {cls.__name__}",
            "",
            doc,
            "",
            "| field | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for field in attrs.fields(cls):
            meaning = field.metadata["doc"].replace("|", "\\|")
            out.append(
                f"| `{field.name}` | {_type(hints[field.name])} | {_default(field)} | {meaning} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _generated_part(text: str) -> str:
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, flags=re.S)
    assert match, f"{MANIFEST_MD} lacks the {BEGIN} ... {END} markers"
    return match.group(1)


def test_manifest_reference_is_up_to_date() -> None:
    text = MANIFEST_MD.read_text(encoding="utf-8")
    assert _generated_part(text) == render(), (
        "docs/manifest.md field tables are stale; regenerate with `python tests/test_docs_reference.py`"
    )


def test_every_class_is_a_section() -> None:
    names = [cls.__name__ for cls in _classes()]
    assert names[0] == "Manifest"
    assert len(names) == len(set(names))


if __name__ == "__main__":
    text = MANIFEST_MD.read_text(encoding="utf-8")
    _generated_part(text)  # both markers are there
    head, rest = text.split(BEGIN + "\n", 1)
    _old, tail = rest.split(END, 1)
    MANIFEST_MD.write_text(head + BEGIN + "\n" + render() + END + tail, encoding="utf-8")
    print(f"updated {MANIFEST_MD}")
