"""Small helpers: statistics, RSS, machine and package facts."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["figure", "machine", "packages", "percentile", "rss_kib", "source"]

PACKAGES = (
    "modelwire", "modelwire-sse", "modelwire-jsonchunk", "modelwire-text", "openai", "anthropic",
    "httpx", "httpx2", "httpcore", "httpx-sse", "litellm", "anyio", "jmespath", "attrs", "cattrs",
    "pluggy", "pydantic", "pyyaml",
)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def figure(values: Sequence[float], unit: str, **extra: Any) -> dict[str, Any]:
    """A measured figure: median and spread (IQR, min, max) over its samples."""
    vals = [float(v) for v in values]
    out: dict[str, Any] = {
        "unit": unit,
        "median": statistics.median(vals),
        "q1": percentile(vals, 25),
        "q3": percentile(vals, 75),
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
    }
    out["iqr"] = out["q3"] - out["q1"]
    out.update(extra)
    return out


def rss_kib() -> int | None:
    """Resident set size of this process in KiB (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def packages() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": None,
        "load_average_at_start": None,
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def source() -> dict[str, Any]:
    """The git commit measured, and which core files differed from it (editable installs)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.rstrip() if proc.returncode == 0 else None

    dirty = git("status", "--porcelain", "--", "core", "plugins", "manifests")
    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted": [line[3:] for line in dirty.splitlines()] if dirty else [],
    }
