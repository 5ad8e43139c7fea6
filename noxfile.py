"""Developer sessions: tests, lint, typecheck, demo, bench.

``nox -s tests`` is the README's test command and what CI runs: it installs
the core and every plugin as real distributions (entry points and all) into
a fresh virtualenv, plus the throwaway third-party plugin under tests/.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = False

ROOT = Path(__file__).parent
PLUGINS = sorted(str(p) for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
TEST_PLUGINS = sorted(
    str(p) for p in (ROOT / "tests" / "plugins").iterdir() if (p / "pyproject.toml").exists()
) if (ROOT / "tests" / "plugins").is_dir() else []


def _install(session: nox.Session, *extra: str) -> None:
    session.install("-e", ".[test]", *[arg for p in PLUGINS for arg in ("-e", p)], *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """Core and plugin tests in a venv with everything installed for real."""
    _install(session, *TEST_PLUGINS)
    # One worker per core (xdist): the suite is mostly loopback I/O and
    # subprocesses, and tests synchronise on events, so workers stay independent.
    # `nox -s tests -- -n 0` runs serially; any -n in posargs wins.
    workers = [] if any(a.startswith("-n") for a in session.posargs) else ["-n", "auto"]
    # The install lines of the docs have their own session (minutes of pip).
    marks = [] if "-m" in session.posargs else ["-m", "not install"]
    session.run(
        "python", "-m", "pytest", "tests", *[f"{p}/tests" for p in PLUGINS],
        *workers, *marks, *session.posargs,
    )


@nox.session
def install_lines(session: nox.Session) -> None:
    """Every `pip install` line of the README, docs/ and examples/, each in a fresh venv."""
    _install(session)
    session.run(
        "python", "-m", "pytest", "tests/test_install_lines.py", "-m", "install", "-n", "auto",
        "-p", "no:cacheprovider", *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the layers contract (import-linter; the layers are in pyproject.toml)."""
    session.install("ruff", "import-linter>=2.1")
    session.install("-e", ".", "--no-deps")
    session.run("ruff", "check", "core", "plugins", "tests", "benchmarks", "noxfile.py")
    session.run("lint-imports", "--no-cache")


@nox.session
def typecheck(session: nox.Session) -> None:
    _install(session, "mypy", "types-PyYAML", "types-jsonschema")
    session.run("mypy", "core/modelwire", *[f"{p}/src" for p in PLUGINS])


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing of the money path (mutmut; config in pyproject [tool.mutmut]).

    Not a default session. mutmut maps ``src/<pkg>`` to module names, so the
    session links ``src -> core`` for the run. Prints the score per module.
    """
    _install(session, *TEST_PLUGINS, "mutmut>=3.3,<4")
    # The link is removed afterwards rather than git-ignored: a `/src` line in
    # .gitignore makes hatchling leave plugins/*/src out of the plugin wheels.
    link = ROOT / "src"
    made = not link.exists()
    if made:
        link.symlink_to("core", target_is_directory=True)
    try:
        session.run("mutmut", "run", "--max-children", "2", *session.posargs)
        session.run("python", str(ROOT / "tests" / "mutmut_score.py"))
    finally:
        if made:
            link.unlink()


@nox.session
def demo(session: nox.Session) -> None:
    """The README's first command: an offline demo against loopback providers."""
    _install(session)
    session.run("modelwire", "demo")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against peers; prints a table, writes benchmarks/results/.

    The gateway section compares against LiteLLM's proxy, installed here only
    (``litellm[proxy]``); if it cannot be installed the section says so and
    measures modelwire alone.
    """
    _install(session, "openai", "anthropic", "httpx-sse", "httptools", "uvloop")
    only = session.posargs[session.posargs.index("--only") + 1:] if "--only" in session.posargs else None
    if only is None or "gateway" in only:
        session.run("python", "-m", "pip", "install", "-q", "litellm[proxy]", success_codes=[0, 1])
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with MkDocs in strict mode (any warning fails).

    mkdocstrings reads core/modelwire statically (griffe), so modelwire itself
    is not installed here; the docs' code examples run in tests/test_docs_examples.py.
    ``nox -s docs -- --site-dir DIR`` builds elsewhere (default: site/).
    """
    session.install("mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "ruff")
    session.run(
        "mkdocs", "build", "--strict", *(session.posargs or ["--site-dir", "site"]),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
