"""Structuring one manifest document: the strict cattrs converter and the checks.

:func:`parse_manifest` turns one YAML/JSON text into a :class:`Manifest`, or
every issue found in it (file, field path, line): unknown fields, wrong
types, bad expressions, unknown error kinds and event types. The converter
and :func:`issues_from` are shared with the tool, pipeline and agent loaders.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Callable, Collection, Container, Iterable, Mapping
from typing import Any, Literal, Union

import attrs
import cattrs
import jmespath
from cattrs.cols import is_mapping, is_sequence, list_structure_factory, mapping_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn

from .._errors import KINDS, ManifestIssue
from .model import SUPPORTED_VERSIONS, EventRule, Manifest, Operator, Provider
from .yaml import Located, expand_env, read_yaml

__all__ = [
    "converter",
    "describe",
    "expr_problem",
    "extending_providers",
    "issues_from",
    "merge_patch",
    "parse_manifest",
    "provider_value",
    "structure_provider",
]

EVENT_TYPES = (
    "text", "tool_call", "usage", "finish", "done", "embedding", "data",
    "reasoning", "server_tool_call", "server_tool_result", "citation",
)
PathT = tuple["str | int", ...]


# -- strict cattrs converter ---------------------------------------------------


def describe(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", bool: "a boolean", type(None): "null"}
    for cls, name in names.items():
        if isinstance(value, cls):
            return name
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _strict(kind: str, ok: Callable[[Any], bool], convert: Callable[[Any], Any]) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        if not ok(value):
            raise TypeError(f"expected {kind}, got {describe(value)}")
        return convert(value)

    return hook


def _is_literal(t: Any) -> bool:
    return typing.get_origin(t) is Literal


def _literal_factory(t: Any) -> Any:
    allowed = typing.get_args(t)

    def hook(value: Any, _type: Any) -> Any:
        if isinstance(value, bool) and "on" in allowed and "off" in allowed:
            value = "on" if value else "off"  # YAML 1.1 reads bare on/off as booleans
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            options = ", ".join(repr(a) for a in allowed)
            raise ValueError(f"expected one of {options}, got {describe(value)}")
        return value

    return hook


def _is_union(t: Any) -> bool:
    origin = typing.get_origin(t)
    return origin is Union or origin is types.UnionType


_NON_TEXT = (int, float, bool)


def _keep_text(value: Any, t: Any, path: tuple[Any, ...], texts: dict[Any, str]) -> Any:
    """``value`` with each plain scalar that YAML read as a number or boolean
    put back to its source text where the field (type ``t``) is a string:
    ``id: 0E0`` is the id ``"0E0"``, not the float 0.0 (yaml.safe_dump writes
    that string unquoted). Other fields keep the parsed value."""
    if t is str or (_is_union(t) and str in typing.get_args(t)
                    and not any(a in _NON_TEXT for a in typing.get_args(t))):
        if not isinstance(value, str) and path in texts:
            return texts[path]
        return value
    if _is_union(t):
        members = [m for m in typing.get_args(t) if m is not type(None)]
        if len(members) != 1:
            return value
        t = members[0]
    origin = typing.get_origin(t) or t
    args = typing.get_args(t)
    if isinstance(value, list) and origin in (list, tuple, typing.Sequence, Iterable) and args:
        return [_keep_text(v, args[0], (*path, i), texts) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if origin in (dict, Mapping) and len(args) == 2:
            return {k: _keep_text(v, args[1], (*path, k), texts) for k, v in value.items()}
        if isinstance(t, type) and attrs.has(t):
            hints = _field_types(t)
            return {k: _keep_text(v, hints[k], (*path, k), texts) if k in hints else v for k, v in value.items()}
    return value


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    if cls not in _FIELD_TYPES:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an unresolvable annotation: keep the parsed values
            hints = {}
        _FIELD_TYPES[cls] = {f.name: hints[f.name] for f in attrs.fields(cls) if f.name in hints}
    return _FIELD_TYPES[cls]


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _strict("a string", lambda v: isinstance(v, str), str))
    conv.register_structure_hook(
        int, _strict("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool), int)
    )
    conv.register_structure_hook(
        float,
        _strict("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), float),
    )
    conv.register_structure_hook(bool, _strict("a boolean", lambda v: isinstance(v, bool), bool))
    conv.register_structure_hook_func(lambda t: t is Any, lambda v, _t: v)  # typing.Any is no class on 3.10

    def list_factory(t: Any, c: cattrs.Converter) -> Any:
        inner = list_structure_factory(t, c)

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {describe(value)}")
            return inner(value, _type)

        return hook

    def map_factory(t: Any, c: cattrs.Converter) -> Any:
        inner = mapping_structure_factory(t, c)

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a mapping, got {describe(value)}")
            return inner(value, _type)

        return hook

    def attrs_factory(t: Any, c: cattrs.Converter) -> Any:
        inner = make_dict_structure_fn(
            t, c, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
        )

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a mapping, got {describe(value)}")
            return inner(value, _type)

        return hook

    def union_factory(t: Any, c: cattrs.Converter) -> Any:
        # Try each member in order; the first that accepts the value wins.
        members = typing.get_args(t)

        def hook(value: Any, _type: Any) -> Any:
            if value is None and type(None) in members:
                return None
            # A list (or mapping) can only be the list (or mapping) member:
            # structure it as that, so an error names the bad item inside.
            shaped = [m for m in members if _same_shape(value, m)]
            if len(shaped) == 1:
                return c.structure(value, shaped[0])
            for member in members:
                if member is type(None):
                    continue
                try:
                    return c.structure(value, member)
                except Exception:
                    continue
            names = " or ".join(_type_label(m) for m in members)
            raise TypeError(f"expected {names}, got {describe(value)}")

        return hook

    conv.register_structure_hook_factory(is_sequence, list_factory)
    conv.register_structure_hook_factory(is_mapping, map_factory)
    conv.register_structure_hook_factory(attrs.has, attrs_factory)
    conv.register_structure_hook_factory(_is_literal, _literal_factory)
    conv.register_structure_hook_factory(
        lambda t: _is_union(t) and sum(m is not type(None) for m in typing.get_args(t)) > 1,
        union_factory,
    )
    return conv


def _same_shape(value: Any, t: Any) -> bool:
    origin = typing.get_origin(t)
    if isinstance(value, list):
        return origin is list
    if isinstance(value, dict):
        return origin is dict or attrs.has(t)
    return False


def _type_label(t: Any) -> str:
    if t is type(None):
        return "null"
    origin = typing.get_origin(t)
    if origin is not None:
        return {list: "a list", dict: "a mapping"}.get(origin, str(t))
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}.get(
        t, getattr(t, "__name__", str(t))
    )


_converter: cattrs.Converter | None = None


def converter() -> cattrs.Converter:
    """The strict converter manifests are structured with (built once)."""
    global _converter
    if _converter is None:
        _converter = _make_converter()
    return _converter


#: fields as other tools (and the seed specs) spell them -> modelwire's field
_SEED_SPELLINGS = {"protocol": "parser", "format": "parser", "stream_format": "parser", "url": "base_url"}


def issues_from(exc: BaseException, path: PathT, doc: Located) -> list[ManifestIssue]:
    """Walk a cattrs detailed-validation error into issues with paths."""
    out: list[ManifestIssue] = []
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            step: str | int = note.name if isinstance(exc, ClassValidationError) else note.index  # type: ignore[union-attr,assignment]
            child = (*path, step)
            if isinstance(sub, KeyError):
                out.append(doc.issue(child, "required field is missing"))
            else:
                out.extend(issues_from(sub, child, doc))
        for sub in without:
            out.extend(issues_from(sub, path, doc))
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)] if exc.cl is not None else []
        for key in sorted(exc.extra_fields):
            msg = f"unknown field {key!r}"
            close = difflib.get_close_matches(key, known, n=1)
            if _SEED_SPELLINGS.get(key) in known:
                msg += f" (modelwire spells it {_SEED_SPELLINGS[key]!r})"
            elif close:
                msg += f" (did you mean {close[0]!r}?)"
            else:
                msg += f"; allowed: {', '.join(known)}"
            out.append(doc.issue((*path, key), msg))
    else:
        out.append(doc.issue(path, str(exc) or type(exc).__name__))
    return out


# -- one document ---------------------------------------------------------------


def parse_manifest(
    text: str | bytes,
    file: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    allow_env: Collection[str] | None = None,
    remote: bool = False,
    partial: bool = False,
) -> tuple[Manifest | None, Located | None, list[ManifestIssue]]:
    """Text -> Manifest, or the list of every issue found in it.

    ``partial=True``: with issues, still return what remains without the bad
    fields (or None), so a checker reports later stages in the same run.

    ``remote`` (a document fetched from a URL or git): ``${VAR}`` may name only
    the variables in ``allow_env``, and until the document shows itself a
    manifest (a mapping with a supported ``version``) no issue quotes its
    content, so pointing a loader at an internal page leaks nothing of it.
    """
    doc, issues = read_yaml(text, file)
    if remote:
        return _parse_remote(doc, issues, file, env, allow_env)
    if doc is None:
        return None, None, issues
    if not isinstance(doc.value, dict):
        return None, doc, [doc.issue((), f"a manifest must be a mapping, got {describe(doc.value)}")]
    issues = []
    if "version" in doc.value:
        version = doc.value["version"]
        if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
            supported = ", ".join(map(str, SUPPORTED_VERSIONS))
            return None, doc, [
                doc.issue(("version",), f"unsupported manifest version {version!r}; this modelwire reads {supported}")
            ]
    else:
        # Report it, and check the rest as the current version so every error shows at once.
        issues.append(doc.issue((), "field 'version' is required (use `version: 1`)"))
    manifest, doc, issues = _structure(doc, issues, env, allow_env)
    return (manifest if partial or not issues else None), doc, issues


def _parse_remote(
    doc: Located | None,
    issues: list[ManifestIssue],
    file: str | None,
    env: Mapping[str, str] | None,
    allow_env: Collection[str] | None,
) -> tuple[Manifest | None, Located | None, list[ManifestIssue]]:
    supported = ", ".join(map(str, SUPPORTED_VERSIONS))
    not_manifest = (
        f"not a modelwire manifest (expected a mapping with `version: {supported}`"
        f" and only the fields {', '.join(a.name for a in attrs.fields(Manifest))});"
        " its content is not shown for a source fetched from a URL or git"
    )
    if doc is None:
        # YAML syntax messages quote the text; keep only where it failed.
        return None, None, [
            attrs.evolve(i, message=not_manifest) if i.message.startswith("invalid YAML") else i
            for i in issues
        ]
    # Shaped like a manifest: a supported version and only top-level fields a
    # manifest has. Anything else (an internal JSON page) is refused unquoted.
    fields = {a.name for a in attrs.fields(Manifest)}
    value = doc.value if isinstance(doc.value, dict) else {}
    version = value.get("version")
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool) or not set(value) <= fields:
        return None, doc, [ManifestIssue(not_manifest, file=file)]
    allowed = frozenset(allow_env or ())
    manifest, _doc, issues = _structure(doc, [], env, allowed)
    if manifest is not None:
        # The key an auth injector reads at call time is an environment read too.
        for name, provider in manifest.providers.items():
            if provider.auth.env is not None and provider.auth.env not in allowed:
                issues.append(
                    doc.issue(
                        ("providers", name, "auth", "env"),
                        f"environment variable {provider.auth.env} is not in the allow-list for"
                        " manifests from a URL or git (allow_env=... or MODELWIRE_REMOTE_ENV)",
                    )
                )
    return (None if issues else manifest), doc, issues


def _structure(
    doc: Located,
    issues: list[ManifestIssue],
    env: Mapping[str, str] | None,
    allow_env: Container[str] | None,
) -> tuple[Manifest | None, Located | None, list[ManifestIssue]]:
    env_issues = expand_env(doc, os.environ if env is None else env, allowed=allow_env)
    if doc.value is None:  # expansion refused the document
        return None, doc, issues + env_issues
    issues.extend(env_issues)
    value = doc.value
    if "version" not in value:
        value = {"version": SUPPORTED_VERSIONS[-1], **value}
    pending = extending_providers(doc)
    if pending:
        # Structured by the catalog once the provider they extend is known.
        value = {**value, "providers": {k: v for k, v in value["providers"].items() if k not in pending}}
        for name, raw in pending.items():
            if not isinstance(raw["extends"], str) or not raw["extends"]:
                issues.append(
                    doc.issue(("providers", name, "extends"), f"expected a provider name, got {describe(raw['extends'])}")
                )
    found: list[ManifestIssue] = []
    manifest: Manifest | None = None
    try:
        manifest = converter().structure(_keep_text(value, Manifest, (), doc.texts), Manifest)
    except Exception as exc:
        found.extend(issues_from(exc, (), doc))
        # Drop the bad fields and check the rest too (expressions, references,
        # plugin names), so one run reports every mistake; the result is partial.
        manifest = _recover(value, exc, doc)
    if manifest is not None:
        found.extend(_check_manifest(manifest, doc))
    # A field left unexpanded (``${UNSET}``) has its error already.
    unexpanded = {i.path for i in env_issues}
    issues.extend(i for i in found if i.path not in unexpanded)
    issues.sort(key=lambda i: i.line or 0)  # in file order (stable)
    return manifest, doc, issues


def _bad_paths(exc: BaseException, path: PathT) -> list[PathT]:
    """The paths :func:`issues_from` reports, as tuples; a missing field names its parent."""
    out: list[PathT] = []
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            step: str | int = note.name if isinstance(exc, ClassValidationError) else note.index  # type: ignore[union-attr,assignment]
            out.extend([path] if isinstance(sub, KeyError) else _bad_paths(sub, (*path, step)))
        for sub in without:
            out.extend(_bad_paths(sub, path))
    elif isinstance(exc, ForbiddenExtraKeysError):
        out.extend((*path, key) for key in exc.extra_fields)
    else:
        out.append(path)
    return out


def _recover(value: Any, exc: BaseException, doc: Located, rounds: int = 5) -> Manifest | None:
    """The manifest without the fields that failed to structure (None if nothing is left)."""
    import copy

    pruned = copy.deepcopy(value)
    for _ in range(rounds):
        for path in _bad_paths(exc, ()):
            if not path:
                return None
            parent: Any = pruned
            for step in path[:-1]:
                try:
                    parent = parent[step]
                except (KeyError, IndexError, TypeError):
                    parent = None
                    break
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
                parent[path[-1]] = None  # keep the indexes of the others
        try:
            return converter().structure(_keep_text(pruned, Manifest, (), {}), Manifest)
        except Exception as again:
            exc = again
    return None


def _check_expr(expr: Any, path: PathT, doc: Located, out: list[ManifestIssue]) -> None:
    if expr is None:
        return
    if not isinstance(expr, str):
        out.append(doc.issue(path, f"expected an expression string, got {describe(expr)}"))
        return
    try:
        jmespath.compile(expr)
    except jmespath.exceptions.JMESPathError as exc:
        out.append(doc.issue(path, f"invalid expression {expr[:80]!r}: {expr_problem(exc)}"))
    except RecursionError:
        out.append(doc.issue(path, f"expression {expr[:40]!r}... is nested too deeply"))


def expr_problem(exc: Exception) -> str:
    """One line for a JMESPath syntax error (its own text spans three)."""
    errors = jmespath.exceptions
    if isinstance(exc, errors.IncompleteExpressionError):
        what = "incomplete expression"
    elif isinstance(exc, errors.LexerError):
        what = str(exc.message)
    elif isinstance(exc, errors.ParseError):
        what = f"unexpected {exc.token_value!r}"
    else:
        return str(exc).splitlines()[0]
    pos = getattr(exc, "lex_position", None)
    return what if pos is None else f"{what} at character {pos}"


def _check_kind(kind: str, path: PathT, doc: Located, out: list[ManifestIssue]) -> None:
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, list(KINDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(KINDS)}"
        out.append(doc.issue(path, f"unknown error kind {kind!r}{hint}"))


def _check_rule(rule: EventRule, base: PathT, doc: Located, out: list[ManifestIssue]) -> None:
    for name in ("when", "each", "stop_when"):
        _check_expr(getattr(rule, name), (*base, name), doc, out)
    if rule.emit is not None:
        kind = rule.emit.get("type")
        if kind not in EVENT_TYPES:
            out.append(
                doc.issue(
                    (*base, "emit", "type"),
                    f"emit needs a type, one of {', '.join(EVENT_TYPES)}; got {describe(kind)}",
                )
            )
        for key, value in rule.emit.items():
            if key != "type":
                _check_expr(value, (*base, "emit", key), doc, out)
    if rule.error is not None:
        _check_kind(rule.error.kind, (*base, "error", "kind"), doc, out)
        for key, kind in rule.error.kinds.items():
            _check_kind(kind, (*base, "error", "kinds", key), doc, out)
        _check_expr(rule.error.code, (*base, "error", "code"), doc, out)
        _check_expr(rule.error.message, (*base, "error", "message"), doc, out)
    if rule.remember is not None:
        _check_expr(rule.remember.key, (*base, "remember", "key"), doc, out)
        _check_expr(rule.remember.value, (*base, "remember", "value"), doc, out)
    if rule.recall is not None:
        _check_expr(rule.recall.key, (*base, "recall", "key"), doc, out)
        if not rule.recall.into.isidentifier():
            out.append(doc.issue((*base, "recall", "into"), f"expected a field name, got {rule.recall.into!r}"))
    if rule.emit is None and rule.error is None and rule.remember is None and not (rule.stop or rule.stop_when):
        out.append(doc.issue(base, "a rule needs `emit`, `error`, `remember`, `stop` or `stop_when`"))


def _check_operator(op: Operator, base: PathT, doc: Located, out: list[ManifestIssue]) -> None:
    _check_expr(op.request, (*base, "request"), doc, out)
    _check_expr(op.request_headers, (*base, "request_headers"), doc, out)
    _check_expr(op.request_query, (*base, "request_query"), doc, out)
    for i, rule in enumerate(op.events):
        _check_rule(rule, (*base, "events", i), doc, out)
    for i, err in enumerate(op.errors):
        p = (*base, "errors", i)
        _check_kind(err.kind, (*p, "kind"), doc, out)
        for name in ("when", "code", "message"):
            _check_expr(getattr(err, name), (*p, name), doc, out)
        if isinstance(err.status, str) and not (
            len(err.status) == 3 and err.status[0] in "12345" and err.status[1:] == "xx"
        ):
            out.append(doc.issue((*p, "status"), f"status class must look like 4xx or 5xx, got {err.status!r}"))


def _check_provider(pname: str, provider: Provider, doc: Located, out: list[ManifestIssue]) -> None:
    if not provider.base_url.startswith(("http://", "https://")):
        out.append(doc.issue(("providers", pname, "base_url"), f"expected an http(s) URL, got {provider.base_url!r}"))
    for oname, op in provider.operators.items():
        _check_operator(op, ("providers", pname, "operators", oname), doc, out)


def _check_manifest(m: Manifest, doc: Located) -> list[ManifestIssue]:
    out: list[ManifestIssue] = []
    for pname, provider in m.providers.items():
        _check_provider(pname, provider, doc, out)
    return out


# -- providers that extend another ---------------------------------------------


def extending_providers(doc: Located) -> dict[str, dict[str, Any]]:
    """The raw providers of a document that name another in ``extends``."""
    value = doc.value if isinstance(doc.value, dict) else {}
    table = value.get("providers")
    if not isinstance(table, dict):
        return {}
    return {name: raw for name, raw in table.items() if isinstance(raw, dict) and "extends" in raw}


def provider_value(doc: Located, name: str) -> Any:
    """A provider's raw mapping as written (env expanded, number-like strings kept as text)."""
    return _keep_text(doc.value["providers"][name], Provider, ("providers", name), doc.texts)


def merge_patch(base: Any, patch: Any) -> Any:
    """``patch`` applied to ``base`` as a JSON Merge Patch (RFC 7386).

    Mappings merge key by key, a ``null`` removes the key, anything else
    (lists included) replaces: one rule a reader can apply by eye.
    """
    if not isinstance(patch, dict):
        return patch
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def structure_provider(value: Any, name: str, doc: Located) -> tuple[Provider | None, list[ManifestIssue]]:
    """A merged provider mapping -> Provider, or its issues (paths under ``providers.NAME``)."""
    out: list[ManifestIssue] = []
    try:
        provider = converter().structure(value, Provider)
    except Exception as exc:
        return None, issues_from(exc, ("providers", name), doc)
    _check_provider(name, provider, doc, out)
    return (None if out else provider), out
