"""Every code example in README.md and docs/*.md runs here, so the docs cannot rot.

Fenced blocks are collected by language; each is one test, with an id such
as ``docs/providers.md:42`` (the line of its opening fence):

- ``python``: written to a file and run with this interpreter in a scratch
  directory; a block that defines ``test_*`` functions runs under pytest.
- ``bash`` / ``sh`` / ``console``: run with bash against the installed
  ``modelwire`` script. In ``console`` blocks, ``$ `` lines are commands and
  the lines after one are its expected output (stdout and stderr; ``...``
  matches anything, a line of only ``...`` any number of lines). A command
  must exit 0 unless the next command is ``echo $?``. ``pip install X``
  lines are requirements: the test skips when X is not installed.
- ``yaml``: a whole manifest (with ``version:``) is loaded with
  ``modelwire.load_manifests``; a fragment (top-level keys of a manifest, or
  of a provider) is wrapped into one and loaded with the bundled manifests.
- ``toml`` and ``json`` are parsed. Other blocks (``text``, diagrams) are
  prose.

Examples run offline: the environment points every bundled provider's base
URL (``OPENAI_BASE_URL``, ...) at a ``modelwire.testing.ReplayServer``, sets
dummy keys, sends any other HTTP to a dead proxy, and loads a known set of
plugins (``MODELWIRE_LOAD_PLUGINS``).

HTML comments right above a fence adjust a block:

- ``<!-- no-run: REASON -->``: not run; the reason is required.
- ``<!-- requires: DIST, ... -->``: skipped unless these distributions are installed.
- ``<!-- file: NAME -->``: the block is also file NAME in every example's
  directory (blocks naming the same file are joined in order).
- ``<!-- setup: ... -->`` (multi-line): hidden Python run before the block.
- ``<!-- signature: MODULE -->``: a Python block of call signatures, checked
  against ``inspect.signature`` of the names in MODULE.

``<!-- hidden-file: NAME`` + lines + ``-->`` anywhere in a page adds a file
that examples use but the page does not show.

docs/cli.md's reference section is generated from the argument parser:
``python tests/test_docs_examples.py`` regenerates it, and a test fails when
it drifts. docs/api.md must name every entry of ``modelwire.__all__``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CLI_MD = ROOT / "docs" / "cli.md"
API_MD = ROOT / "docs" / "api.md"
MKDOCS_YML = ROOT / "mkdocs.yml"
TIMEOUT = 600  # a safety net, far above the few seconds an example takes (it went over 120 s on a loaded machine)
# Examples run a few at a time: each is mostly a subprocess starting Python.
WORKERS = min(4, (os.cpu_count() or 1) + 1)

PYTHON = {"python", "py", "python3"}
SHELL = {"bash", "sh", "shell", "console"}
CHECKED = PYTHON | SHELL | {"yaml", "yml", "toml", "json"}
MARKERS = {"no-run", "requires", "file", "setup", "signature"}
# Commands a shell example may run; anything else needs a no-run marker.
SHELL_COMMANDS = {"modelwire", "echo", "printf", "cat", "head", "tail", "wc"}
# The plugins examples may use (MODELWIRE_LOAD_PLUGINS): not the broken and
# clashing throwaway plugins the test venv also holds.
DOC_PLUGINS = [
    "modelwire-sse",
    "modelwire-jsonchunk",
    "modelwire-text",
    "modelwire-tiktoken",
    "modelwire-redis",
    "modelwire-upper-lines",
]
# Where each bundled provider's base URL points, and its key variable.
PROVIDER_ENV = {
    "OPENAI_BASE_URL": "openai",
    "ANTHROPIC_BASE_URL": "anthropic",
    "GEMINI_BASE_URL": "gemini",
    "OLLAMA_BASE_URL": "ollama",
    "OPENAI_COMPATIBLE_BASE_URL": "openai",
}
KEYS = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_COMPATIBLE_API_KEY"]


# -- collecting blocks ------------------------------------------------------------------

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*$")
_HIDDEN_FILE = re.compile(
    r"<!--[ \t]*hidden-file:[ \t]*(?P<name>\S+)[ \t]*\n(?P<body>.*?)-->", re.S
)
_MARKER = re.compile(r"<!--[ \t]*(?P<key>[\w-]+)(?::(?P<value>.*?))?[ \t]*-->\Z", re.S)


@dataclass
class Block:
    page: str  # path relative to the repository root
    line: int  # line of the opening fence, 1-based
    lang: str
    code: str
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _markers(lines: list[str], fence_index: int, where: str) -> dict[str, str]:
    """The HTML comments directly above a fence (blank lines between are allowed)."""
    found: dict[str, str] = {}
    i = fence_index - 1
    while i >= 0:
        if not lines[i].strip():
            i -= 1
            continue
        if not lines[i].rstrip().endswith("-->"):
            break
        end = i
        while i >= 0 and "<!--" not in lines[i]:
            i -= 1
        comment = "\n".join(lines[i : end + 1]).strip()
        i -= 1
        if re.match(r"<!--\s*hidden-file:", comment):
            continue
        match = _MARKER.match(comment)
        if match is None or match["key"] not in MARKERS:
            raise ValueError(
                f"{where}: unknown marker {comment[:60]!r}; known: {', '.join(sorted(MARKERS))}"
            )
        value = match["value"] or ""
        found[match["key"]] = (
            textwrap.dedent(value).strip("\n") if match["key"] == "setup" else value.strip()
        )
    return found


def collect(path: Path) -> list[Block]:
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence, lang = m["indent"], m["fence"], m["lang"].lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(
            rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", lines[i]
        ):
            body.append(
                lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip()
            )
            i += 1
        i += 1
        if lang in CHECKED:
            markers = _markers(lines, start, f"{rel}:{start + 1}")
            blocks.append(Block(rel, start + 1, lang, "\n".join(body) + "\n", markers))
    return blocks


def hidden_files(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    return {m["name"]: textwrap.dedent(m["body"]).lstrip("\n") for m in _HIDDEN_FILE.finditer(text)}


BLOCKS = [b for page in PAGES for b in collect(page)]


def _files() -> dict[str, str]:
    """Every file the pages define (hidden files and `file:` blocks), by name."""
    files: dict[str, str] = {}
    for page in PAGES:
        for name, body in hidden_files(page).items():
            if name in files and files[name] != body:
                raise ValueError(f"{page.name}: hidden file {name} is defined twice, differently")
            files[name] = body
    joined: dict[str, list[str]] = {}
    for b in BLOCKS:
        if "file" in b.markers:
            joined.setdefault(b.markers["file"], []).append(b.code)
    for name, parts in joined.items():
        if name in files:
            raise ValueError(f"file {name} is defined both as a hidden file and by a block")
        files[name] = "\n\n".join(parts)
    return files


def _file_upto(block: Block) -> str:
    """The content of a `file:` block's file up to and including this block."""
    parts = []
    for b in BLOCKS:
        if b.markers.get("file") == block.markers["file"]:
            parts.append(b.code)
            if b is block:
                break
    return "\n\n".join(parts)


