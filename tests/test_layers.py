"""The house rules of the package layout, checked on the source (import-linter runs in ``nox -s lint``).

- layers: each subsystem imports only the ones below it (the contract in pyproject.toml);
- no import cycles between modules, not even inside one subpackage;
- no private name (``_x``) imported from a module of another subpackage;
- plugin distributions import only the public API (``modelwire`` and ``modelwire.plugin``).
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "core" / "modelwire"
PUBLIC_FOR_PLUGINS = {"modelwire", "modelwire.plugin", "modelwire.testing", "modelwire.pytest_plugin"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _subsystem(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _imports(path: Path, module: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name, line) for every ``from X import name`` in a file."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            out.extend((target, alias.name, node.lineno) for alias in node.names)
    return out


def test_the_layers_contract_holds() -> None:
    command = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(command), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_import_cycles_between_modules() -> None:
    graph = grimp.build_graph("modelwire", include_external_packages=False, exclude_type_checking_imports=True)
    cycles = []
    for a, b in itertools.combinations(sorted(graph.modules), 2):
        if graph.direct_import_exists(importer=a, imported=b) and graph.chain_exists(importer=b, imported=a):
            cycles.append((a, b))
    assert cycles == []


def test_no_private_names_across_subpackages() -> None:
    modules = _modules()
    problems = []
    for module, path in modules.items():
        for target, name, line in _imports(path, module):
            if not target.startswith("modelwire") or _subsystem(target) == _subsystem(module):
                continue
            if name.startswith("_") and name != "__version__":
                problems.append(f"{path.relative_to(ROOT)}:{line}: {name} from {target}")
    assert problems == []


@pytest.mark.parametrize("src", sorted((ROOT / "plugins").glob("*/src")), ids=lambda p: p.parent.name)
def test_plugin_distributions_use_only_the_public_api(src: Path) -> None:
    problems = []
    for path in src.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            )
            for name in names:
                if name.startswith("modelwire") and name.split(".")[0] == "modelwire" and name not in PUBLIC_FOR_PLUGINS:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}")
    assert problems == []
