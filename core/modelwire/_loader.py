"""Loading manifests: sources, YAML, ``${VAR}``, cattrs structuring, checks.

Every problem becomes a :class:`ManifestIssue` naming the file, the field
path and the line; all issues of a load are collected and raised together as
one :class:`ManifestError`, so a user fixes a manifest in one pass.

Sources: a file, a directory (its ``*.yaml``, ``*.yml`` and ``*.json``,
merged), an ``http(s)://`` URL, ``git+URL@REF#PATH`` (fetched with the git
CLI into a cache), and ``builtin:NAME`` for the manifests shipped with
modelwire.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import subprocess
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

import attrs
import cattrs
import jmespath
from cattrs.cols import is_mapping, is_sequence, list_structure_factory, mapping_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn

from ._errors import KINDS, ManifestError, ManifestIssue, ModelError, NotFoundError, PluginError
from ._manifest import (
    SUPPORTED_VERSIONS,
    EventRule,
    Limiter,
    Manifest,
    Model,
    Operator,
    Protocol,
    Provider,
)
from ._yaml import Located, expand_env, format_path, read_yaml

__all__ = [
    "Catalog",
    "builtin_names",
    "check_plugin_names",
    "load_manifests",
    "load_source",
    "parse_manifest",
    "plugin_name_errors",
]

EVENT_TYPES = ("text", "tool_call", "usage", "finish", "done", "embedding")
SUFFIXES = (".yaml", ".yml", ".json")
PathT = tuple["str | int", ...]


# -- strict cattrs converter ---------------------------------------------------


def _describe(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", bool: "a boolean", type(None): "null"}
    for cls, name in names.items():
        if isinstance(value, cls):
            return name
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _strict(kind: str, ok: Callable[[Any], bool], convert: Callable[[Any], Any]) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        if not ok(value):
            raise TypeError(f"expected {kind}, got {_describe(value)}")
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
            raise ValueError(f"expected one of {options}, got {_describe(value)}")
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
                raise TypeError(f"expected a list, got {_describe(value)}")
            return inner(value, _type)

        return hook

    def map_factory(t: Any, c: cattrs.Converter) -> Any:
        inner = mapping_structure_factory(t, c)

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a mapping, got {_describe(value)}")
            return inner(value, _type)

        return hook

    def attrs_factory(t: Any, c: cattrs.Converter) -> Any:
        inner = make_dict_structure_fn(
            t, c, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
        )

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a mapping, got {_describe(value)}")
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
            raise TypeError(f"expected {names}, got {_describe(value)}")

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


def _issues_from(exc: BaseException, path: PathT, doc: Located) -> list[ManifestIssue]:
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
                out.extend(_issues_from(sub, child, doc))
        for sub in without:
            out.extend(_issues_from(sub, path, doc))
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)] if exc.cl is not None else []
        for key in sorted(exc.extra_fields):
            msg = f"unknown field {key!r}"
            close = difflib.get_close_matches(key, known, n=1)
            if close:
                msg += f" (did you mean {close[0]!r}?)"
            else:
                msg += f"; allowed: {', '.join(known)}"
            out.append(doc.issue((*path, key), msg))
    else:
        out.append(doc.issue(path, str(exc) or type(exc).__name__))
    return out


# -- one document ---------------------------------------------------------------


def parse_manifest(
    text: str | bytes, file: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[Manifest | None, Located | None, list[ManifestIssue]]:
    """Text -> Manifest, or the list of every issue found in it."""
    doc, issues = read_yaml(text, file)
    if doc is None:
        return None, None, issues
    if not isinstance(doc.value, dict):
        return None, doc, [doc.issue((), f"a manifest must be a mapping, got {_describe(doc.value)}")]
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
    env_issues = expand_env(doc, os.environ if env is None else env)
    issues.extend(env_issues)
    value = doc.value
    if "version" not in value:
        value = {"version": SUPPORTED_VERSIONS[-1], **value}
    found: list[ManifestIssue] = []
    manifest: Manifest | None = None
    try:
        manifest = converter().structure(_keep_text(value, Manifest, (), doc.texts), Manifest)
    except Exception as exc:
        found.extend(_issues_from(exc, (), doc))
    else:
        found.extend(_check_manifest(manifest, doc))
    # A field left unexpanded (``${UNSET}``) has its error already.
    unexpanded = {i.path for i in env_issues}
    issues.extend(i for i in found if i.path not in unexpanded)
    issues.sort(key=lambda i: i.line or 0)  # in file order (stable)
    return (None if issues else manifest), doc, issues


def _check_expr(expr: Any, path: PathT, doc: Located, out: list[ManifestIssue]) -> None:
    if expr is None:
        return
    if not isinstance(expr, str):
        out.append(doc.issue(path, f"expected an expression string, got {_describe(expr)}"))
        return
    try:
        jmespath.compile(expr)
    except jmespath.exceptions.JMESPathError as exc:
        out.append(doc.issue(path, f"invalid expression {expr!r}: {_expr_problem(exc)}"))


def _expr_problem(exc: Exception) -> str:
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
                    f"emit needs a type, one of {', '.join(EVENT_TYPES)}; got {_describe(kind)}",
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
    if rule.emit is None and rule.error is None and not (rule.stop or rule.stop_when):
        out.append(doc.issue(base, "a rule needs `emit`, `error`, `stop` or `stop_when`"))


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


def _check_manifest(m: Manifest, doc: Located) -> list[ManifestIssue]:
    out: list[ManifestIssue] = []
    for pname, provider in m.providers.items():
        if not provider.base_url.startswith(("http://", "https://")):
            out.append(
                doc.issue(("providers", pname, "base_url"), f"expected an http(s) URL, got {provider.base_url!r}")
            )
        for oname, op in provider.operators.items():
            _check_operator(op, ("providers", pname, "operators", oname), doc, out)
    return out


# -- sources -------------------------------------------------------------------


def _builtin_dir() -> Path:
    here = Path(__file__).parent / "manifests"
    if here.is_dir():
        return here
    # A source checkout (editable install): manifests/ sits at the repo root.
    return Path(__file__).resolve().parents[2] / "manifests"


def builtin_names() -> list[str]:
    """Names accepted by ``builtin:NAME``."""
    folder = _builtin_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SUFFIXES)


def _cache_dir() -> Path:
    root = os.environ.get("MODELWIRE_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modelwire"


def _split_git(source: str) -> tuple[str, str, str]:
    """``git+URL@REF#PATH`` -> (URL, REF, PATH); REF defaults to HEAD."""
    rest = source[len("git+") :]
    rest, _, subpath = rest.partition("#")
    url, ref = rest, "HEAD"
    head, sep, tail = rest.rpartition("@")
    # The '@' starts a ref only after the repository path has begun; in
    # ssh://git@host/repo or git@host:repo it is the user part of the URL.
    if sep and "/" in head.split("://", 1)[-1]:
        url, ref = head, tail
    return url, ref or "HEAD", subpath.strip("/")


