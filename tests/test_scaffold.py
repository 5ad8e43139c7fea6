"""``modelwire plugin new``: the names it derives, the files it writes, and
(the slow test at the end) that each kind of generated plugin installs into a
fresh virtualenv, passes its own tests there and is listed by ``modelwire
plugins``."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import modelwire
from modelwire import Frame, InvalidRequestError, ParseError
from modelwire._cli.scaffold import KINDS, PluginNames, new_plugin, plugin_names, render
from modelwire.pytest_plugin import ChunkingFeeder, PluginsFactory

from core_helpers import ROOT

try:
    import tomllib  # type: ignore[import-not-found]  # mypy checks as Python 3.10
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

KIND_NAMES = list(KINDS)
#: kind -> the registry kind ``Plugins`` uses
REGISTRY_KIND = {"parser": "parser", "auth": "auth_injector", "tokenizer": "tokenizer", "policy": "fallback_policy"}


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        pytest.param("modelwire-acme", ("modelwire-acme", "modelwire_acme", "acme", "Acme", "ACME"), id="prefixed"),
        pytest.param("Modelwire_Acme.Lines", ("modelwire-acme-lines", "modelwire_acme_lines", "acme-lines",
                                              "AcmeLines", "ACME_LINES"), id="normalized"),
        pytest.param("acme-auth", ("acme-auth", "modelwire_acme_auth", "acme-auth", "AcmeAuth", "ACME_AUTH"),
                     id="unprefixed"),
        pytest.param("modelwire-2fa", ("modelwire-2fa", "modelwire_2fa", "2fa", "Plugin2fa", "PLUGIN_2FA"),
                     id="leading-digit"),
        pytest.param("x", ("x", "modelwire_x", "x", "X", "X"), id="one-letter"),
    ],
)
def test_names_are_derived(typed: str, expected: tuple[str, ...]) -> None:
    assert plugin_names(typed) == PluginNames(*expected)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        pytest.param("", "not a valid distribution name", id="empty"),
        pytest.param("bad name", "not a valid distribution name", id="space"),
        pytest.param("-acme", "not a valid distribution name", id="leading-dash"),
        pytest.param("acme-", "not a valid distribution name", id="trailing-dash"),
        pytest.param("acme/../x", "not a valid distribution name", id="path"),
        pytest.param("modelwire", "modelwire's own name", id="core"),
        pytest.param("Modelwire", "modelwire's own name", id="core-case"),
        pytest.param("modelwire-sse", "would register the name 'sse'", id="builtin-parser"),
        pytest.param("modelwire-bearer", "would register the name 'bearer'", id="builtin-auth"),
        pytest.param("approx", "would register the name 'approx'", id="builtin-tokenizer"),
    ],
)
def test_bad_names_are_typed_errors(typed: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as info:
        plugin_names(typed)
    assert info.value.code == "PLUGIN_NAME_INVALID"


def test_unknown_kind() -> None:
    with pytest.raises(InvalidRequestError, match="choose one of parser, auth, tokenizer, policy") as info:
        render("modelwire-acme", "limiter")
    assert info.value.code == "PLUGIN_KIND_UNKNOWN"


# -- the files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_render_gives_a_complete_distribution(kind: str) -> None:
    files = render("modelwire-acme-co", kind)
    assert sorted(files) == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/modelwire_acme_co/__init__.py",
        "src/modelwire_acme_co/py.typed",
        "tests/test_acme_co.py",
    ]
    for path, text in files.items():
        assert re.search(r"\{\{\w+\}\}", text) is None, path
        if path.endswith(".py"):
            compile(text, path, "exec")
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["name"] == "modelwire-acme-co"
    assert project["project"]["dependencies"] == ["modelwire>=" + ".".join(modelwire.__version__.split(".")[:2])]
    assert project["project"]["entry-points"]["modelwire"] == {"acme-co": "modelwire_acme_co"}
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/modelwire_acme_co"]
    readme = files["README.md"]
    assert readme.startswith("# modelwire-acme-co\n") and "pip install -e '.[test]'" in readme
    assert "python -m build" in readme


def test_new_plugin_writes_the_files(tmp_path: Path) -> None:
    target = new_plugin("modelwire-acme", "parser", tmp_path / "new" / "dir")
    assert target == tmp_path / "new" / "dir" / "modelwire-acme"
    written = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert written == sorted(render("modelwire-acme", "parser"))
    assert [p.name for p in target.parent.iterdir()] == ["modelwire-acme"]  # no staging left behind


def test_an_existing_directory_is_never_touched(tmp_path: Path) -> None:
    (tmp_path / "modelwire-acme").mkdir()
    (tmp_path / "modelwire-acme" / "mine.txt").write_text("keep me")
    with pytest.raises(InvalidRequestError, match="already exists") as info:
        new_plugin("modelwire-acme", "auth", tmp_path)
    assert info.value.code == "PLUGIN_DIR_EXISTS"
    assert [p.name for p in tmp_path.iterdir()] == ["modelwire-acme"]
    assert [p.name for p in (tmp_path / "modelwire-acme").iterdir()] == ["mine.txt"]


def test_an_unwritable_directory_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(InvalidRequestError) as info:
        new_plugin("modelwire-acme", "auth", blocker)
    assert info.value.code == "PLUGIN_DIR_UNWRITABLE"


# -- the CLI -----------------------------------------------------------------------------------------


def test_cli_plugin_new(cli: Any, tmp_path: Path) -> None:
    result = cli("plugin", "new", "modelwire-acme", "--kind", "tokenizer", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    target = tmp_path / "modelwire-acme"
    assert result.stdout.splitlines()[0] == (
        f"created modelwire-acme (tokenizer 'acme', package modelwire_acme) in {target}"
    )
    assert "python -m pip install -e '.[test]'" in result.stdout
    assert (target / "src" / "modelwire_acme" / "__init__.py").exists()

    again = cli("plugin", "new", "modelwire-acme", "--kind", "parser", "--dir", str(tmp_path))
    assert again.returncode == 1
    assert again.stderr == f"error: {target} already exists; choose another name or --dir, or remove it first\n"


def test_cli_default_dir_is_the_current_one(cli: Any, tmp_path: Path) -> None:
    result = cli("plugin", "new", "acme-words", "--kind", "policy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "in acme-words\n" in result.stdout and "  cd acme-words\n" in result.stdout
    assert (tmp_path / "acme-words" / "src" / "modelwire_acme_words" / "py.typed").exists()


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        pytest.param(["new", "bad name", "--kind", "auth"], 1, "error: 'bad name' is not a valid", id="bad-name"),
        pytest.param(["new", "modelwire-acme", "--kind", "limiter"], 2, "invalid choice: 'limiter'", id="bad-kind"),
        pytest.param(["new", "modelwire-acme"], 2, "the following arguments are required: --kind", id="no-kind"),
        pytest.param([], 2, "usage: modelwire plugin", id="no-action"),
    ],
)
def test_cli_errors_have_no_traceback(cli: Any, tmp_path: Path, args: list[str], code: int, stderr: str) -> None:
    result = cli("plugin", *args, cwd=tmp_path)
    assert result.returncode == code
    assert stderr in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


# -- the generated code, in this process ----------------------------------------------------------


def _load(tmp_path: Path, kind: str, name: str = "modelwire-acme") -> ModuleType:
    target = new_plugin(name, kind, tmp_path)
    names = plugin_names(name)
    init = target / "src" / names.package / "__init__.py"
    spec = importlib.util.spec_from_file_location(f"_scaffold_{kind}_{names.package}", init)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_parser_keeps_the_contract(tmp_path: Path, modelwire_feed: ChunkingFeeder) -> None:
    parser = _load(tmp_path, "parser").AcmeParser
    data = "a\r\nb\n\n\u00e9\U0001f600\r\nlast".encode()
    assert modelwire_feed(parser, data) == [Frame("a"), Frame("b"), Frame("\u00e9\U0001f600"), Frame("last")]
    with pytest.raises(ParseError) as info:
        modelwire_feed(parser, b"ok\n" + b"x" * 9 + b"\r\n", max_line=8)
    assert (info.value.code, info.value.offset, info.value.line) == ("ACME_LINE_TOO_LONG", 3, 2)
    with pytest.raises(ParseError) as info:
        modelwire_feed(parser, b"one\ntw\xc3\n")
    assert (info.value.code, info.value.offset, info.value.line) == ("ACME_BAD_UTF8", 6, 2)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_generated_hook_registers_the_plugin_name(
    tmp_path: Path, modelwire_plugins: PluginsFactory, kind: str
) -> None:
    module = _load(tmp_path, kind, "modelwire-acme-x")
    plugins = modelwire_plugins(module)
    assert plugins.get(REGISTRY_KIND[kind], "acme-x").plugin == module.__name__
    assert plugins.errors() == []


def test_generated_tokenizer_and_policy_objects(tmp_path: Path) -> None:
    tokenizer = _load(tmp_path, "tokenizer").TOKENIZER
    assert isinstance(tokenizer, modelwire.Tokenizer)
    assert (tokenizer.count(""), tokenizer.count("one two three four five")) == (0, 6)
    policy = _load(tmp_path / "p", "policy").POLICY
    assert isinstance(policy, modelwire.FallbackPolicy)


# -- from zero to a tested plugin, in a fresh virtualenv --------------------------------------------


def _clean_env() -> dict[str, str]:
    """This process's environment without what would leak into the fresh venv's runs."""
    drop = ("MODELWIRE_", "PYTEST_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _run(args: list[str | os.PathLike[str]], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=400, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(map(str, args))}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.mark.timeout(600)
def test_generated_plugins_install_pass_their_tests_and_are_listed(tmp_path: Path) -> None:
    """One venv: the core and the SSE parser from this checkout, then one plugin of each kind."""
    env = _clean_env()
    plugins_dir = tmp_path / "plugins"
    targets = {kind: new_plugin(f"modelwire-fresh-{kind}", kind, plugins_dir) for kind in KIND_NAMES}

    home = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    bindir = home / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    pip: list[str | os.PathLike[str]] = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    # The build backend once, so the local builds below skip an isolated build env each.
    _run([*pip, "install", "hatchling>=1.21"], tmp_path, env)
    _run([*pip, "install", "--no-build-isolation", ROOT, ROOT / "plugins" / "modelwire-sse", "pytest>=8"],
         tmp_path, env)
    # Every dependency of the generated plugins is in place now.
    _run([*pip, "install", "--no-build-isolation", "--no-deps", *targets.values()], tmp_path, env)

    for kind, target in targets.items():
        out = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], target, env)
        assert " passed" in out and "failed" not in out and "error" not in out, (kind, out)

    listing = json.loads(_run([bindir / "modelwire", "plugins", "--json"], tmp_path, env))
    assert listing["errors"] == []
    found = {(r["kind"], r["name"]): r["distribution"] for r in listing["registrations"]}
    for kind in KIND_NAMES:
        assert found[(REGISTRY_KIND[kind], f"fresh-{kind}")] == f"modelwire-fresh-{kind}"
    assert found[("parser", "sse")] == "modelwire-sse"
    assert sys.executable != str(python)
