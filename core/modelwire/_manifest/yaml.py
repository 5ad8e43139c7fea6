"""Safe YAML reading that remembers where every value came from.

PyYAML's safe loader builds plain Python values but forgets line numbers, and
it happily expands an alias bomb. Here the document is composed into nodes,
then walked by hand: each mapping key and list item records its line, and the
walk counts values so a billion-laughs document stops early with an error.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from typing import Any

import yaml

from .._errors import ManifestIssue

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_EXPANDED_CHARS",
    "MAX_NODES",
    "Located",
    "expand_env",
    "format_path",
    "read_yaml",
]

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000
#: Characters ``${VAR}`` expansion may produce in one document, summed over
#: every string that holds a reference: an anchor reused many times is
#: expanded once per use, so the output can dwarf the source.
MAX_EXPANDED_CHARS = 16 * 1024 * 1024
MAX_DEPTH = 64

Path = tuple["str | int", ...]

_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """The safe loader, reading ``1e-05`` and ``2E6`` as numbers as JSON and YAML 1.2 do.

    YAML 1.1 floats need a dot and a signed exponent, so a JSON manifest's
    ``1e-05`` would otherwise arrive as a string.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def format_path(path: Path) -> str:
    """``("models", "fast-1", "limits", "rpm")`` -> ``models.fast-1.limits.rpm``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Located:
    """A document's plain value plus the line of each path in it."""

    def __init__(
        self, value: Any, lines: dict[Path, int], file: str | None, texts: dict[Path, str] | None = None
    ) -> None:
        self.value = value
        self.lines = lines
        self.file = file
        #: The source text of each plain scalar that YAML read as a number or
        #: boolean (``0E0``, ``12``, ``yes``): a string field keeps what was written.
        self.texts: dict[Path, str] = texts if texts is not None else {}

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
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
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
    try:
        loader = _Loader(text)
    except UnicodeEncodeError as exc:  # a str with a lone surrogate
        return None, [
            ManifestIssue(f"not valid Unicode: {exc.reason} at character {exc.start}", file=file)
        ]
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            # JSON writes characters beyond U+FFFF as a surrogate pair
            # (``"\ud83d\ude00"``), which YAML's escapes do not accept.
            joined = _SURROGATE_PAIR.sub(_join_pair, text)
            if "escape" not in str(exc.problem) or joined == text:
                raise
            loader = _Loader(joined)
            node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_issue(exc, file)]
    except yaml.YAMLError as exc:
        return None, [ManifestIssue(f"invalid YAML: {exc}", file=file)]
    except RecursionError:  # the pure-Python composer on very deep nesting
        return None, [
            ManifestIssue(f"document nests deeper than {MAX_DEPTH} levels; refusing it", file=file)
        ]
    if node is None:
        return None, [ManifestIssue("the document is empty", file=file)]
    lines: dict[Path, int] = {}
    budget = _Budget()
    try:
        value = _walk(loader, node, (), lines, budget, 0)
    except _TooBig as exc:
        return None, [ManifestIssue(str(exc), file=file, line=node.start_mark.line + 1)]
    except RecursionError:  # merge keys chained through thousands of anchors
        return None, [
            ManifestIssue(
                "document chains merge keys too deeply; refusing it",
                file=file,
                line=node.start_mark.line + 1,
            )
        ]
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_issue(exc, file)]
    lines.setdefault((), node.start_mark.line + 1)
    return Located(value, lines, file, budget.texts), []


_SURROGATE_PAIR = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE
)


def _join_pair(m: re.Match[str]) -> str:
    high, low = int(m.group(2), 16), int(m.group(3), 16)
    return f"{m.group(1)}\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


def _yaml_issue(exc: yaml.MarkedYAMLError, file: str | None) -> ManifestIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    parts = [p for p in (exc.context, exc.problem) if p]
    return ManifestIssue(f"invalid YAML: {', '.join(parts) or 'syntax error'}", file=file, line=line)