def _git(*args: str) -> bytes:
    proc = subprocess.run(["git", *args], capture_output=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise OSError(proc.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed")
    return proc.stdout


def _load_git(source: str) -> list[tuple[str, bytes]]:
    url, ref, subpath = _split_git(source)
    cache = _cache_dir() / "git" / hashlib.sha256(url.encode()).hexdigest()[:24]
    if not (cache / "HEAD").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--mirror", "--", url, str(cache))
    else:
        _git("--git-dir", str(cache), "fetch", "--quiet", "--prune", "origin")
    commit = _git("--git-dir", str(cache), "rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    listing = _git("--git-dir", str(cache), "ls-tree", "-r", "--name-only", commit, "--", subpath or ".")
    names = [n for n in listing.decode().splitlines() if n]
    if subpath and subpath in names:
        names = [subpath]
    else:
        names = [n for n in names if n.endswith(SUFFIXES)]
    if not names:
        raise FileNotFoundError(f"no manifest at {subpath or '/'} in {url}@{ref}")
    return [
        (f"git+{url}@{ref}#{name}", _git("--git-dir", str(cache), "show", f"{commit}:{name}"))
        for name in sorted(names)
    ]


def _load_url(source: str) -> list[tuple[str, bytes]]:
    import httpx

    try:
        resp = httpx.get(source, timeout=30.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise OSError(f"fetching failed: {type(exc).__name__}: {exc}") from exc
    if resp.is_error:
        raise OSError(f"fetching failed: HTTP {resp.status_code} {resp.reason_phrase}")
    return [(source, resp.content)]


def _read_source(source: str | os.PathLike[str]) -> list[tuple[str, bytes]]:
    """A source -> [(label, bytes)], one entry per manifest document."""
    if isinstance(source, str):
        if source.startswith("builtin:"):
            name = source[len("builtin:") :]
            folder = _builtin_dir()
            if name in ("", "*"):
                files = sorted((p for p in folder.iterdir() if p.suffix in SUFFIXES), key=lambda p: p.stem)
                return [(f"builtin:{p.stem}", p.read_bytes()) for p in files]
            for suffix in SUFFIXES:
                candidate = folder / f"{name}{suffix}"
                if candidate.is_file():
                    return [(f"builtin:{name}", candidate.read_bytes())]
            raise NotFoundError(
                f"no built-in manifest {name!r}; built in: {', '.join(builtin_names()) or 'none'}",
                code="MANIFEST_NOT_FOUND",
            )
        if source.startswith("git+"):
            return _load_git(source)
        if source.startswith(("http://", "https://")):
            return _load_url(source)
    path = Path(source)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix in SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise FileNotFoundError(f"no *.yaml, *.yml or *.json files in directory {path}")
        return [(str(p), p.read_bytes()) for p in files]
    return [(str(path), path.read_bytes())]


# -- many documents: the catalog ---------------------------------------------------


@attrs.frozen
class Catalog:
    """Providers and models merged from every manifest loaded, with their origins."""

    providers: dict[str, Provider] = attrs.field(factory=dict)
    models: dict[str, Model] = attrs.field(factory=dict)
    protocol: Protocol = attrs.field(factory=Protocol)
    limiter: Limiter = attrs.field(factory=Limiter)
    origins: dict[tuple[str, str], str] = attrs.field(factory=dict)
    sources: tuple[str, ...] = ()
    docs: dict[str, Located] = attrs.field(factory=dict, repr=False, eq=False)

    def where(self, section: str, name: str, *field: str | int) -> ManifestIssue:
        """An issue location for ``section.name.field...`` (file and line)."""
        file = self.origins.get((section, name))
        doc = self.docs.get(file or "")
        path: PathT = (section, name, *field)
        line = doc.line_of(path) if doc is not None else None
        return ManifestIssue("", file=file, path=format_path(path), line=line)


def load_source(
    source: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> tuple[list[tuple[str, Manifest, Located]], list[ManifestIssue]]:
    """Read and parse every document of one source, collecting issues."""
    label = os.fspath(source)
    try:
        raw = _read_source(source)
    except NotFoundError:
        raise
    except (OSError, subprocess.SubprocessError) as exc:
        return [], [ManifestIssue(f"cannot read manifest: {exc}", file=label)]
    docs: list[tuple[str, Manifest, Located]] = []
    issues: list[ManifestIssue] = []
    for name, data in raw:
        manifest, doc, found = parse_manifest(data, name, env)
        issues.extend(found)
        if manifest is not None and doc is not None:
            docs.append((name, manifest, doc))
    return docs, issues


def load_manifests(
    *sources: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    overridable: Iterable[str] = (),
) -> Catalog:
    """Load and merge manifests; raise one ManifestError listing every issue.

    A provider or model defined twice is an error naming both files, unless
    the first definition came from a source listed in ``overridable`` (the
    built-in manifests a CLI loads by default), which a later one replaces.
    """
    can_override = {os.fspath(s) for s in overridable}
    providers: dict[str, Provider] = {}
    models: dict[str, Model] = {}
    origins: dict[tuple[str, str], str] = {}
    protocol: Protocol | None = None
    limiter: Limiter | None = None
    located: dict[str, Located] = {}
    issues: list[ManifestIssue] = []
    owner: dict[str, str] = {}
    for source in sources:
        docs, found = load_source(source, env)
        issues.extend(found)
        for file, manifest, doc in docs:
            located[file] = doc
            owner[file] = os.fspath(source)
            for section, table, target in (
                ("providers", manifest.providers, providers),
                ("models", manifest.models, models),
            ):
                for name, value in table.items():
                    prev = origins.get((section, name))
                    if prev is not None and owner.get(prev) not in can_override:
                        issues.append(
                            doc.issue(
                                (section, name),
                                f"{section[:-1]} {name!r} is defined twice: in {prev} and in {file}",
                            )
                        )
                        continue
                    target[name] = value  # type: ignore[index,assignment]
                    origins[(section, name)] = file
            if manifest.protocol is not None:
                protocol = manifest.protocol
            if manifest.limiter is not None:
                limiter = manifest.limiter
    catalog = Catalog(
        providers=providers,
        models=models,
        protocol=protocol or Protocol(),
        limiter=limiter or Limiter(),
        origins=origins,
        sources=tuple(os.fspath(s) for s in sources),
        docs=located,
    )
    issues.extend(_check_references(catalog))
    if issues:
        raise ManifestError(issues=issues)
    return catalog


def _check_references(catalog: Catalog) -> list[ManifestIssue]:
    out: list[ManifestIssue] = []
    for name, model in catalog.models.items():
        if model.provider not in catalog.providers:
            known = ", ".join(sorted(catalog.providers)) or "none"
            out.append(
                attrs.evolve(
                    catalog.where("models", name, "provider"),
                    message=f"unknown provider {model.provider!r}; known: {known}",
                )
            )
        for i, target in enumerate(model.fallback):
            if target not in catalog.models and "/" not in target:
                out.append(
                    attrs.evolve(
                        catalog.where("models", name, "fallback", i),
                        message=f"fallback model {target!r} is not defined",
                    )
                )
    return out


def plugin_name_errors(catalog: Catalog, plugins: Any) -> list[ModelError]:
    """Every parser, auth, tokenizer, policy or limiter name in the catalog that no plugin provides.

    Each error keeps its code (``PARSER_NOT_FOUND``, ``PLUGIN_CONFLICT``, ...)
    and its message starts with the file, line and field path.
    """
    checks: list[tuple[str, str, ManifestIssue, dict[str, Any]]] = []
    for pname, provider in catalog.providers.items():
        where = {"provider": pname}
        checks.append(
            ("auth_injector", provider.auth.type, catalog.where("providers", pname, "auth", "type"), where)
        )
        for oname, op in provider.operators.items():
            if op.parser is not None:
                field = catalog.where("providers", pname, "operators", oname, "parser")
                checks.append(("parser", op.parser, field, where))
    for mname, model in catalog.models.items():
        if model.tokenizer is not None:
            field = catalog.where("models", mname, "tokenizer")
            checks.append(("tokenizer", model.tokenizer, field, {"model": mname}))
        if model.policy != "default":
            field = catalog.where("models", mname, "policy")
            checks.append(("fallback_policy", model.policy, field, {"model": mname}))
    if catalog.limiter.backend != "local":
        checks.append(("limiter", catalog.limiter.backend, ManifestIssue("", path="limiter.backend"), {}))
    out: list[ModelError] = []
    for kind, name, field, context in checks:
        try:
            plugins.get(kind, name)
        except (NotFoundError, PluginError) as exc:
            out.append(
                type(exc)(
                    f"{field.file or '<manifest>'}:{field.line or '?'}: {field.path}: {exc.message}",
                    code=exc.code,
                    **context,
                )
            )
    return out


def check_plugin_names(catalog: Catalog, plugins: Any) -> None:
    """Fail at load time on a parser, auth or tokenizer name no installed plugin provides.

    Raises the first of :func:`plugin_name_errors` (``PARSER_NOT_FOUND``, ...).
    """
    errors = plugin_name_errors(catalog, plugins)
    if errors:
        raise errors[0]
