"""Shared fixtures for the core tests.

The test virtualenv holds real distributions (see noxfile.py): the parser
plugins under plugins/ and three throwaway ones under tests/plugins/:

- ``modelwire-upper-lines``: a well-behaved parser plugin (``upper-lines``);
- ``modelwire-broken-plugin``: its module raises ImportError when imported;
- ``modelwire-upper-lines-clash``: claims ``upper-lines`` too, plus ``lower-lines``.

So the default plugin manager of this venv always reports one load error and
one name conflict. Tests that want a clean view build ``Plugins(only=[...])``
or run the CLI with ``MODELWIRE_LOAD_PLUGINS``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import modelwire
from modelwire import Plugins

from core_helpers import UPPER, git, run_cli

# Hypothesis: timing must not matter (no deadlines), and CI runs a fixed,
# derandomised set of examples (set CI to select it; locally examples vary).
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _restore_default_plugins() -> Iterator[None]:
    """Whatever a test does with set_plugins(), the next one sees the same default."""
    previous = modelwire.set_plugins(None)
    modelwire.set_plugins(previous)
    yield
    modelwire.set_plugins(previous)


@pytest.fixture
def upper_plugins() -> Plugins:
    """Only the real third-party plugin (plus the built-ins), through its entry point."""
    return Plugins(only=[UPPER])


@pytest.fixture
def bare_plugins() -> Plugins:
    """An isolated manager: built-ins only, no entry points."""
    return Plugins(entry_points=False)


@pytest.fixture
def cli() -> Any:
    """Run the installed ``modelwire`` script (see core_helpers.run_cli)."""
    return run_cli


# -- manifests on disk, over HTTP, in git ----------------------------------------------


@pytest.fixture
def write(tmp_path: Path) -> Any:
    """``write("a.yaml", text)`` -> the path of a new file under tmp_path."""

    def write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a fresh directory: (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def git_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MODELWIRE_CACHE_DIR pointed into tmp_path."""
    if shutil.which("git") is None:  # pragma: no cover
        pytest.skip("the git CLI is not installed")
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELWIRE_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def bare_repo(tmp_path: Path, git_cache: Path) -> Any:
    """``bare_repo({path: text, ...}, tag=None)`` -> a local bare repository with one commit.

    Call it again to add a commit to the same repository; returns (bare path, commit sha).
    """
    work = tmp_path / "work"
    bare = tmp_path / "origin.git"

    def commit(files: dict[str, str], tag: str | None = None) -> tuple[Path, str]:
        if not bare.exists():
            git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
            git("clone", "--quiet", str(bare), str(work))
            git("checkout", "--quiet", "-B", "main", cwd=work)
        for name, text in files.items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        git("add", "-A", cwd=work)
        git("commit", "--quiet", "-m", "manifests", cwd=work)
        if tag:
            git("tag", tag, cwd=work)
        git("push", "--quiet", "--tags", "origin", "main", cwd=work)
        return bare, git("rev-parse", "HEAD", cwd=work)

    return commit
