"""Reading a manifest source: a file, a directory, a URL, git, or ``builtin:NAME``.

A directory contributes its ``*.yaml``, ``*.yml`` and ``*.json`` files
(hidden ones skipped); ``http(s)://`` is fetched with httpx;
``git+URL@REF#PATH`` is fetched with the git CLI into a cache; ``builtin:NAME``
names a manifest shipped with modelwire. Each source becomes a list of
``(label, bytes)``, one entry per document.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from .._errors import NotFoundError

__all__ = ["SUFFIXES", "builtin_names", "read_source", "split_git"]

SUFFIXES = (".yaml", ".yml", ".json")


# -- sources -------------------------------------------------------------------


def _builtin_dir() -> Path:
    here = Path(__file__).parent.parent / "manifests"
    if here.is_dir():
        return here
    # A source checkout (editable install): manifests/ sits at the repo root.
    return Path(__file__).resolve().parents[3] / "manifests"


def builtin_names() -> list[str]:
    """Names accepted by ``builtin:NAME``."""
    folder = _builtin_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SUFFIXES)


def _cache_dir() -> Path:
    root = os.environ.get("MODELWIRE_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modelwire"


def split_git(source: str) -> tuple[str, str, str]:
    """``git+URL@REF#PATH`` -> (URL, REF, PATH); REF defaults to HEAD."""
    rest = source[len("git+") :]
    rest, _, subpath = rest.partition("#")
    url, ref = rest, "HEAD"
    head, sep, tail = rest.rpartition("@")
    # The '@' starts a ref only after the repository path has begun; in
    # ssh://git@host/repo or git@host:repo it is the user part of the URL.
    if sep and "/" in head.split("://", 1)[-1]:
        url, ref = head, tail
    return url, ref or "HEAD", subpath.strip("/")


def _git(*args: str) -> bytes:
    proc = subprocess.run(["git", *args], capture_output=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise OSError(proc.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed")
    return proc.stdout


def _load_git(source: str) -> list[tuple[str, bytes]]:
    url, ref, subpath = split_git(source)
    cache = _cache_dir() / "git" / hashlib.sha256(url.encode()).hexdigest()[:24]
    if not (cache / "HEAD").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--mirror", "--", url, str(cache))
    else:
        _git("--git-dir", str(cache), "fetch", "--quiet", "--prune", "origin")
    commit = _git("--git-dir", str(cache), "rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    listing = _git("--git-dir", str(cache), "ls-tree", "-r", "--name-only", commit, "--", subpath or ".")
    names = [n for n in listing.decode().splitlines() if n]
    if subpath and subpath in names:
        names = [subpath]
    else:
        names = [n for n in names if n.endswith(SUFFIXES)]
    if not names:
        raise FileNotFoundError(f"no manifest at {subpath or '/'} in {url}@{ref}")
    return [
        (f"git+{url}@{ref}#{name}", _git("--git-dir", str(cache), "show", f"{commit}:{name}"))
        for name in sorted(names)
    ]


def _load_url(source: str) -> list[tuple[str, bytes]]:
    import httpx

    try:
        resp = httpx.get(source, timeout=30.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise OSError(f"fetching failed: {type(exc).__name__}: {exc}") from exc
    if resp.is_error:
        raise OSError(f"fetching failed: HTTP {resp.status_code} {resp.reason_phrase}")
    return [(source, resp.content)]


def read_source(source: str | os.PathLike[str]) -> list[tuple[str, bytes]]:
    """A source -> [(label, bytes)], one entry per manifest document."""
    if isinstance(source, str):
        if source.startswith("builtin:"):
            name = source[len("builtin:") :]
            folder = _builtin_dir()
            if name in ("", "*"):
                files = sorted((p for p in folder.iterdir() if p.suffix in SUFFIXES), key=lambda p: p.stem)
                return [(f"builtin:{p.stem}", p.read_bytes()) for p in files]
            for suffix in SUFFIXES:
                candidate = folder / f"{name}{suffix}"
                if candidate.is_file():
                    return [(f"builtin:{name}", candidate.read_bytes())]
            raise NotFoundError(
                f"no built-in manifest {name!r}; built in: {', '.join(builtin_names()) or 'none'}",
                code="MANIFEST_NOT_FOUND",
            )
        if source.startswith("git+"):
            return _load_git(source)
        if source.startswith(("http://", "https://")):
            return _load_url(source)
    path = Path(source)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix in SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise FileNotFoundError(f"no *.yaml, *.yml or *.json files in directory {path}")
        return [(str(p), p.read_bytes()) for p in files]
    return [(str(path), path.read_bytes())]
