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
from .sources import FetchLimits, is_remote, read_source
from .structure import parse_manifest
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
    for source in sources:
        docs, found = load_source(source, env, allow_env=allow_env, limits=limits, partial=collect is not None)
        issues.extend(found)
        remote = is_remote(source)
        for file, manifest, doc in docs:
            located[file] = doc
            owner[file] = os.fspath(source)
            for section, table, target in (
                ("providers", manifest.providers, providers),
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
                    target[name] = value  # type: ignore[index,assignment]
                    origins[(section, name)] = file
            if manifest.protocol is not None:
                protocol = manifest.protocol
            if manifest.limiter is not None:
                limiter = manifest.limiter
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