def _params() -> Iterator[Any]:
    for b in BLOCKS:
        marks = []
        if "no-run" in b.markers:
            marks.append(
                pytest.mark.skip(reason=f"no-run: {b.markers['no-run'] or '(no reason given)'}")
            )
        yield pytest.param(b, id=b.id, marks=marks)


# -- the offline environment --------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from modelwire.testing import ReplayServer

    with ReplayServer(seed=0) as srv:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.endswith(("_API_KEY", "_BASE_URL"))
            and k.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
        }
        env.update({var: srv.url_for(fmt) for var, fmt in PROVIDER_ENV.items()})
        env.update(dict.fromkeys(KEYS, "test-key"))
        # Anything not on loopback goes to a dead proxy and fails at once.
        dead = "http://127.0.0.1:9"
        env.update(
            HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead, NO_PROXY="127.0.0.1,localhost"
        )
        env["MODELWIRE_LOAD_PLUGINS"] = ",".join(DOC_PLUGINS)
        env["MODELWIRE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["COLUMNS"] = "100"
        yield env


@pytest.fixture(scope="module")
def doc_files() -> dict[str, str]:
    return _files()


def _workdir(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    return tmp_path


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str], block: Block
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{block.id}: example did not finish within {TIMEOUT} s\n{exc.stdout or ''}{exc.stderr or ''}"
        )


