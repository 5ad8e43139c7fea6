"""Safe YAML reading that remembers where every value came from.

PyYAML's safe loader builds plain Python values but forgets line numbers, and
it happily expands an alias bomb. Here the document is composed into nodes,
then walked by hand: each mapping key and list item records its line, and the
walk counts values so a billion-laughs document stops early with an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from ._errors import ManifestIssue

__all__ = ["MAX_DOCUMENT_BYTES", "MAX_NODES", "Located", "expand_env", "format_path", "read_yaml"]

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

Path = tuple["str | int", ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def format_path(path: Path) -> str:
    """``("models", "gpt-4.1", "limits", "rpm")`` -> ``models.gpt-4.1.limits.rpm``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Located:
    """A document's plain value plus the line of each path in it."""

    def __init__(self, value: Any, lines: dict[Path, int], file: str | None) -> None:
        self.value = value
        self.lines = lines
        self.file = file

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def issue(self, path: Path, message: str) -> ManifestIssue:
        return ManifestIssue(
            message=message,
            file=self.file,
            path=format_path(path) or None,
            line=self.line_of(path),
        )


class _TooBig(Exception):
    pass


def read_yaml(text: str | bytes, file: str | None = None) -> tuple[Located | None, list[ManifestIssue]]:
    """Parse one YAML (or JSON) document safely, with positions."""
    size = len(text)
    if size > MAX_DOCUMENT_BYTES:
        return None, [
            ManifestIssue(
                f"document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}", file=file
            )
        ]
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, [
                ManifestIssue(f"not UTF-8: {exc.reason} at byte {exc.start}", file=file)
            ]
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [ManifestIssue(f"invalid YAML: {problem}", file=file, line=line)]
    except yaml.YAMLError as exc:
        return None, [ManifestIssue(f"invalid YAML: {exc}", file=file)]
    if node is None:
        return None, [ManifestIssue("the document is empty", file=file)]
    lines: dict[Path, int] = {}
    budget = [MAX_NODES]
    try:
        value = _walk(loader, node, (), lines, budget, 0)
    except _TooBig as exc:
        return None, [ManifestIssue(str(exc), file=file, line=node.start_mark.line + 1)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        return None, [
            ManifestIssue(
                f"invalid YAML: {exc.problem}", file=file, line=mark.line + 1 if mark else None
            )
        ]
    lines.setdefault((), node.start_mark.line + 1)
    return Located(value, lines, file), []


def _walk(loader: Any, node: Any, path: Path, lines: dict[Path, int], budget: list[int], depth: int) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(
            f"document expands to more than {MAX_NODES} values (an alias bomb?); refusing it"
        )
    if depth > MAX_DEPTH:
        raise _TooBig(f"document nests deeper than {MAX_DEPTH} levels; refusing it")
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            if not isinstance(key, str):
                key = str(key)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _walk(loader, value_node, child, lines, budget, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _walk(loader, item, (*path, i), lines, budget, depth + 1)
            for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


# -- ${VAR} expansion --------------------------------------------------------

_VAR_START = re.compile(r"\$\$|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Unset(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _expand(text: str, env: Mapping[str, str], pos: int = 0, nested: bool = False) -> tuple[str, int]:
    """Expand from ``pos``; when ``nested``, stop at the ``}`` closing a default."""
    out: list[str] = []
    n = len(text)
    while pos < n:
        if nested and text[pos] == "}":
            return "".join(out), pos
        if text.startswith("$$", pos):
            out.append("$")
            pos += 2
            continue
        if text.startswith("${", pos):
            m = _NAME.match(text, pos + 2)
            if m is None:
                raise ValueError(f"bad variable reference at character {pos}: {text[pos:pos + 12]!r}")
            name, pos = m.group(), m.end()
            if text.startswith("}", pos):
                pos += 1
                if name not in env:
                    raise _Unset(name)
                out.append(env[name])
            elif text.startswith(":-", pos):
                default, pos = _expand(text, env, pos + 2, nested=True)
                if pos >= n:
                    raise ValueError(f"unterminated ${{{name}:-...}}")
                pos += 1
                value = env.get(name)
                out.append(value if value else default)
            else:
                raise ValueError(f"bad variable reference ${{{name}...: expected '}}' or ':-'")
            continue
        nxt = min(
            (i for i in (text.find("$", pos), text.find("}", pos) if nested else -1) if i >= 0),
            default=n,
        )
        if nxt == pos:  # a lone '$'
            out.append("$")
            pos += 1
        else:
            out.append(text[pos:nxt])
            pos = nxt
    if nested:
        return "".join(out), pos
    return "".join(out), pos


def expand_env(located: Located, env: Mapping[str, str]) -> list[ManifestIssue]:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string, in place.

    Defaults may nest (``${A:-${B:-x}}``); ``$$`` is a literal ``$``. An unset
    ``${VAR}`` is reported with the variable and the field it sits in.
    """
    issues: list[ManifestIssue] = []

    def visit(value: Any, path: Path) -> Any:
        if isinstance(value, str):
            if "$" not in value:
                return value
            try:
                return _expand(value, env)[0]
            except _Unset as exc:
                issues.append(
                    located.issue(path, f"environment variable {exc.name} is not set")
                )
            except ValueError as exc:
                issues.append(located.issue(path, str(exc)))
            return value
        if isinstance(value, dict):
            for key, item in value.items():
                value[key] = visit(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                value[i] = visit(item, (*path, i))
        return value

    located.value = visit(located.value, ())
    return issues
