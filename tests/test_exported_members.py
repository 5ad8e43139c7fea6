"""``import modelwire`` is the whole public API (as httpx tests/test_exported_members.py)."""

from __future__ import annotations

import importlib
import inspect

import pytest

import modelwire


def test_all_imports_are_exported() -> None:
    included_private_members = ["__version__"]
    assert modelwire.__all__ == sorted(
        member
        # dir() lists the lazily loaded names too (the module's __dir__).
        for member, value in ((m, getattr(modelwire, m)) for m in dir(modelwire))
        # Submodules (``modelwire.testing``) appear here once imported; they are not re-exports.
        if (not member.startswith("_") or member in included_private_members)
        and not inspect.ismodule(value)
    )


def test_all_is_unique_and_every_name_exists() -> None:
    assert len(set(modelwire.__all__)) == len(modelwire.__all__)
    for name in modelwire.__all__:
        assert hasattr(modelwire, name), name


def test_public_objects_belong_to_modelwire() -> None:
    for name in modelwire.__all__:
        obj = getattr(modelwire, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("modelwire."), (name, obj.__module__)


def test_import_is_light() -> None:
    """Plugin authors import modelwire for Frame and ParseError: no cattrs, yaml, anyio or httpx."""
    import subprocess
    import sys

    code = (
        "import sys, modelwire; heavy = {'cattrs', 'yaml', 'anyio', 'httpx', 'jmespath', 'prometheus_client'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_hookimpl_is_the_modelwire_marker() -> None:
    assert modelwire.hookimpl.project_name == "modelwire"
    assert isinstance(modelwire.__version__, str)


def test_one_table_drives_all_and_the_type_checking_imports() -> None:
    """``_EXPORTS`` is the table; the TYPE_CHECKING block (for type checkers) must name the same things."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(modelwire.__file__).read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    typed[alias.asname or alias.name] = "." * imp.level + (imp.module or "")
    assert typed == modelwire._EXPORTS
    assert modelwire.__all__ == sorted([*modelwire._EXPORTS, "__version__"])


@pytest.mark.parametrize("name", ["modelwire.tools", "modelwire.pipelines", "modelwire.agent", "modelwire.plugin"])
def test_public_subpackages_export_what_they_define(name: str) -> None:
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for member in module.__all__:
        obj = getattr(module, member)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("modelwire."), (member, obj.__module__)


@pytest.mark.parametrize("name", ["modelwire.tools", "modelwire.pipelines", "modelwire.agent"])
def test_one_import_path_per_name(name: str) -> None:
    """Tools, pipelines and agent names live in their subpackage only, not also at the root."""
    module = importlib.import_module(name)
    assert not set(module.__all__) & set(modelwire.__all__)