# -- runners ---------------------------------------------------------------------------------


def run_python(block: Block, cwd: Path, env: dict[str, str]) -> None:
    if "signature" in block.markers:
        check_signatures(block)
        return
    code = _file_upto(block) if "file" in block.markers else block.code
    if "setup" in block.markers:
        code = block.markers["setup"] + "\n\n" + code
    tree = ast.parse(code, filename=block.id)
    if any(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body):
        script = cwd / "test_doc_example.py"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(cwd),
            script.name,
        ]
    else:
        script = cwd / (
            "doc_example.py"
            if "file" not in block.markers
            else f"run_{Path(block.markers['file']).stem}.py"
        )
        cmd = [sys.executable, script.name]
    script.write_text(f"# {block.id}\n{code}", encoding="utf-8")
    proc = _run(cmd, cwd, env, block)
    assert proc.returncode == 0, (
        f"{block.id} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )


def _split_commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) pairs of a shell block."""
    out: list[tuple[str, list[str]]] = []
    lines = block.code.splitlines()
    console = block.lang == "console"
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if console and not line.startswith("$ "):
            if not out:
                raise AssertionError(f"{block.id}: console output before any `$ ` command")
            out[-1][1].append(line)
            continue
        cmd = line[2:] if console else line
        if not cmd.strip() or cmd.lstrip().startswith("#"):
            continue
        while cmd.rstrip().endswith("\\") and i < len(lines):
            cmd = (
                cmd.rstrip()[:-1]
                + " "
                + (lines[i][2:] if console and lines[i].startswith("> ") else lines[i]).strip()
            )
            i += 1
        out.append((cmd, []))
    return out


def _words(cmd: str) -> list[list[str]]:
    """The words of each command of a pipeline, without leading VAR=value assignments."""
    segments = []
    for part in re.split(r"\s*(?:\|\||&&|\||;)\s*", cmd):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
            words.pop(0)
        if words:
            segments.append(words)
    return segments


def _pip_requirements(words: list[str]) -> list[str]:
    dists = []
    for arg in words[2:]:
        if arg.startswith("-"):
            continue
        path = ROOT / arg
        if (path / "pyproject.toml").exists():
            text = (path / "pyproject.toml").read_text(encoding="utf-8")
            dists.append(re.search(r'^name\s*=\s*"([^"]+)"', text, re.M)[1])  # type: ignore[index]
        else:
            dists.append(re.split(r"[\[<>=!~; ]", Path(arg).name.strip("\"'"))[0])
    return dists


def _matches(expected: list[str], actual: str) -> bool:
    pattern = ""
    for line in expected:
        if line.strip() == "...":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += re.escape(line.rstrip()).replace(r"\.\.\.", ".*?") + r"[ \t]*\n"
    text = "\n".join(line.rstrip() for line in actual.splitlines())
    return re.fullmatch(pattern, text.strip("\n") + "\n" if text.strip("\n") else "") is not None


def run_shell(block: Block, cwd: Path, env: dict[str, str]) -> None:
    commands = _split_commands(block)
    runnable: list[tuple[str, list[str]]] = []
    for cmd, expected in commands:
        segments = _words(cmd)
        if segments and segments[0][:2] == ["pip", "install"]:
            missing = [d for d in _pip_requirements(segments[0]) if not _installed(d)]
            if missing:
                pytest.skip(f"needs {', '.join(missing)} installed (`{cmd}`)")
            continue
        for words in segments:
            if words[0] not in SHELL_COMMANDS:
                pytest.fail(
                    f"{block.id}: `{cmd}` runs {words[0]!r}, which the docs tests do not run; "
                    "make it runnable offline or mark the block <!-- no-run: REASON -->"
                )
        runnable.append((cmd, expected))
    assert any(words[0] == "modelwire" for c, _ in runnable for words in _words(c)), (
        f"{block.id}: nothing to run; mark the block <!-- no-run: REASON -->"
    )
    script = ["__rc=0"]
    for n, (cmd, _) in enumerate(runnable):
        script.append(
            f"echo '@@@ {n}'; (exit $__rc); {{ {cmd}\n}} 2>&1; __rc=$?; echo \"@@@ rc $__rc\""
        )
    proc = _run(["bash", "--noprofile", "--norc", "-c", "\n".join(script)], cwd, env, block)
    chunks = re.split(r"^@@@ (\d+)\n", proc.stdout, flags=re.M)[1:]
    results = {}
    for n, chunk in zip(chunks[::2], chunks[1::2], strict=True):
        body, rc = re.match(r"(.*?)@@@ rc (\d+)\n?\Z", chunk, re.S).groups()  # type: ignore[union-attr]
        results[int(n)] = (body, int(rc))
    assert len(results) == len(runnable), (
        f"{block.id}: the script stopped early:\n{proc.stdout}\n{proc.stderr}"
    )
    for n, (cmd, expected) in enumerate(runnable):
        body, rc = results[n]
        checked_by_next = n + 1 < len(runnable) and runnable[n + 1][0].strip() == "echo $?"
        if rc != 0 and not checked_by_next:
            pytest.fail(f"{block.id}: `{cmd}` exited {rc}:\n{body}")
        if expected and not _matches(expected, body):
            pytest.fail(
                f"{block.id}: `{cmd}` printed\n{textwrap.indent(body, '    ')}\n"
                f"but the docs show\n{textwrap.indent(chr(10).join(expected), '    ')}"
            )


def _placeholder_env(text: str, env: dict[str, str]) -> dict[str, str]:
    """The offline environment plus a value for every other ${VAR} a fragment names."""
    extra = {
        name: "http://127.0.0.1:9"
        for name in re.findall(r"\$\{([A-Za-z_]\w*)\}", text)
        if name not in env
    }
    return {**env, **extra}


def run_yaml(block: Block, cwd: Path, env: dict[str, str]) -> None:
    import attrs

    import modelwire
    from modelwire._manifest.model import Manifest, Provider

    doc = yaml.safe_load(block.code)
    assert isinstance(doc, dict), f"{block.id}: a YAML example should be a mapping"
    target = cwd / (block.markers.get("file") or "doc_example.yaml")
    sources: list[str | Path] = []
    if "version" in doc:
        target.write_text(block.code, encoding="utf-8")
    else:
        manifest_keys = {f.name for f in attrs.fields(Manifest)}
        provider_keys = {f.name for f in attrs.fields(Provider)}
        if set(doc) <= manifest_keys:
            wrapped = {"version": 1, **doc}
        elif set(doc) <= provider_keys:
            wrapped = {
                "version": 1,
                "providers": {"example": {"base_url": "http://127.0.0.1:9", **doc}},
            }
        else:
            pytest.fail(
                f"{block.id}: a YAML fragment with keys {sorted(doc)} is neither part of a manifest nor of "
                "a provider; make it one or mark it <!-- no-run: REASON -->"
            )
        target.write_text(yaml.safe_dump(wrapped, sort_keys=False), encoding="utf-8")
        sources.append("builtin:*")  # fragments may use the bundled providers and models
    sources.append(target)
    modelwire.load_manifests(
        *sources, env=_placeholder_env(block.code, env), overridable=sources[:-1]
    )


def run_data(block: Block) -> None:
    if block.lang == "json":
        json.loads(block.code)
        return
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    tomllib.loads(block.code)


# -- signatures --------------------------------------------------------------------------


def _statements(code: str) -> list[str]:
    """Top-level statements of a block that may not parse (signatures with ``*``)."""
    out: list[str] = []
    depth = 0
    for line in code.splitlines():
        bare = re.sub(r"#.*", "", re.sub(r"'[^']*'|\"[^\"]*\"", "''", line))
        if depth == 0 and bare.strip():
            out.append(line)
        elif out:
            out[-1] += "\n" + line
        depth += bare.count("(") + bare.count("[") + bare.count("{")
        depth -= bare.count(")") + bare.count("]") + bare.count("}")
    return out


def _doc_signature(stmt: str) -> tuple[str, ast.arguments]:
    name, rest = re.match(r"\s*([\w.]+)\s*(\(.*)", stmt, re.S).groups()  # type: ignore[union-attr]
    rest = re.sub(r"\)\s*(#.*)?\s*$", ")", rest.strip())
    func = ast.parse(f"def f{rest}: pass").body[0]
    assert isinstance(func, ast.FunctionDef)
    return name, func.args


def _compare(
    where: str, name: str, doc: ast.arguments, real: inspect.Signature, skip_self: bool = False
) -> list[str]:
    params = list(real.parameters.values())[1 if skip_self else 0 :]
    problems = []
    positional = [a.arg for a in doc.posonlyargs + doc.args]
    real_positional = [
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if positional != real_positional:
        problems.append(
            f"{name}: positional parameters {positional} in the docs, {real_positional} in the code"
        )
    kwonly = sorted(a.arg for a in doc.kwonlyargs)
    real_kwonly = sorted(p.name for p in params if p.kind is p.KEYWORD_ONLY)
    if kwonly != real_kwonly:
        problems.append(
            f"{name}: keyword-only parameters differ: only in the docs {sorted(set(kwonly) - set(real_kwonly))}, "
            f"only in the code {sorted(set(real_kwonly) - set(kwonly))}"
        )
    for kind, doc_arg in (
        (inspect.Parameter.VAR_POSITIONAL, doc.vararg),
        (inspect.Parameter.VAR_KEYWORD, doc.kwarg),
    ):
        if (doc_arg is not None) != any(p.kind is kind for p in params):
            problems.append(
                f"{name}: {'*args' if kind is inspect.Parameter.VAR_POSITIONAL else '**kwargs'} differs"
            )
    defaults = dict(
        zip(
            [a.arg for a in doc.args][len(doc.args) - len(doc.defaults) :],
            doc.defaults,
            strict=True,
        )
    )
    defaults.update(
        {a.arg: d for a, d in zip(doc.kwonlyargs, doc.kw_defaults, strict=True) if d is not None}
    )
    by_name = {p.name: p for p in params}
    for arg, node in defaults.items():
        if arg not in by_name:
            continue
        real_default = by_name[arg].default
        if isinstance(node, ast.Constant) and node.value in (..., "…"):
            if real_default is inspect.Parameter.empty:
                problems.append(f"{name}: {arg} has no default in the code")
            continue
        try:
            value = ast.literal_eval(node)
        except ValueError:
            continue  # an expression the docs abbreviate
        if real_default is inspect.Parameter.empty or real_default != value:
            shown = "none" if real_default is inspect.Parameter.empty else repr(real_default)
            problems.append(
                f"{name}: {arg}={ast.unparse(node)} in the docs, default {shown} in the code"
            )
    for p in params:
        if (
            p.default is not inspect.Parameter.empty
            and p.name not in defaults
            and p.name in positional + kwonly
        ):
            problems.append(
                f"{name}: {p.name} has a default in the code ({p.default!r}) the docs do not show"
            )
    return [f"{where}: {p}" for p in problems]


def _resolve(module: Any, dotted: str) -> Any:
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def check_signatures(block: Block) -> None:
    module = importlib.import_module(block.markers["signature"])
    problems: list[str] = []
    try:
        tree: ast.Module | None = ast.parse(block.code)
    except SyntaxError:
        tree = None
    if tree is not None and all(isinstance(n, ast.ClassDef) for n in tree.body):
        for cls in tree.body:
            assert isinstance(cls, ast.ClassDef)
            real = getattr(module, cls.name)
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef):
                    sig = inspect.signature(getattr(real, fn.name))
                    fake = ast.arguments(
                        posonlyargs=[],
                        args=fn.args.args[1:],
                        vararg=fn.args.vararg,
                        kwonlyargs=fn.args.kwonlyargs,
                        kw_defaults=fn.args.kw_defaults,
                        kwarg=fn.args.kwarg,
                        defaults=fn.args.defaults,
                    )
                    problems += _compare(
                        block.id, f"{cls.name}.{fn.name}", fake, sig, skip_self=True
                    )
    else:
        for stmt in _statements(block.code):
            name, args = _doc_signature(stmt)
            problems += _compare(block.id, name, args, inspect.signature(_resolve(module, name)))
    assert not problems, "\n".join(problems)


# -- the tests ------------------------------------------------------------------------------


def execute(block: Block, cwd: Path, env: dict[str, str]) -> None:
    """Run or check one block; raises pytest's skip / fail outcomes."""
    requires = [d.strip() for d in block.markers.get("requires", "").split(",") if d.strip()]
    missing = [d for d in requires if not _installed(d)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} installed")
    if block.lang in PYTHON:
        run_python(block, cwd, env)
    elif block.lang in SHELL:
        run_shell(block, cwd, env)
    elif block.lang in {"yaml", "yml"}:
        run_yaml(block, cwd, env)
    else:
        run_data(block)


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest,
    offline_env: dict[str, str],
    doc_files: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[None]]]:
    """The selected examples, started together: most of the time is subprocesses."""
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_example"
        and item.module is sys.modules[__name__]
    ]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {
            b.id: pool.submit(
                execute, b, _workdir(tmp_path_factory.mktemp("example"), doc_files), offline_env
            )
            for b in selected
            if "no-run" not in b.markers
        }
        try:
            yield futures
        finally:
            for future in futures.values():
                future.cancel()


