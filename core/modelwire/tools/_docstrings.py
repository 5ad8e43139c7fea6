"""Parsing Google, NumPy and Sphinx docstrings into a summary and per-parameter text.
"""

from __future__ import annotations

import inspect
import re

__all__ = [
    "parse_docstring",
]


_GOOGLE_SECTION = re.compile(r"^(\w[\w ]*):\s*$")
_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "other parameters"}
_RETURN_SECTIONS = {"returns", "return", "yields"}
_OTHER_SECTIONS = {"raises", "example", "examples", "note", "notes", "see also", "warning", "warnings", "todo"}
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")
_SPHINX_RETURN = re.compile(r"^:returns?:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str], str | None]:
    """(summary, parameter descriptions, return description) from a Google, NumPy or Sphinx docstring."""
    if not doc:
        return "", {}, None
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    i = 0
    while i < len(lines) and lines[i].strip() and not _is_section(lines, i):
        summary.append(lines[i].strip())
        i += 1
    params: dict[str, str] = {}
    returns: list[str] = []
    section: str | None = None
    current: str | None = None
    numpy = False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if _is_section(lines, i):
            section = stripped.rstrip(":").strip().lower()
            numpy = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
            i += 2 if numpy else 1
            current = None
            continue
        m = _SPHINX_PARAM.match(stripped)
        if m:
            current = m.group(1)
            params[current] = m.group(2).strip()
            section = "sphinx"
            i += 1
            continue
        m = _SPHINX_RETURN.match(stripped)
        if m:
            returns = [m.group(1).strip()]
            section, current = "sphinx-returns", None
            i += 1
            continue
        if section in _PARAM_SECTIONS and stripped:
            indent = len(line) - len(line.lstrip())
            if numpy:
                entry = re.match(r"^(\*{0,2}\w+)\s*(?::.*)?$", stripped) if indent == 0 else None
                if entry:
                    current = entry.group(1).lstrip("*")
                    params[current] = ""
                elif current:
                    params[current] = (params[current] + " " + stripped).strip()
            else:
                entry = re.match(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped)
                if entry and (current is None or indent <= _entry_indent(lines, i, section)):
                    current = entry.group(1).lstrip("*")
                    params[current] = entry.group(2).strip()
                elif current:
                    params[current] = (params[current] + " " + stripped).strip()
        elif section in _RETURN_SECTIONS and stripped:
            if numpy and len(line) - len(line.lstrip()) == 0 and not returns:
                pass  # the NumPy type line (``dict`` or ``name : type``)
            else:
                text = stripped
                if not numpy and not returns:
                    m2 = re.match(r"^[\w\[\], .|]+:\s+(.*)$", text)
                    text = m2.group(1) if m2 else text
                returns.append(text)
        elif section in ("sphinx", "sphinx-returns") and stripped and current:
            params[current] = (params[current] + " " + stripped).strip()
        elif section == "sphinx-returns" and stripped:
            returns.append(stripped)
        i += 1
    return " ".join(summary), params, (" ".join(returns) or None)


def _is_section(lines: list[str], i: int) -> bool:
    stripped = lines[i].strip()
    if i + 1 < len(lines) and stripped and set(lines[i + 1].strip()) == {"-"} and len(lines[i + 1].strip()) >= 3:
        return True
    m = _GOOGLE_SECTION.match(stripped)
    if m is None or lines[i] != lines[i].lstrip():
        return False
    return m.group(1).lower() in _PARAM_SECTIONS | _RETURN_SECTIONS | _OTHER_SECTIONS


def _entry_indent(lines: list[str], i: int, section: str | None) -> int:
    """The indent of the first entry of the section that line ``i`` is in."""
    j = i
    while j > 0 and not _is_section(lines, j - 1):
        j -= 1
    for line in lines[j:i + 1]:
        if line.strip():
            return len(line) - len(line.lstrip())
    return 0
