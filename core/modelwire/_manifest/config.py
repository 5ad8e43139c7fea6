"""Config discovery: the manifests a user keeps outside any project.

What the ``modelwire`` command and ``Runtime.from_manifests()`` (no
arguments) load, in order, each later source replacing a provider or model
of an earlier one:

1. ``builtin:*`` (the bundled manifests);
2. every ``*.yaml`` / ``*.yml`` / ``*.json`` in ``<config dir>/manifests/``;
3. each entry of ``MODELWIRE_MANIFESTS`` (``os.pathsep``-separated paths or
   sources);
4. the sources given explicitly (``-m FILE``).

``MODELWIRE_NO_CONFIG=1`` (or ``--no-config``, or ``discover=False``) skips
2 and 3. The config directory is platformdirs' ``user_config_dir("modelwire")``,
computed here rather than imported: platformdirs costs an import on every
``modelwire`` start for three lines of logic (tests compare the two).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CONFIG_DIR_VARIABLE",
    "DEFAULT_MODEL_VARIABLE",
    "MANIFESTS_VARIABLE",
    "NO_CONFIG_VARIABLE",
    "config_dir",
    "default_model",
    "default_sources",
    "discovered_sources",
    "split_sources",
]

CONFIG_DIR_VARIABLE = "MODELWIRE_CONFIG_DIR"
MANIFESTS_VARIABLE = "MODELWIRE_MANIFESTS"
NO_CONFIG_VARIABLE = "MODELWIRE_NO_CONFIG"
DEFAULT_MODEL_VARIABLE = "MODELWIRE_DEFAULT_MODEL"
BUILTIN = "builtin:*"

_SUFFIXES = (".yaml", ".yml", ".json")
_SCHEME = re.compile(r"^(?:https?|git\+[a-z]+|builtin)$", re.I)


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$MODELWIRE_CONFIG_DIR``, else platformdirs' ``user_config_dir("modelwire")``."""
    e = _env(env)
    if e.get(CONFIG_DIR_VARIABLE):
        return Path(e[CONFIG_DIR_VARIABLE])
    home = Path(e.get("HOME") or Path.home())
    if sys.platform == "win32":  # pragma: no cover - platformdirs: %LOCALAPPDATA%\author\app
        base = e.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "modelwire" / "modelwire"
    if sys.platform == "darwin":  # pragma: no cover
        return home / "Library" / "Application Support" / "modelwire"
    xdg = e.get("XDG_CONFIG_HOME", "").strip()
    return Path(xdg if xdg else home / ".config") / "modelwire"


def _disabled(env: Mapping[str, str]) -> bool:
    return env.get(NO_CONFIG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def split_sources(value: str, sep: str = os.pathsep) -> list[str]:
    """Split ``MODELWIRE_MANIFESTS``; a URL's ``scheme:`` and ``:port`` survive a ``:`` separator."""
    parts = value.split(sep)
    out: list[str] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        i += 1
        if sep == ":" and _SCHEME.match(part) and i < len(parts):
            part += ":" + parts[i]
            i += 1
            while part.startswith(("http", "git+")) and i < len(parts) and re.match(r"^\d+(/|$)", parts[i]):
                part += ":" + parts[i]
                i += 1
        if part.strip():
            out.append(part.strip())
    return out


def discovered_sources(env: Mapping[str, str] | None = None) -> list[str]:
    """The user's config-dir manifests, then ``MODELWIRE_MANIFESTS``; none when turned off."""
    e = _env(env)
    if _disabled(e):
        return []
    found: list[str] = []
    folder = config_dir(e) / "manifests"
    if folder.is_dir():
        found += sorted(str(p) for p in folder.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    found += split_sources(e.get(MANIFESTS_VARIABLE, ""))
    return found


def default_sources(
    *explicit: str | os.PathLike[str], env: Mapping[str, str] | None = None, discover: bool = True
) -> tuple[list[str | os.PathLike[str]], list[str]]:
    """``(sources, overridable)``: built-ins, discovered, then ``explicit`` (which may replace the others)."""
    base = [BUILTIN, *(discovered_sources(env) if discover else [])]
    explicit_strs = {os.fspath(s) for s in explicit}
    base = [s for s in base if s not in explicit_strs]
    return [*base, *explicit], base


def default_model(env: Mapping[str, str] | None = None) -> str | None:
    """``$MODELWIRE_DEFAULT_MODEL``, else the first line of ``<config dir>/default_model.txt``."""
    e = _env(env)
    name = e.get(DEFAULT_MODEL_VARIABLE, "").strip()
    if name:
        return name
    if _disabled(e):
        return None
    try:
        text = (config_dir(e) / "default_model.txt").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else None