@pytest.mark.parametrize("block", list(_params()))
def test_example(block: Block, outcomes: dict[str, Future[None]]) -> None:
    outcomes[block.id].result()  # re-raises the example's failure or skip here


def test_no_run_markers_give_a_reason() -> None:
    """Every block that is not run says why; the list is the report."""
    no_run = [(b.id, b.markers["no-run"]) for b in BLOCKS if "no-run" in b.markers]
    for where, reason in no_run:
        assert len(reason.split()) >= 2, (
            f"{where}: <!-- no-run: ... --> needs a reason, got {reason!r}"
        )
    print("\n".join(f"{where}: {reason}" for where, reason in no_run))


def test_examples_were_found() -> None:
    langs = {b.lang for b in BLOCKS}
    assert {"python", "yaml", "console", "bash"} <= langs
    assert len(BLOCKS) > 40


# -- CLI reference ------------------------------------------------------------------------

CLI_BEGIN, CLI_END = "<!-- cli:begin -->", "<!-- cli:end -->"


def _arg_name(action: argparse.Action) -> str:
    # As argparse's own formatter writes them in `--help`, so the two never disagree.
    formatter = argparse.HelpFormatter("modelwire")
    if not action.option_strings:
        return formatter._format_args(action, action.dest)
    takes_value = action.nargs != 0
    value = formatter._format_args(action, action.dest.upper()) if takes_value else ""
    names = sorted(action.option_strings, key=lambda s: (not s.startswith("--"), s))
    return ", ".join(f"{n} {value}" if takes_value else n for n in names)