_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _merged_size(node: Any, memo: dict[int, int]) -> int:
    """How many keys a mapping has once its ``<<`` merge keys are flattened.

    An upper bound, computed once per node: older PyYAML releases copy merged
    keys without removing repeats, so ``<<: [*a, *a]`` nested a few dozen
    times is a bomb that explodes before the walk below can count it.
    """
    key = id(node)
    if key not in memo:
        memo[key] = 0  # an anchor merged into itself counts as empty
        total = 0
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                total += 1
                continue
            subs = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            total += sum(_merged_size(s, memo) for s in subs if isinstance(s, yaml.MappingNode))
        memo[key] = total
    return memo[key]


class _Budget:
    """What one walk has left to spend, and what it learned about shared nodes."""

    def __init__(self) -> None:
        self.left = MAX_NODES
        self.merged: dict[int, int] = {}  # id(mapping node) -> keys once flattened
        self.explicit: dict[int, int] = {}  # id(mapping node) -> keys written in it
        self.texts: dict[Path, str] = {}  # path -> source of a plain number or boolean


def _walk(loader: Any, node: Any, path: Path, lines: dict[Path, int], budget: _Budget, depth: int) -> Any:
    budget.left -= 1
    if budget.left < 0:
        raise _TooBig(
            f"document expands to more than {MAX_NODES} values (an alias bomb?); refusing it"
        )
    if depth > MAX_DEPTH:
        raise _TooBig(f"document nests deeper than {MAX_DEPTH} levels; refusing it")
    lines.setdefault(path, node.start_mark.line + 1)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        # Scalars with unknown tags fail in construct_object; collections
        # would silently lose theirs (``!!set``, ``!!python/object``).
        raise yaml.constructor.ConstructorError(
            None, None, f"unsupported tag {node.tag!r}", node.start_mark
        )
    if isinstance(node, yaml.MappingNode):
        if _merged_size(node, budget.merged) > budget.left:
            raise _TooBig(
                f"document expands to more than {MAX_NODES} values (a merge-key bomb?); refusing it"
            )
        if id(node) not in budget.explicit:  # an alias revisits a node already flattened
            budget.explicit[id(node)] = sum(1 for k, _ in node.value if k.tag != _MERGE_TAG)
        loader.flatten_mapping(node)
        first_explicit = len(node.value) - budget.explicit[id(node)]  # merged keys come first
        out: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for index, (key_node, value_node) in enumerate(node.value):
            key = _construct(loader, key_node)
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            if not isinstance(key, str):
                key = key_node.value  # as written: `null`, `true`, `1.0`, not `None`, `True`
            line = key_node.start_mark.line + 1
            if index >= first_explicit:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first on line {seen[key]})",
                        key_node.start_mark,
                    )
                seen[key] = line
            child = (*path, key)
            lines[child] = line
            out[key] = _walk(loader, value_node, child, lines, budget, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _walk(loader, item, (*path, i), lines, budget, depth + 1)
            for i, item in enumerate(node.value)
        ]
    value = _construct(loader, node)
    if isinstance(value, (int, float)):  # bool is an int; quoted scalars are strings
        budget.texts[path] = node.value
    return value


def _construct(loader: Any, node: Any) -> Any:
    """A scalar's value; a value Python refuses (a 5,000-digit integer, ``2001-13-45``, an empty ``!!int``)
    is a YAML error at its line."""
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, IndexError, TypeError) as exc:
        if isinstance(exc, yaml.YAMLError):
            raise
        what = "integer" if node.tag == "tag:yaml.org,2002:int" else "value"
        reason = str(exc).split(";")[0]
        raise yaml.constructor.ConstructorError(
            None, None, f"cannot read this {what}: {reason}", node.start_mark
        ) from None


# -- ${VAR} expansion --------------------------------------------------------

