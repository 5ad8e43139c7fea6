"""What an embedding app can rely on: importing modelwire has no side
effects, runtimes are isolated, and creating and closing them leaks nothing."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import modelwire
from modelwire.testing import ReplayServer, Script

IMPORT_PROBE = r"""
import logging, os, signal, sys, threading

opened = []
def audit(event, args):
    if event == "open":
        path = str(args[0])
        # Reading our own code (and the stdlib's) is importing, not configuration.
        if not path.endswith((".py", ".pyc", ".so", ".pth")) and "__pycache__" not in path:
            opened.append(path)
sys.addaudithook(audit)

handlers_before = {name: list(logging.getLogger(name).handlers) for name in ("", "modelwire")}
signals_before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
threads_before = threading.active_count()

import modelwire
modelwire.Frame, modelwire.ParseError, modelwire.hookimpl   # the light surface

assert {name: list(logging.getLogger(name).handlers) for name in ("", "modelwire")} == handlers_before, "logging handlers"
assert {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} == signals_before, "signal handlers"
assert threading.active_count() == threads_before, "threads"
assert "prometheus_client" not in sys.modules, "metrics registry"
assert not opened, f"files read: {opened}"
print("clean")
"""


def test_import_has_no_side_effects() -> None:
    proc = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clean"


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=12) as srv:
        yield srv


def test_two_runtimes_do_not_see_each_other(server: ReplayServer, tmp_path: Path) -> None:
    a_file, b_file = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a_file.write_text("version: 1\nmodels:\n  only-in-a: {provider: openai, id: a-model}\n")
    b_file.write_text("version: 1\nmodels:\n  only-in-b: {provider: openai, id: b-model}\n")
    env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k"}

    class Shout:
        @modelwire.hookimpl
        def register_tokenizers(self, register: object) -> None:
            register("shout", type("T", (), {"name": "shout", "count": staticmethod(lambda text: 1)})())  # type: ignore[operator]

    plugins_a = modelwire.Plugins(only=["modelwire-sse", "modelwire-jsonchunk", "modelwire-text"])
    plugins_a.register(Shout(), name="shout")
    plugins_b = modelwire.Plugins(only=["modelwire-sse", "modelwire-jsonchunk", "modelwire-text"])
    metrics_a, metrics_b = modelwire.Metrics(), modelwire.Metrics()
    rt_a = modelwire.Runtime.from_manifests("builtin:openai", a_file, env=env, plugins=plugins_a, metrics=metrics_a)
    rt_b = modelwire.Runtime.from_manifests("builtin:openai", b_file, env=env, plugins=plugins_b, metrics=metrics_b)
    assert "only-in-a" in rt_a.catalog.models and "only-in-a" not in rt_b.catalog.models
    assert "shout" in plugins_a.names("tokenizer") and "shout" not in plugins_b.names("tokenizer")
    server.push(Script(text="for a", usage=(7, 3)))

    async def go() -> None:
        async with rt_a, rt_b:
            await rt_a.generate("only-in-a", "hi")
            with pytest.raises(modelwire.NotFoundError):
                await rt_b.generate("only-in-a", "hi")

    anyio.run(go)
    assert 'model="only-in-a"' in metrics_a.render().decode()
    assert "only-in-a" not in metrics_b.render().decode()
    assert rt_a.totals.input_tokens == 7 and rt_b.totals.input_tokens == 0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_create_and_close_a_thousand_runtimes(server: ReplayServer) -> None:
    env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k"}
    catalog = modelwire.load_manifests("builtin:openai", env=env)
    plugins = modelwire.Plugins(only=["modelwire-sse", "modelwire-jsonchunk", "modelwire-text"])
    server.default = Script(text="x", usage=(1, 1), chunk_size=None)

    async def cycle(n: int) -> None:
        for i in range(n):
            rt = modelwire.Runtime(catalog, env=env, plugins=plugins)
            async with rt:
                if i % 100 == 0:  # a real call now and then: the client is made lazily, then closed
                    await rt.generate("gpt-4.1-mini", "hi")

    anyio.run(cycle, 100)  # warm up caches and the allocator
    gc.collect()
    fds, rss = _open_fds(), _rss_kib()
    anyio.run(cycle, 1000)
    gc.collect()
    assert _open_fds() <= fds + 2  # no sockets left behind
    assert _rss_kib() - rss < 20 * 1024  # flat within noise (no per-runtime leak)


def test_clients_are_created_lazily(server: ReplayServer) -> None:
    rt = modelwire.Runtime.from_manifests("builtin:openai", env={"OPENAI_API_KEY": "k"})
    assert rt._client is None  # no HTTP client (and no SSL context) until a call needs one


def test_environment_beats_configuration(server: ReplayServer, tmp_path: Path) -> None:
    """Keys and base URLs come from the environment over the manifest's defaults."""
    server.push(Script(text="via env"))
    rt = modelwire.Runtime.from_manifests(
        "builtin:openai", env={"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "from-env"}
    )

    async def go() -> str:
        async with rt:
            return (await rt.generate("gpt-4.1-mini", "hi")).text

    assert anyio.run(go) == "via env"
    assert server.requests[-1].headers["authorization"] == "Bearer from-env"
