"""Import time in fresh processes, and what ``import modelwire`` spends it on.

Each figure is the wall time of ``python -c "import X"`` minus the median of
``python -c "pass"``, over interleaved runs. Bytecode is cached for every
module alike: the environment may set PYTHONDONTWRITEBYTECODE (editable
installs then recompile modelwire from source on every start, while pip
compiled the peers' bytecode at install), so the runs use a private
PYTHONPYCACHEPREFIX, filled by one discarded warm-up run per module.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

__all__ = ["IMPORTS", "import_times", "importtime_top"]

#: key -> (statement, environment additions)
IMPORTS: dict[str, tuple[str, dict[str, str]]] = {
    "modelwire": ("import modelwire", {}),
    "openai": ("import openai", {}),
    "anthropic": ("import anthropic", {}),
    # litellm fetches its model price map over the network at import unless told not to.
    "litellm": ("import litellm", {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}),
    "httpx": ("import httpx", {}),
    # Time to a usable runtime: manifests loaded and plugins discovered.
    "modelwire_ready": (
        "import modelwire; modelwire.Runtime(modelwire.load_manifests('builtin:*', env={}))",
        {},
    ),
}


def _env(cache: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    env.update(extra)
    return env


def _run(stmt: str, env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", stmt], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def available(key: str) -> bool:
    stmt = IMPORTS[key][0].split(";")[0]
    module = stmt.split()[-1]
    import importlib.util

    return importlib.util.find_spec(module) is not None


def import_times(runs: int, cache: str | None = None) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds per fresh import (interpreter start subtracted), ``runs`` each, interleaved."""
    skipped: dict[str, str] = {}
    keys = []
    for key in IMPORTS:
        if available(key):
            keys.append(key)
        else:
            skipped[key] = "not installed"
    with tempfile.TemporaryDirectory(prefix="mw-bench-pyc-") as tmp:
        cache = cache or tmp
        envs = {key: _env(cache, IMPORTS[key][1]) for key in keys}
        base_env = _env(cache, {})
        for key in keys:  # warm-up: compile and cache bytecode, discard the time
            try:
                _run(IMPORTS[key][0], envs[key])
            except subprocess.CalledProcessError as exc:
                skipped[key] = f"import failed (exit {exc.returncode})"
        keys = [k for k in keys if k not in skipped]
        _run("pass", base_env)
        empty: list[float] = []
        raw: dict[str, list[float]] = {key: [] for key in keys}
        for _ in range(runs):
            empty.append(_run("pass", base_env))
            for key in keys:
                raw[key].append(_run(IMPORTS[key][0], envs[key]))
    start = statistics.median(empty)
    out = {key: [max(0.0, t - start) for t in values] for key, values in raw.items()}
    out["_interpreter_start"] = empty
    return out, skipped


_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def importtime_top(stmt: str = "import modelwire", n: int = 12) -> list[dict[str, Any]]:
    """Where ``stmt`` spends its import time: self µs summed per top-level package
    (``-X importtime``), largest first."""
    with tempfile.TemporaryDirectory(prefix="mw-bench-pyc-") as tmp:
        env = _env(tmp, {})
        _run(stmt, env)
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", stmt], env=env,
                              capture_output=True, text=True, check=True)
    by_root: dict[str, list[int]] = {}
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if m:
            root = m.group(4).split(".")[0]
            slot = by_root.setdefault(root, [0, 0])
            slot[0] += int(m.group(1))
            slot[1] += 1
    rows = [{"package": k, "self_us": v[0], "modules": v[1]} for k, v in by_root.items()]
    rows.sort(key=lambda r: -r["self_us"])
    return rows[:n]
