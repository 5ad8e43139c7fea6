"""``modelwire plugin new``: write a complete plugin distribution to start from.

One command gives a plugin author a distribution that installs, registers
through the ``modelwire`` entry point and passes its own tests::

    modelwire-acme/
    ├── pyproject.toml          hatchling; [project.entry-points.modelwire]
    ├── README.md               use, develop, publish
    ├── .gitignore
    ├── src/modelwire_acme/
    │   ├── __init__.py         a working, documented example of the kind
    │   └── py.typed
    └── tests/test_acme.py      uses modelwire's pytest plugin fixtures

The kinds are ``parser``, ``auth``, ``tokenizer`` and ``policy``. The
templates are files in ``modelwire/_cli/templates`` with ``{{placeholders}}``.
A bad name or an existing directory is an ``InvalidRequestError``
(``PLUGIN_NAME_INVALID``, ``PLUGIN_DIR_EXISTS``), which the CLI prints as
one line.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from .._errors import InvalidRequestError
from .._version import __version__

__all__ = ["KINDS", "PluginNames", "add_plugin_command", "new_plugin", "plugin_names", "render"]

#: ``--kind`` -> what it is called in prose (and in ``modelwire plugins``)
KINDS: dict[str, str] = {
    "parser": "parser",
    "auth": "auth injector",
    "tokenizer": "tokenizer",
    "policy": "fallback policy",
}

_DESCRIPTIONS = {
    "parser": "A line-based stream parser plugin for modelwire.",
    "auth": "An auth injector plugin for modelwire: an API key header from an environment variable.",
    "tokenizer": "A token counter plugin for modelwire.",
    "policy": "A retry-then-fall-back policy plugin for modelwire.",
}

#: A distribution name (PEP 508): letters, digits, ``-``, ``_`` and ``.``,
#: starting and ending with a letter or digit.
_DIST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_PREFIX = "modelwire-"

#: Names modelwire and its own distributions register: a plugin claiming one
#: would clash (PLUGIN_CONFLICT) or shadow a built-in.
_TAKEN = frozenset(
    {
        "sse", "jsonchunk", "text",  # parsers
        "none", "bearer", "header", "query",  # auth injectors
        "approx", "tiktoken",  # tokenizers
        "default", "raise",  # fallback policies
        "local", "redis",  # limiters
    }
)  # fmt: skip


@attrs.frozen
class PluginNames:
    """Every name derived from the one the author typed."""

    #: the distribution (``modelwire-acme``), normalized as PyPI does
    distribution: str
    #: the import package (``modelwire_acme``)
    package: str
    #: the plugin name: the entry point's, and what the hook registers (``acme``)
    name: str
    #: a CamelCase stem for class names (``Acme``)
    title: str
    #: an UPPER_CASE stem for error codes and variables (``ACME``)
    upper: str


def plugin_names(name: str) -> PluginNames:
    """Check a distribution name and derive the package and plugin names.

    ``modelwire-acme`` gives package ``modelwire_acme`` and plugin ``acme``;
    a name without the prefix (``acme-auth``) keeps it as the distribution
    and the plugin name, and the package is ``modelwire_acme_auth``.
    """
    if not isinstance(name, str) or not _DIST_RE.match(name):
        raise InvalidRequestError(
            f"{name!r} is not a valid distribution name: use letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit (e.g. modelwire-acme)",
            code="PLUGIN_NAME_INVALID",
        )
    dist = re.sub(r"[-_.]+", "-", name).lower()
    stem = dist[len(_PREFIX) :] if dist.startswith(_PREFIX) else dist
    if dist == "modelwire" or not stem:
        raise InvalidRequestError(
            f"{name!r} is modelwire's own name; name the plugin, e.g. modelwire-acme",
            code="PLUGIN_NAME_INVALID",
        )
    if stem in _TAKEN:
        raise InvalidRequestError(
            f"{name!r} would register the name {stem!r}, which modelwire or one of its own "
            "distributions already uses; choose another name",
            code="PLUGIN_NAME_INVALID",
        )
    words = stem.split("-")
    title = "".join(w[:1].upper() + w[1:] for w in words)
    upper = "_".join(words).upper()
    if not title[0].isalpha():  # a class or variable name cannot start with a digit
        title, upper = "Plugin" + title, "PLUGIN_" + upper
    return PluginNames(
        distribution=dist,
        package="modelwire_" + "_".join(words),
        name=stem,
        title=title,
        upper=upper,
    )


def _template(*parts: str) -> str:
    return resources.files("modelwire._cli").joinpath("templates", *parts).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.search(r"\{\{\w+\}\}", text)
    if left:  # pragma: no cover - a template names a placeholder render() does not fill
        raise AssertionError(f"unfilled template placeholder {left.group(0)}")
    return text


def render(name: str, kind: str) -> dict[str, str]:
    """The files of a new plugin distribution: relative path -> text."""
    if kind not in KINDS:
        raise InvalidRequestError(
            f"unknown plugin kind {kind!r}; choose one of {', '.join(KINDS)}",
            code="PLUGIN_KIND_UNKNOWN",
        )
    names = plugin_names(name)
    label = KINDS[kind]
    major_minor = ".".join(__version__.split(".")[:2])
    values = {
        "dist": names.distribution,
        "package": names.package,
        "name": names.name,
        "Title": names.title,
        "CODE": names.upper,
        "ENV": f"{names.upper}_API_KEY",
        "header": f"x-{names.name}-key",
        "media_type": f"text/x-{names.name}",
        "kind_label": label,
        "description": _DESCRIPTIONS[kind],
        "requirement": f"modelwire>={major_minor}",
    }
    values["usage"] = _fill(_template(kind, "usage.md.tmpl"), values).rstrip("\n")
    package = f"src/{names.package}"
    test_module = "test_" + names.name.replace("-", "_")
    return {
        "pyproject.toml": _fill(_template("common", "pyproject.toml.tmpl"), values),
        "README.md": _fill(_template("common", "README.md.tmpl"), values),
        ".gitignore": _template("common", "gitignore.tmpl"),
        f"{package}/__init__.py": _fill(_template(kind, "__init__.py.tmpl"), values),
        f"{package}/py.typed": "",
        f"tests/{test_module}.py": _fill(_template(kind, "test.py.tmpl"), values),
    }


def new_plugin(name: str, kind: str, directory: str | os.PathLike[str] = ".") -> Path:
    """Write a new plugin distribution into ``directory/<distribution>``; return its path.

    Refuses (``PLUGIN_DIR_EXISTS``) when that path exists, and writes
    nothing at all when it fails: the files go to a temporary directory
    beside the target, which is renamed into place at the end.
    """
    files = render(name, kind)
    parent = Path(directory)
    target = parent / plugin_names(name).distribution
    if target.exists() or target.is_symlink():
        raise InvalidRequestError(
            f"{target} already exists; choose another name or --dir, or remove it first",
            code="PLUGIN_DIR_EXISTS",
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
        staging.mkdir()
    except OSError as exc:
        raise InvalidRequestError(
            f"cannot write a plugin into {parent}: {exc.strerror or exc}", code="PLUGIN_DIR_UNWRITABLE"
        ) from exc
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if target.exists():  # appeared while writing
            raise InvalidRequestError(
                f"{target} already exists; choose another name or --dir, or remove it first",
                code="PLUGIN_DIR_EXISTS",
            )
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidRequestError(
            f"cannot write {target}: {exc.strerror or exc}", code="PLUGIN_DIR_UNWRITABLE"
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# -- CLI ---------------------------------------------------------------------------------------


def _cmd_plugin_new(args: argparse.Namespace) -> int:
    target = new_plugin(args.name, args.kind, args.dir)
    names = plugin_names(args.name)
    label = KINDS[args.kind]
    shown = os.path.relpath(target) if not os.path.isabs(args.dir) else str(target)
    print(f"created {names.distribution} ({label} {names.name!r}, package {names.package}) in {shown}")
    print("next:")
    print(f"  cd {shlex.quote(shown)}")
    print("  python -m pip install -e '.[test]'")
    print("  python -m pytest")
    print(f"  modelwire plugins            # lists {names.name!r}")
    return 0


def _cmd_plugin_help(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def add_plugin_command(sub: Any) -> None:
    """Attach ``modelwire plugin new NAME --kind KIND [--dir D]`` to the CLI's subparsers."""
    group = sub.add_parser("plugin", help="plugin author tools: `plugin new` writes a new plugin distribution")
    group.set_defaults(handler=_cmd_plugin_help(group))
    actions = group.add_subparsers(dest="plugin_command", metavar="ACTION")
    p = actions.add_parser(
        "new",
        help="write a new plugin distribution (pyproject, example code, README, tests)",
        description="Write a complete, installable plugin distribution into DIR/NAME.",
    )
    p.add_argument("name", metavar="NAME", help="distribution name, e.g. modelwire-acme (plugin 'acme')")
    p.add_argument("--kind", required=True, choices=list(KINDS), help="what the plugin provides")
    p.add_argument("--dir", default=".", metavar="D", help="where to create NAME/ (default: current directory)")
    p.set_defaults(handler=_cmd_plugin_new)