_VAR_START = re.compile(r"\$\$|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Unset(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Denied(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _TooLong(Exception):
    pass


class _Expansion:
    """What one document's expansion may read (``allowed``) and still produce (``left``)."""

    def __init__(self, allowed: Container[str] | None, limit: int) -> None:
        self.allowed = allowed
        self.limit = limit
        self.left = limit

    def spend(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise _TooLong


def _expand(
    text: str,
    env: Mapping[str, str],
    pos: int = 0,
    nested: bool = False,
    strict: bool = True,
    ctx: _Expansion | None = None,
) -> tuple[str, int]:
    """Expand from ``pos``; when ``nested``, stop at the ``}`` closing a default.

    ``strict=False`` parses a default that is not used: an unset variable in
    it is no error (as in a shell), but bad syntax still is. ``ctx`` limits
    which names may be read (even in an unused default) and how many
    characters the expansion may produce.
    """
    ctx = ctx or _Expansion(None, MAX_EXPANDED_CHARS)
    out: list[str] = []
    n = len(text)
    while pos < n:
        if nested and text[pos] == "}":
            return "".join(out), pos
        if text.startswith("$$", pos):
            out.append("$")
            ctx.spend(1)
            pos += 2
            continue
        if text.startswith("${", pos):
            m = _NAME.match(text, pos + 2)
            if m is None:
                raise ValueError(
                    f"bad variable reference at character {pos}: {text[pos:pos + 12]!r}"
                    " (write $$ for a literal $)"
                )
            name, pos = m.group(), m.end()
            if ctx.allowed is not None and name not in ctx.allowed:
                raise _Denied(name)
            if text.startswith("}", pos):
                pos += 1
                if name not in env:
                    if strict:
                        raise _Unset(name)
                    continue
                ctx.spend(len(env[name]))
                out.append(env[name])
            elif text.startswith(":-", pos):
                value = env.get(name)
                default, pos = _expand(
                    text, env, pos + 2, nested=True, strict=strict and not value, ctx=ctx
                )
                if pos >= n:
                    raise ValueError(f"unterminated ${{{name}:-...}}")
                pos += 1
                if value:
                    ctx.spend(len(value))
                out.append(value if value else default)
            else:
                raise ValueError(
                    f"bad variable reference ${{{name}...: expected '}}' or ':-'"
                    " (write $$ for a literal $)"
                )
            continue
        nxt = min(
            (i for i in (text.find("$", pos), text.find("}", pos) if nested else -1) if i >= 0),
            default=n,
        )
        if nxt == pos:  # a lone '$'
            out.append("$")
            ctx.spend(1)
            pos += 1
        else:
            out.append(text[pos:nxt])
            ctx.spend(nxt - pos)
            pos = nxt
    return "".join(out), pos


def expand_env(
    located: Located,
    env: Mapping[str, str],
    *,
    allowed: Container[str] | None = None,
    limit: int | None = None,
) -> list[ManifestIssue]:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string, in place.

    Defaults may nest (``${A:-${B:-x}}``); ``$$`` is a literal ``$``. An unset
    ``${VAR}`` is reported with the variable and the field it sits in.

    ``allowed`` (for a manifest from a URL or git) names the only variables
    the document may reference; any other is an issue, even with a default.
    The strings holding a reference may expand to ``limit`` characters in
    all (default :data:`MAX_EXPANDED_CHARS`), counted per use of an anchor; beyond that the document is refused
    with one issue and left unexpanded.
    """
    issues: list[ManifestIssue] = []
    ctx = _Expansion(allowed, MAX_EXPANDED_CHARS if limit is None else limit)

    def visit(value: Any, path: Path) -> Any:
        if isinstance(value, str):
            if "$" not in value:
                return value
            try:
                return _expand(value, env, ctx=ctx)[0]
            except _Unset as exc:
                issues.append(
                    located.issue(path, f"environment variable {exc.name} is not set")
                )
            except _Denied as exc:
                issues.append(
                    located.issue(
                        path,
                        f"environment variable {exc.name} is not in the allow-list for manifests"
                        " from a URL or git (allow_env=... or MODELWIRE_REMOTE_ENV)",
                    )
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

    try:
        located.value = visit(located.value, ())
    except _TooLong:
        located.value = None  # half expanded: nothing to structure
        return [
            located.issue(
                (),
                f"${{VAR}} expansion produces more than {ctx.limit} characters"
                " (an anchor with variables reused many times?); refusing the document",
            )
        ]
    return issues