def _default(action: argparse.Action) -> str:
    if action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0:
        return ""
    return f"`{action.default}`"


def _command_md(
    prog: str, parser: argparse.ArgumentParser, help_text: str | None, level: int
) -> list[str]:
    out = [f"{'#' * level} `{prog}`", ""]
    if help_text or parser.description:
        out += [(parser.description or help_text or "").strip(), ""]
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    subs = [a for a in actions if isinstance(a, argparse._SubParsersAction)]
    usage = [prog]
    if any(a.option_strings for a in actions):
        usage.append("[OPTIONS]")
    for a in actions:
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction):
            usage.append(_arg_name(a))
    if subs:
        usage.append("COMMAND ...")
    out += ["```text", " ".join(usage), "```", ""]
    rows = [a for a in actions if not isinstance(a, argparse._SubParsersAction)]
    if rows:
        out += ["| argument | meaning | default |", "|---|---|---|"]
        for a in rows:
            meaning = (a.help or "").replace("|", "\\|")
            if isinstance(a, argparse._VersionAction):
                meaning = "print the version and exit"
            if a.choices and not isinstance(a.choices, dict):
                meaning += "; one of " + ", ".join(f"`{c}`" for c in a.choices)
            required = " (required)" if a.option_strings and a.required else ""
            out.append(f"| `{_arg_name(a)}` | {meaning}{required} | {_default(a)} |")
        out.append("")
    for sub in subs:
        helps = {ca.dest: ca.help for ca in sub._choices_actions}
        if level == 2:
            out += ["| command | what it does |", "|---|---|"]
            out += [
                f"| [`{name}`](#{'modelwire-' + name}) | {helps.get(name) or ''} |"
                for name in sub.choices
            ]
            out.append("")
        for name, child in sub.choices.items():
            out += _command_md(f"{prog} {name}", child, helps.get(name), level + 1)
    return out


