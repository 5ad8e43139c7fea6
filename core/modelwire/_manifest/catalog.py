"""The catalog: providers and models merged from many manifest sources.

:func:`load_manifests` reads every source (:mod:`.sources`), parses each
document (:mod:`.structure`), merges them, checks cross-references (a
model's provider, its fallbacks) and raises one :class:`ManifestError`
listing every issue, so a user fixes a manifest in one pass.
:func:`plugin_name_errors` checks the plugin names a catalog uses.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._errors import ManifestError, ManifestIssue, ModelError, NotFoundError, PluginError
from .model import Detection, Limiter, Manifest, Model, Operator, Provider
from .sources import FetchLimits, builtin_names, is_remote, read_source
from .structure import (
    extending_providers,
    merge_patch,
    parse_manifest,
    provider_value,
    structure_provider,
)
from .yaml import Located, format_path

__all__ = [
    "REMOTE_ENV_VARIABLE",
    "Catalog",
    "check_plugin_names",
    "load_manifests",
    "load_source",
    "plugin_name_errors",
    "provider_plugin_error",
]

PathT = tuple["str | int", ...]

#: Names (comma or space separated) a manifest from a URL or git may read,
#: added to ``load_manifests(allow_env=...)``.
REMOTE_ENV_VARIABLE = "MODELWIRE_REMOTE_ENV"


def remote_allow_list(allow_env: Iterable[str] | None, env: Mapping[str, str] | None) -> frozenset[str]:
    """``allow_env`` plus the names in ``MODELWIRE_REMOTE_ENV``."""
    listed = (os.environ if env is None else env).get(REMOTE_ENV_VARIABLE, "")
    return frozenset(allow_env or ()) | frozenset(listed.replace(",", " ").split())


# -- many documents: the catalog ---------------------------------------------------


@attrs.frozen
class Catalog:
    """Providers and models merged from every manifest loaded, with their origins."""

    providers: dict[str, Provider] = attrs.field(factory=dict)
    models: dict[str, Model] = attrs.field(factory=dict)
    protocol: Detection = attrs.field(factory=Detection)
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
    source: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    *,
    allow_env: Iterable[str] | None = None,
    limits: FetchLimits | None = None,
    partial: bool = False,
) -> tuple[list[tuple[str, Manifest, Located]], list[ManifestIssue]]:
    """Read and parse every document of one source, collecting issues.

    A source from a URL or git may read only the variables in ``allow_env``
    (and ``MODELWIRE_REMOTE_ENV``), in ``${VAR}`` and in ``auth.env``.
    """
    label = os.fspath(source)
    remote = is_remote(source)
    allowed = remote_allow_list(allow_env, env) if remote else None
    try:
        raw = read_source(source, limits)
    except NotFoundError:
        raise
    except (OSError, subprocess.SubprocessError) as exc:
        return [], [ManifestIssue(f"cannot read manifest: {exc}", file=label)]
    docs: list[tuple[str, Manifest, Located]] = []
    issues: list[ManifestIssue] = []
    for name, data in raw:
        manifest, doc, found = parse_manifest(
            data, name, env, allow_env=allowed, remote=remote, partial=partial
        )
        issues.extend(found)
        if manifest is not None and doc is not None:
            docs.append((name, manifest, doc))
    return docs, issues


def load_manifests(
    *sources: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    overridable: Iterable[str] = (),
    allow_env: Iterable[str] | None = None,
    allow_remote_override: bool = False,
    limits: FetchLimits | None = None,
    collect: list[ManifestIssue] | None = None,
) -> Catalog:
    """Load and merge manifests; raise one ManifestError listing every issue.

    With ``collect``, the issues go there instead and the (partial) catalog is
    returned, so a checker can go on to the plugin names in the same run.

    A provider or model defined twice is an error naming both files, unless
    the first definition came from a source listed in ``overridable`` (the
    built-in manifests a CLI loads by default), which a later one replaces.

    Sources from a URL or git (``http(s)://``, ``git+``) are held tighter:
    they may read only the environment variables named in ``allow_env`` or in
    ``MODELWIRE_REMOTE_ENV`` (``${VAR}`` and ``auth.env`` alike), and never
    replace a provider or model defined by an earlier source, overridable or
    not, unless ``allow_remote_override=True``. ``limits`` bounds each fetch.
    """
    can_override = {os.fspath(s) for s in overridable}
    providers: dict[str, Provider] = {}
    models: dict[str, Model] = {}
    origins: dict[tuple[str, str], str] = {}
    protocol: Detection | None = None
    limiter: Limiter | None = None
    located: dict[str, Located] = {}
    issues: list[ManifestIssue] = []
    owner: dict[str, str] = {}
    extending: dict[str, str] = {}  # provider -> file, structured once all sources are read
    for source in sources:
        docs, found = load_source(source, env, allow_env=allow_env, limits=limits, partial=collect is not None)
        issues.extend(found)
        remote = is_remote(source)
        for file, manifest, doc in docs:
            located[file] = doc
            owner[file] = os.fspath(source)
            pending = extending_providers(doc)
            for section, table, target in (
                ("providers", {**manifest.providers, **dict.fromkeys(pending)}, providers),
                ("models", manifest.models, models),
            ):
                for name, value in table.items():
                    prev = origins.get((section, name))
                    if prev is not None and remote and not allow_remote_override:
                        # Replacing `openai` would send its users' keys to the new base_url.
                        issues.append(
                            doc.issue(
                                (section, name),
                                f"{section[:-1]} {name!r} from a URL or git would replace the one"
                                f" in {prev}; a remote manifest never replaces a definition"
                                " unless the caller passes allow_remote_override=True",
                            )
                        )
                        continue
                    if prev is not None and owner.get(prev) not in can_override:
                        issues.append(
                            doc.issue(
                                (section, name),
                                f"{section[:-1]} {name!r} is defined twice: in {prev} and in {file}",
                            )
                        )
                        continue
                    if section == "providers" and name in pending:
                        extending[name] = file
                        target.pop(name, None)
                    else:
                        if section == "providers":
                            extending.pop(name, None)
                        target[name] = value  # type: ignore[index,assignment]
                    origins[(section, name)] = file
            if manifest.protocol is not None:
                protocol = manifest.protocol
            if manifest.limiter is not None:
                limiter = manifest.limiter
    if extending:
        allowed = remote_allow_list(allow_env, env)
        issues.extend(_resolve_extends(extending, providers, origins, located, owner, allowed, env))
    catalog = Catalog(
        providers=providers,
        models=models,
        protocol=protocol or Detection(),
        limiter=limiter or Limiter(),
        origins=origins,
        sources=tuple(os.fspath(s) for s in sources),
        docs=located,
    )
    issues.extend(_check_references(catalog))
    if issues and collect is not None:
        collect.extend(issues)
    elif issues:
        raise ManifestError(issues=issues)
    return catalog


def _resolve_extends(
    extending: dict[str, str],
    providers: dict[str, Provider],
    origins: dict[tuple[str, str], str],
    located: dict[str, Located],
    owner: dict[str, str],
    remote_allowed: frozenset[str],
    env: Mapping[str, str] | None,
) -> list[ManifestIssue]:
    """Structure every provider with ``extends`` over the one it names, in place.

    The parent is looked up among the loaded providers, then among the
    built-in manifests (``extends: openai`` works without loading
    ``builtin:openai``; its models are not added). A built-in manifest's
    parent is always the built-in one: replacing ``openai`` leaves ``groq``
    whole. A cycle or an unknown name is an issue at ``providers.NAME.extends``.
    """
    issues: list[ManifestIssue] = []
    raw: dict[str, Any] = {}  # provider -> merged mapping (None: failed)
    builtin: dict[str, tuple[str, Located]] = {}

    def parent_value(name: str, parent: str, chain: tuple[str, ...], where: ManifestIssue) -> Any:
        if parent in chain:
            cycle = " -> ".join((*chain[chain.index(parent):], parent))
            issues.append(attrs.evolve(where, message=f"providers extend each other in a cycle: {cycle}"))
            return None
        # A built-in extends a built-in, even when the caller replaced it; a
        # manifest from a URL or git extends a built-in or another remote one,
        # never a local provider (whose headers may carry expanded secrets).
        child_file = extending[name]
        remote = is_remote(owner[child_file])
        pinned = child_file.startswith("builtin:") or remote
        file = origins.get(("providers", parent))
        visible = file is not None and (not pinned or (remote and is_remote(owner[file])))
        if visible and parent in extending:
            return resolve(parent, chain)
        if visible and file is not None and parent in providers:
            return provider_value(located[file], parent)
        if parent not in builtin and parent in builtin_names():
            docs, found = load_source(f"builtin:{parent}", env)
            if not found:
                builtin.update({p: (f, d) for f, m, d in docs for p in m.providers})
        if parent in builtin:
            return provider_value(builtin[parent][1], parent)
        if child_file.startswith("builtin:") and parent in extending:
            return resolve(parent, chain)
        if remote and file is not None:
            issues.append(
                attrs.evolve(
                    where,
                    message=f"a manifest from a URL or git extends only built-in or remote providers;"
                    f" {parent!r} is defined in {file}",
                )
            )
            return None
        known = ", ".join(sorted({*providers, *extending, *builtin_names()} - {name})) or "none"
        issues.append(attrs.evolve(where, message=f"extends unknown provider {parent!r}; known: {known}"))
        return None

    def resolve(name: str, chain: tuple[str, ...] = ()) -> Any:
        if name in raw:
            return raw[name]
        file = extending[name]
        doc = located[file]
        child = provider_value(doc, name)
        where = _issue_at(doc, ("providers", name, "extends"))
        raw[name] = None
        if isinstance(child["extends"], str):
            base = parent_value(name, child["extends"], (*chain, name), where)
            if base is not None:
                raw[name] = merge_patch(base, child)
        return raw[name]

    for name, file in extending.items():
        value = resolve(name)
        if value is None:
            continue
        doc = located[file]
        provider, found = structure_provider(value, name, doc)
        issues.extend(found)
        if provider is None:
            continue
        if is_remote(owner[file]) and provider.auth.env is not None and provider.auth.env not in remote_allowed:
            # Extending `openai` from a URL must not send OPENAI_API_KEY to that URL's base_url.
            issues.append(
                doc.issue(
                    ("providers", name, "auth", "env"),
                    f"environment variable {provider.auth.env} (inherited through extends) is not in the"
                    " allow-list for manifests from a URL or git (allow_env=... or MODELWIRE_REMOTE_ENV)",
                )
            )
            continue
        providers[name] = provider
    return issues


def _issue_at(doc: Located, path: PathT) -> ManifestIssue:
    return doc.issue(path, "")


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
        if provider.requires:
            continue  # checked when called: see provider_plugin_error
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


def provider_plugin_error(name: str, provider: Provider, operator: Operator, plugins: Any) -> ModelError | None:
    """Why a call through ``provider`` cannot be made with these plugins, or None.

    For a provider that ``requires`` plugin distributions (the bundled
    manifests of AWS and Google providers): a missing parser or auth name
    names the distributions to install, rather than failing the whole catalog
    at load time.
    """
    names = [("auth_injector", provider.auth.type)]
    if operator.parser is not None:
        names.append(("parser", operator.parser))
    for kind, plugin in names:
        try:
            plugins.get(kind, plugin)
        except NotFoundError as exc:
            dists = " ".join(provider.requires)
            return NotFoundError(
                f"provider {name!r} needs the plugin distribution {dists} "
                f"(pip install {dists}): {exc.message}",
                code=exc.code, provider=name, name=plugin,
            )
        except PluginError as exc:
            return exc
    return None


def check_plugin_names(catalog: Catalog, plugins: Any) -> None:
    """Fail at load time on a parser, auth or tokenizer name no installed plugin provides.

    Raises the first of :func:`plugin_name_errors` (``PARSER_NOT_FOUND``, ...).
    """
    errors = plugin_name_errors(catalog, plugins)
    if errors:
        raise errors[0]
