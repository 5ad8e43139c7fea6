"""Helpers shared by the core tests (a plain module: test modules import it by name).

Kept out of conftest.py because several conftest.py files (core and plugin
tests) share one pytest run, and ``import conftest`` would be ambiguous.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPPER = "modelwire-upper-lines"
BROKEN = "modelwire-broken-plugin"
CLASH = "modelwire-upper-lines-clash"
PARSER_DISTS = ("modelwire-sse", "modelwire-jsonchunk", "modelwire-text")


def _clean_plugins() -> tuple[str, ...]:
    dists = {ep.dist.name for ep in metadata.entry_points(group="modelwire") if ep.dist is not None}
    return tuple(sorted(dists - {BROKEN, CLASH}))


#: every installed plugin distribution but the two broken on purpose (for MODELWIRE_LOAD_PLUGINS)
CLEAN_PLUGINS = _clean_plugins()


def modelwire_script() -> str:
    """The ``modelwire`` console script of the venv running the tests."""
    script = Path(sys.executable).parent / ("modelwire.exe" if os.name == "nt" else "modelwire")
    if not script.exists():  # pragma: no cover - a broken test venv
        pytest.fail(f"console script not installed at {script}; install modelwire into this venv")
    return str(script)


def run_cli(
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    plugins: tuple[str, ...] | None = CLEAN_PLUGINS,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``modelwire`` script; ``plugins`` sets MODELWIRE_LOAD_PLUGINS (None: unset)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    # The user's own config dir (manifests, default model) never leaks into a test.
    full_env["XDG_CONFIG_HOME"] = str(ROOT / "tests" / "fixtures" / "no-config-dir")
    if plugins is not None:
        full_env["MODELWIRE_LOAD_PLUGINS"] = ",".join(plugins)
    full_env.update(env or {})
    proc = subprocess.run(
        [modelwire_script(), *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8"),
        proc.stderr.decode("utf-8"),
    )


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return proc.stdout.strip()


#: The four bundled wire formats as tests drive them:
#: (format, model, base-URL variable, API-key variable or None).
PROVIDERS = [
    ("openai", "gpt-4.1-mini", "OPENAI_BASE_URL", "OPENAI_API_KEY"),
    ("anthropic", "claude-haiku-4-5", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
    ("gemini", "gemini-2.5-flash", "GEMINI_BASE_URL", "GEMINI_API_KEY"),
    ("ollama", "llama3.2", "OLLAMA_BASE_URL", None),
]


def provider_env(server: object) -> dict[str, str]:
    """Base URLs pointing every bundled provider at a ReplayServer, and one key each."""
    out: dict[str, str] = {}
    for fmt, _model, base_var, key_var in PROVIDERS:
        out[base_var] = server.url_for(fmt)  # type: ignore[attr-defined]
        if key_var:
            out[key_var] = f"key-for-{fmt}"
    return out