def cli_reference() -> str:
    from modelwire._cli.main import build_parser

    return "\n".join(_command_md("modelwire", build_parser(), None, 2)).rstrip() + "\n"


def _cli_section(text: str) -> str:
    return text.split(CLI_BEGIN, 1)[1].split(CLI_END, 1)[0].strip("\n") + "\n"


def test_cli_reference_is_current() -> None:
    expected = cli_reference()
    assert _cli_section(CLI_MD.read_text(encoding="utf-8")) == expected, (
        "docs/cli.md is out of date with the CLI: run `python tests/test_docs_examples.py`"
    )


def write_cli_reference() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    head, rest = text.split(CLI_BEGIN, 1)
    tail = rest.split(CLI_END, 1)[1]
    CLI_MD.write_text(f"{head}{CLI_BEGIN}\n{cli_reference()}{CLI_END}{tail}", encoding="utf-8")


# -- API reference and site navigation ------------------------------------------------------


def test_api_page_names_every_public_name() -> None:
    import modelwire

    documented = set(
        re.findall(r"^::: modelwire\.(\w+)\s*$", API_MD.read_text(encoding="utf-8"), re.M)
    )
    missing = sorted(set(modelwire.__all__) - documented)
    unknown = sorted(documented - set(modelwire.__all__))
    assert not missing, f"docs/api.md lacks `::: modelwire.NAME` for {missing}"
    assert not unknown, f"docs/api.md documents names not in modelwire.__all__: {unknown}"


def _nav_pages(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _nav_pages(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _nav_pages(value)


def test_every_page_is_in_the_site_nav() -> None:
    config = yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8").replace("!!python/name:", ""))
    nav = set(_nav_pages(config["nav"]))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert not pages - nav, f"docs pages missing from mkdocs.yml's nav: {sorted(pages - nav)}"
    assert not nav - pages, f"mkdocs.yml's nav names pages that do not exist: {sorted(nav - pages)}"


if __name__ == "__main__":
    write_cli_reference()
    print(f"wrote {CLI_MD.relative_to(ROOT)}")
