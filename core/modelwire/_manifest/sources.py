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
import re
import subprocess
import time
import zlib
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import attrs

from .._errors import NotFoundError

__all__ = ["SUFFIXES", "FetchLimits", "builtin_names", "is_remote", "read_source", "split_git"]

SUFFIXES = (".yaml", ".yml", ".json")
_BUILTIN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


@attrs.frozen
class FetchLimits:
    """Bounds on fetching a manifest from a URL (and on a file read from git).

    ``max_bytes`` caps the body after decompression; ``deadline`` (seconds)
    caps the whole fetch, redirects included (one stalled read may add up
    to ``read_timeout``); redirects stay on the same host (an ``https`` URL
    never drops to ``http``) unless the target host is in ``redirect_hosts``,
    and at most ``max_redirects`` are followed.
    """

    max_bytes: int = 4 * 1024 * 1024
    deadline: float = 30.0
    read_timeout: float = 10.0
    max_redirects: int = 5
    redirect_hosts: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)


def is_remote(source: str | os.PathLike[str]) -> bool:
    """True for a source fetched from elsewhere: ``http(s)://`` or ``git+``."""
    return isinstance(source, str) and source.startswith(("http://", "https://", "git+"))


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


def _load_git(source: str, limits: FetchLimits) -> list[tuple[str, bytes]]:
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
    out = []
    for name in sorted(names):
        blob = f"{commit}:{name}"
        size = int(_git("--git-dir", str(cache), "cat-file", "-s", blob).decode().strip() or 0)
        if size > limits.max_bytes:
            raise OSError(f"{name} is {size} bytes; the limit is {limits.max_bytes}")
        out.append((f"git+{url}@{ref}#{name}", _git("--git-dir", str(cache), "cat-file", "blob", blob)))
    return out


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _redirect_allowed(current: str, target: str, limits: FetchLimits) -> bool:
    scheme, host, port = _origin(current)
    new_scheme, new_host, new_port = _origin(target)
    if new_scheme not in ("http", "https") or (scheme == "https" and new_scheme == "http"):
        return False
    if new_host in limits.redirect_hosts:
        return True
    same_port = new_port == port or (scheme, new_scheme) == ("http", "https")
    return new_host == host and same_port


class _Decoder:
    """Content-Encoding undone a bounded piece at a time, so a gzip bomb never inflates."""

    def __init__(self, encoding: str) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise OSError(f"fetching failed: unsupported Content-Encoding {encoding!r}")
        self.zlib = None
        if codings:
            # gzip: 16 + window; deflate (RFC 9110: zlib format): window alone.
            self.zlib = zlib.decompressobj(31 if "gzip" in codings[0] else 15)

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to ``room + 1`` decoded bytes (one more than fits means too big)."""
        if self.zlib is None:
            return data[: room + 1]
        try:
            out = self.zlib.decompress(self.zlib.unconsumed_tail + data, room + 1)
        except zlib.error as exc:
            raise OSError(f"fetching failed: bad compressed body: {exc}") from None
        return out


def _load_url(source: str, limits: FetchLimits) -> list[tuple[str, bytes]]:
    import httpx

    start = time.monotonic()
    timeout = httpx.Timeout(min(limits.read_timeout, limits.deadline))

    def left() -> float:
        remaining = limits.deadline - (time.monotonic() - start)
        if remaining <= 0:
            raise OSError(f"fetching failed: no complete response within {limits.deadline:g} s")
        return remaining

    url = source
    headers = {"Accept-Encoding": "gzip, deflate"}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, headers=headers) as client:
            for _hop in range(limits.max_redirects + 1):
                left()
                with client.stream("GET", url) as resp:
                    if resp.is_redirect:
                        target = urljoin(url, resp.headers.get("location", ""))
                        if not _redirect_allowed(url, target, limits):
                            raise OSError(
                                f"fetching failed: redirect to another host refused: {target}"
                                " (FetchLimits.redirect_hosts allows a host)"
                            )
                        url = target
                        continue
                    if resp.is_error:
                        # The body is never shown: an internal page could hold keys.
                        raise OSError(
                            f"fetching failed: HTTP {resp.status_code} {resp.reason_phrase}"
                        )
                    decoder = _Decoder(resp.headers.get("content-encoding", ""))
                    body = bytearray()
                    for chunk in resp.iter_raw():
                        left()
                        while True:
                            body += decoder.feed(chunk, limits.max_bytes - len(body))
                            if len(body) > limits.max_bytes:
                                raise OSError(
                                    f"fetching failed: the body is larger than {limits.max_bytes}"
                                    " bytes once decompressed"
                                )
                            if decoder.zlib is None or not decoder.zlib.unconsumed_tail:
                                break
                            chunk = b""
                    left()
                    return [(source, bytes(body))]
            raise OSError(f"fetching failed: more than {limits.max_redirects} redirects")
    except httpx.HTTPError as exc:
        raise OSError(f"fetching failed: {type(exc).__name__}: {exc}") from exc


def read_source(
    source: str | os.PathLike[str], limits: FetchLimits | None = None
) -> list[tuple[str, bytes]]:
    """A source -> [(label, bytes)], one entry per manifest document."""
    limits = limits or FetchLimits()
    if isinstance(source, str):
        if source.startswith("builtin:"):
            name = source[len("builtin:") :]
            folder = _builtin_dir()
            if name not in ("", "*") and not _BUILTIN_NAME.fullmatch(name):
                # A name, never a path: builtin:../../x must not read any file.
                raise NotFoundError(
                    f"bad built-in manifest name {name!r} (a name is [a-z0-9][a-z0-9_-]*, or *);"
                    f" built in: {', '.join(builtin_names()) or 'none'}",
                    code="MANIFEST_NOT_FOUND",
                )
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
            return _load_git(source, limits)
        if source.startswith(("http://", "https://")):
            return _load_url(source, limits)
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
