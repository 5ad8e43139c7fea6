"""Every ``pip install`` line in the README, docs/ and examples/ runs, each in a fresh venv.

Slow (a venv and real installs per line): marked ``install`` and left out of
``nox -s tests``; ``nox -s install_lines`` runs it, and so does ``.ci/run``.
Lines run from the repository root, as the docs say; inside a console block
the test follows ``modelwire plugin new NAME`` (into a scratch directory) and
``cd`` so a line like ``pip install -e '.[test]'`` runs where the reader is.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from core_helpers import ROOT

pytestmark = pytest.mark.install

FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").glob("*/README.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`(?:\$ )?((?:python -m )?pip install [^`]+)`")
Step = tuple[str, list[str]]  # ("pip" | "new" | "cd", words)


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # not shell (output, a continuation line): nothing to run
        return []


def _steps(block: str, console: bool = False) -> list[Step]:
    """The pip installs of one block, with the ``plugin new`` / ``cd`` that place them.

    In a console block only ``$ `` lines are commands; the rest is output.
    """
    steps: list[Step] = []
    for raw in block.splitlines():
        if console and not raw.startswith("$ "):
            continue
        line = raw[2:] if raw.startswith("$ ") else raw
        for part in re.split(r"\s*&&\s*", line):
            words = _words(part) if part.strip() else []
            if words[:2] == ["pip", "install"] or words[:4] == ["python", "-m", "pip", "install"]:
                steps.append(("pip", words[words.index("install") + 1:]))
            elif words[:3] == ["modelwire", "plugin", "new"]:
                steps.append(("new", words[3:]))
            elif words[:1] == ["cd"] and len(words) == 2:
                steps.append(("cd", words[1:]))
    return steps if any(kind == "pip" for kind, _ in steps) else []


def collect() -> list[tuple[str, list[Step]]]:
    """(where, steps) for every block or inline span holding a pip install; duplicates once."""
    seen: set[str] = set()
    out: list[tuple[str, list[Step]]] = []
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT).as_posix()
        for m in FENCE.finditer(text):
            if m[1] in ("console", "bash", "sh", "shell", ""):
                steps = _steps(m[2], console=m[1] == "console")
                key = repr(steps)
                if steps and key not in seen:
                    seen.add(key)
                    out.append((f"{rel}:{text.count(chr(10), 0, m.start()) + 1}", steps))
        prose = FENCE.sub(lambda m: "\n" * m[0].count("\n"), text)
        for n, line in enumerate(prose.splitlines(), 1):
            if line.lstrip().startswith("|"):
                continue  # tables repeat what a block runs
            for cmd in INLINE.findall(line):
                steps = _steps(cmd)
                if steps and repr(steps) not in seen:
                    seen.add(repr(steps))
                    out.append((f"{rel}:{n}", steps))
    return out


LINES = collect()


def test_install_lines_were_found() -> None:
    assert len(LINES) >= 8


@pytest.mark.parametrize(("where", "steps"), [pytest.param(w, s, id=w) for w, s in LINES])
def test_install_line_runs_in_a_fresh_venv(where: str, steps: list[Step], tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    scratch = tmp_path / "work"
    scratch.mkdir()
    made: dict[str, Path] = {}
    cwd = ROOT
    args = [w for kind, words in steps if kind == "pip" for w in words]
    if any(w.startswith("./") for w in args) and not any(w == "." or w.startswith(".[") for w in args):
        # A page past the quick start assumes modelwire is installed (it is on no index yet).
        steps = [("pip", ["."]), *steps]
    for kind, words in steps:
        if kind == "pip":
            # This venv's pip drives the fresh one (--python): no ensurepip per line.
            cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                   "--disable-pip-version-check", *words]
        elif kind == "new":
            cmd = [str(python.parent / "modelwire"), "plugin", "new", *words, "--dir", str(scratch)]
            made[words[0]] = scratch / words[0]
        else:
            cwd = made.get(words[0], cwd / words[0])
            continue
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, f"{where}: `{shlex.join(cmd)}` in {cwd} failed:\n{proc.stdout}\n{proc.stderr}"
