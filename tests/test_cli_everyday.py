"""Everyday use through the real ``modelwire`` script: config discovery, ``models``,
default model, stdin, retries shown, ``-u``, one-run ``check``, the testing server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelwire import Runtime
from modelwire._manifest.config import config_dir, split_sources
from modelwire.testing import ReplayServer, Script

from core_helpers import run_cli

MODEL_YAML = "version: 1\nmodels:\n  {name}: {{provider: openai, id: {id}}}\n"


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=3) as srv:
        yield srv


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An XDG_CONFIG_HOME holding modelwire/manifests/mine.yaml (model 'mine' -> gpt-mine)."""
    folder = tmp_path / "xdg" / "modelwire" / "manifests"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text(MODEL_YAML.format(name="mine", id="gpt-mine"), encoding="utf-8")
    (folder / "notes.txt").write_text("not a manifest", encoding="utf-8")
    return tmp_path / "xdg"


def openai_env(server: ReplayServer, **more: str) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k", **more}


# -- config discovery -------------------------------------------------------------------


def test_config_dir_manifests_load_without_m(server: ReplayServer, home: Path) -> None:
    server.push(Script(text="found you"))
    proc = run_cli("call", "mine", "hi", env=openai_env(server, XDG_CONFIG_HOME=str(home)))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "found you\n", "")
    assert server.requests[-1].json["model"] == "gpt-mine"


@pytest.mark.parametrize(
    "off", [pytest.param(["--no-config"], id="flag"), pytest.param([], id="MODELWIRE_NO_CONFIG")]
)
def test_discovery_can_be_turned_off(home: Path, off: list[str]) -> None:
    env = {"XDG_CONFIG_HOME": str(home), **({} if off else {"MODELWIRE_NO_CONFIG": "1"})}
    proc = run_cli("call", "mine", "hi", *off, env=env)
    assert proc.returncode == 1
    assert "unknown model 'mine'" in proc.stderr and "Traceback" not in proc.stderr


def test_modelwire_manifests_later_entries_win(server: ReplayServer, home: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(MODEL_YAML.format(name="mine", id="from-a"), encoding="utf-8")
    b.write_text(MODEL_YAML.format(name="mine", id="from-b"), encoding="utf-8")
    env = openai_env(server, XDG_CONFIG_HOME=str(home), MODELWIRE_MANIFESTS=os.pathsep.join([str(a), str(b)]))
    server.push(Script(text="ok"))
    assert run_cli("call", "mine", "hi", env=env).returncode == 0
    assert server.requests[-1].json["model"] == "from-b"
    # -m comes last of all.
    c = tmp_path / "c.yaml"
    c.write_text(MODEL_YAML.format(name="mine", id="from-m"), encoding="utf-8")
    server.push(Script(text="ok"))
    assert run_cli("call", "mine", "hi", "-m", str(c), env=env).returncode == 0
    assert server.requests[-1].json["model"] == "from-m"
    sources = run_cli("config", "sources", env=env).stdout.splitlines()
    assert sources == ["builtin:*", str(home / "modelwire" / "manifests" / "mine.yaml"), str(a), str(b)]


def test_config_path(home: Path) -> None:
    proc = run_cli("config", "path", env={"XDG_CONFIG_HOME": str(home)})
    assert (proc.returncode, proc.stdout) == (0, f"{home / 'modelwire' / 'manifests'}\n")


@pytest.mark.parametrize(
    ("value", "sep", "expected"),
    [
        pytest.param("a.yaml:b.yaml", ":", ["a.yaml", "b.yaml"], id="paths"),
        pytest.param("a.yaml::", ":", ["a.yaml"], id="empty-entries"),
        pytest.param("https://h/m.yaml:b.yaml", ":", ["https://h/m.yaml", "b.yaml"], id="url"),
        pytest.param("http://127.0.0.1:8000/m.yaml", ":", ["http://127.0.0.1:8000/m.yaml"], id="url-port"),
        pytest.param("builtin:openai:x.yaml", ":", ["builtin:openai", "x.yaml"], id="builtin"),
        pytest.param(
            "git+https://h/r.git@v1#m.yaml:y", ":", ["git+https://h/r.git@v1#m.yaml", "y"], id="git"
        ),
        pytest.param(r"C:\m.yaml;https://h/m.yaml", ";", [r"C:\m.yaml", "https://h/m.yaml"], id="windows"),
    ],
)
def test_split_sources(value: str, sep: str, expected: list[str]) -> None:
    assert split_sources(value, sep) == expected


@pytest.mark.skipif(sys.platform != "linux", reason="XDG layout")
@pytest.mark.parametrize("xdg", [None, "", "/tmp/elsewhere"])
def test_config_dir_is_platformdirs_user_config_dir(xdg: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    platformdirs = pytest.importorskip("platformdirs")
    if xdg is None:
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    monkeypatch.delenv("MODELWIRE_CONFIG_DIR", raising=False)
    assert config_dir() == Path(platformdirs.user_config_dir("modelwire"))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_from_manifests_without_sources_loads_the_defaults(home: Path, anyio_backend: str) -> None:
    env = {"XDG_CONFIG_HOME": str(home)}
    async with Runtime.from_manifests(env=env) as rt:
        assert rt.catalog.models["mine"].id == "gpt-mine"
        assert "gpt-4.1" in rt.catalog.models  # builtin:*
    async with Runtime.from_manifests(env=env, discover=False) as rt:
        assert "mine" not in rt.catalog.models and "gpt-4.1" in rt.catalog.models
    async with Runtime.from_manifests("builtin:ollama", env=env) as rt:  # explicit: exactly those
        assert set(rt.catalog.providers) == {"ollama"}


# -- models -----------------------------------------------------------------------------


def test_models_json_matches_the_catalog() -> None:
    from modelwire._manifest.catalog import load_manifests

    catalog = load_manifests("builtin:*")
    doc = json.loads(run_cli("models", "--json").stdout)
    assert [r["name"] for r in doc["models"]] == sorted(catalog.models)
    for row in doc["models"]:
        spec = catalog.models[row["name"]]
        assert row["provider"] == spec.provider
        assert row["capabilities"] == list(spec.capabilities)
        assert row["limits"].get("context_window") == spec.limits.context_window
        price = spec.pricing
        assert row["pricing"] == (None if price is None else {
            k: v for k, v in {"input_per_mtok": price.input_per_mtok, "output_per_mtok": price.output_per_mtok,
                              "cached_input_per_mtok": price.cached_input_per_mtok,
                              "cache_write_per_mtok": price.cache_write_per_mtok,
                              "cache_write_1h_per_mtok": price.cache_write_1h_per_mtok,
                              "currency": price.currency}.items() if v is not None
        })


def test_models_by_provider_and_table() -> None:
    proc = run_cli("models", "--provider", "ollama")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split()[:3] == ["model", "provider", "capabilities"]
    assert rows and all(row.split()[1] == "ollama" for row in rows)
    bad = run_cli("models", "--provider", "nope")
    assert bad.returncode == 1 and bad.stderr.startswith("error: unknown provider 'nope'; known: ")


def test_models_include_discovered(home: Path) -> None:
    doc = json.loads(run_cli("models", "--json", env={"XDG_CONFIG_HOME": str(home)}).stdout)
    mine = [r for r in doc["models"] if r["name"] == "mine"]
    assert mine and mine[0]["id"] == "gpt-mine" and mine[0]["source"].endswith("mine.yaml")


# -- call: default model, stdin, -u, --no-stream, retries ---------------------------------


def test_default_model_and_prompt_from_stdin(server: ReplayServer) -> None:
    server.push(Script(text="from default"))
    env = openai_env(server, MODELWIRE_DEFAULT_MODEL="gpt-4o-mini")
    proc = run_cli("call", input=b"piped prompt\n", env=env)
    assert (proc.returncode, proc.stdout) == (0, "from default\n"), proc.stderr
    sent = server.requests[-1].json
    assert sent["model"] == "gpt-4o-mini" and sent["messages"][-1]["content"] == "piped prompt\n"
    # One argument that is no model is the prompt for the default model.
    server.push(Script(text="again"))
    assert run_cli("call", "say hi", env=env).stdout == "again\n"
    assert server.requests[-1].json["messages"][-1]["content"] == "say hi"
    # One argument that names a model is the model; the prompt comes from stdin.
    server.push(Script(text="named"))
    assert run_cli("call", "gpt-4.1", input=b"q", env=env).stdout == "named\n"
    assert server.requests[-1].json["model"] == "gpt-4.1"


def test_default_model_from_the_config_dir(server: ReplayServer, home: Path) -> None:
    (home / "modelwire" / "default_model.txt").write_text("mine\n", encoding="utf-8")
    server.push(Script(text="cfg"))
    proc = run_cli("call", "hello", env=openai_env(server, XDG_CONFIG_HOME=str(home)))
    assert (proc.returncode, proc.stdout) == (0, "cfg\n"), proc.stderr
    assert server.requests[-1].json["model"] == "gpt-mine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "error: no model given: ", id="no-model"),
        pytest.param(["gpt-4.1"], "error: no prompt given: stdin was empty", id="empty-stdin"),
    ],
)
def test_call_without_model_or_prompt(args: list[str], message: str) -> None:
    proc = run_cli("call", *args, input=b"")
    assert proc.returncode == 1 and proc.stderr.startswith(message), proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("extra", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_text_mode_prints_the_answer_only_and_usage_behind_u(server: ReplayServer, extra: list[str]) -> None:
    server.push(Script(text=("Bon", "jour"), usage=(4, 2)))
    plain = run_cli("call", "gpt-4.1-mini", "hi", *extra, env=openai_env(server))
    assert (plain.returncode, plain.stdout, plain.stderr) == (0, "Bonjour\n", "")
    server.push(Script(text=("Bon", "jour"), usage=(4, 2)))
    loud = run_cli("call", "gpt-4.1-mini", "hi", "-u", *extra, env=openai_env(server))
    assert loud.stdout == "Bonjour\n"
    assert loud.stderr.splitlines() == ["finish: stop", "usage: 4 in, 2 out, cost $0.0000048"]


@pytest.mark.parametrize(
    ("flags", "tries"),
    [
        pytest.param(["--no-retry"], 1, id="no-retry"),
        pytest.param(["--retries", "0"], 1, id="retries-0"),
        pytest.param(["--retries", "1"], 2, id="retries-1"),
    ],
)
def test_retries_flags_and_one_line_per_retry(flags: list[str], tries: int) -> None:
    with ReplayServer(seed=1) as srv:
        srv.push(*[Script(status=429, headers={"retry-after": "0"})] * 3)
        proc = run_cli("call", "gpt-4.1", "hi", *flags, env=openai_env(srv))
        assert proc.returncode == 1
        assert len(srv.requests) == tries
    *retries, last = proc.stderr.splitlines()
    assert retries == [
        f"retry: gpt-4.1 attempt {n} failed with rate_limit (HTTP_429); next try in 0.0 s" for n in range(1, tries)
    ]
    assert last.startswith("error: ")


def test_timeout_bounds_the_whole_call() -> None:
    import socket
    import threading

    # A server that accepts and never answers: only --timeout ends the call.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        held: list[socket.socket] = []
        accepting = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
        accepting.start()
        env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "k"}
        proc = run_cli("call", "gpt-4.1", "hi", "--timeout", "0.5", "--no-retry", env=env)
        for conn in held:
            conn.close()
    assert proc.returncode == 1
    assert "timeout" in proc.stderr.lower() and "Traceback" not in proc.stderr


def test_attachment_becomes_an_image_part(server: ReplayServer, tmp_path: Path) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    server.push(Script(text="a dot"))
    proc = run_cli("call", "gpt-4.1", "what is this?", "-a", str(image), env=openai_env(server))
    assert (proc.returncode, proc.stdout) == (0, "a dot\n"), proc.stderr
    content = server.requests[-1].json["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "what is this?"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgpmYWtl")
    missing = run_cli("call", "gpt-4.1", "x", "-a", str(tmp_path / "nope.png"), env=openai_env(server))
    assert missing.returncode == 1 and "nope.png: cannot read" in missing.stderr


# -- no parser installed ----------------------------------------------------------------


@pytest.mark.parametrize("command", [["plugins"], ["demo"]])
def test_no_parser_installed_says_what_to_install(command: list[str]) -> None:
    proc = run_cli(*command, plugins=("modelwire-redis",))
    assert proc.returncode == 1
    assert "pip install ./plugins/modelwire-sse ./plugins/modelwire-jsonchunk ./plugins/modelwire-text" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- check: every error in one run --------------------------------------------------------

SEVEN_MISTAKES = """\
version: 1
providers:
  acme:
    base_url: http://127.0.0.1:9/v1
    auth: {type: bearer, env: ACME_KEY}
    operators:
      generate:
        path: /chat/completions
        parser: json_chunk
        protocol: sse
        request: "{model: model, messages: messages"
        events:
          - each: "choices[].delta.content"
            emit: {type: text, text: "@"}
          - {when: "foo(", emit: {type: finish, reason: x}}
      quiet:
        path: /nothing
models:
  a1:
    provider: openai-compatible
    fallback: [nope]
  a2:
    provider: acme
    capabilitiez: [generate]
  a3:
    provider: acme
    tokenizer: nope
"""


def test_check_reports_every_error_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "seven.yaml"
    path.write_text(SEVEN_MISTAKES, encoding="utf-8")
    proc = run_cli("check", str(path), plugins=("modelwire-sse", "modelwire-jsonchunk", "modelwire-text"))
    assert proc.returncode == 1 and proc.stdout == ""
    errors = proc.stderr.splitlines()
    where = [line.split(": ", 3)[1:3] for line in errors]
    assert sorted(where) == sorted([
        [f"{path}:10", "providers.acme.operators.generate.protocol"],
        [f"{path}:11", "providers.acme.operators.generate.request"],
        [f"{path}:15", "providers.acme.operators.generate.events[1].when"],
        [f"{path}:16", "providers.acme.operators.quiet"],
        [f"{path}:24", "models.a2.capabilitiez"],
        [f"{path}:21", "models.a1.fallback[0]"],
        [f"{path}:9", "providers.acme.operators.generate.parser"],
        [f"{path}:27", "models.a3.tokenizer"],
    ]), proc.stderr
    text = proc.stderr
    assert "unknown field 'protocol' (modelwire spells it 'parser')" in text
    assert "no parser named 'json_chunk'" in text and "(did you mean 'jsonchunk'?)" in text
    assert "an operator needs `events:` rules" in text
    # a1's provider is a built-in: check sees what call sees.
    assert "openai-compatible" not in text


def test_check_does_not_cascade_from_a_provider_that_failed(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nproviders:\n  acme:\n    base_url:\nmodels:\n  m: {provider: acme}\n")
    proc = run_cli("check", str(path))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"error: {path}:4: providers.acme.base_url: expected a string, got null"]


# -- python -m modelwire.testing serve ----------------------------------------------------


def test_testing_serve_for_curl() -> None:
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "modelwire.testing", "serve", "--format", "openai", "--text", "one", "--text", "two"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        fmt, url = proc.stdout.readline().split()  # printed once listening
        assert fmt == "openai" and url.startswith("http://127.0.0.1:")
        answers: list[Any] = []
        for _ in range(3):
            r = httpx.post(f"{url}/chat/completions", json={"model": "m", "messages": []}, timeout=30)
            answers.append(r.json()["choices"][0]["message"]["content"])
        assert answers == ["one", "two", "two"]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


# -- check --tools --resolve-impl ---------------------------------------------------------


def test_resolve_impl_imports_from_the_project_directory(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "tool_pipeline"
    files = [str(example / "tools.yaml"), str(example / "pipeline.yaml")]
    proc = run_cli("check", "--tools", *files, "--resolve-impl", cwd=tmp_path)  # not the example's directory
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout.endswith(": 9 tools, 1 pipeline\n")


def test_resolve_impl_failure_names_its_place_once(tmp_path: Path) -> None:
    tools = tmp_path / "tools.yaml"
    tools.write_text("version: 1\ntools:\n  t1:\n    impl: nosuchmod:f\n    inputs: {}\n    outputs: {}\n")
    proc = run_cli("check", "--tools", str(tools), "--resolve-impl")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: {tools}:4: tools.t1.impl: tool 't1': cannot import 'nosuchmod' for impl 'nosuchmod:f':"
        " ModuleNotFoundError: No module named 'nosuchmod'"
    ]


# -- the spinner: only on a terminal ------------------------------------------------------


class HeldServer:
    """A loopback OpenAI stand-in that answers only once :meth:`release` is called."""

    BODY = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "late answer"}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.gate = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
            while len(body) < length:
                body += conn.recv(65536)
            self.gate.wait(60)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                + f"content-length: {len(self.BODY)}\r\nconnection: close\r\n\r\n".encode()
                + self.BODY
            )

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.sock.close()


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_spinner_on_a_terminal_until_the_first_token() -> None:
    import pty

    from core_helpers import CLEAN_PLUGINS, modelwire_script

    held = HeldServer()
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    env.update({"OPENAI_BASE_URL": f"http://127.0.0.1:{held.port}/v1", "OPENAI_API_KEY": "k",
                "MODELWIRE_NO_CONFIG": "1", "MODELWIRE_LOAD_PLUGINS": ",".join(CLEAN_PLUGINS)})
    proc = subprocess.Popen([modelwire_script(), "call", "gpt-4.1", "hi"], stdin=subprocess.DEVNULL,
                            stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    seen = b""
    try:
        while b"waiting for the first token" not in seen:  # synchronise on the spinner itself
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                chunk = b""
            assert chunk, seen
            seen += chunk
        held.release()
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        held.close()
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
    tail = seen.rsplit(b"waiting for the first token", 1)[1]
    assert tail.lstrip(b" ").startswith(b"\r")  # erased before the answer
    assert b"late answer" in tail


def test_no_spinner_into_a_pipe(server: ReplayServer) -> None:
    server.push(Script(text="piped"))
    proc = run_cli("call", "gpt-4.1", "hi", env=openai_env(server))
    assert (proc.stdout, proc.stderr) == ("piped\n", "")


# -- one structured log record per call ---------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_one_log_record_per_call(caplog: pytest.LogCaptureFixture, anyio_backend: str) -> None:
    import logging

    with ReplayServer(seed=2) as srv:
        srv.push(Script(text="hi", usage=(4, 2)))
        srv.push(*[Script(status=429, headers={"retry-after": "0"})] * 3)
        env = {"OPENAI_BASE_URL": srv.url_for("openai"), "OPENAI_API_KEY": "sk-never-logged-123"}
        with caplog.at_level(logging.INFO, logger="modelwire"):
            async with Runtime.from_manifests("builtin:openai", env=env) as rt:
                await rt.generate("gpt-4.1-mini", "a secret prompt")
                with pytest.raises(modelwire_errors().RateLimitError):
                    await rt.generate("gpt-4.1-mini", "again")
    records = [r for r in caplog.records if r.name == "modelwire"]
    assert [r.modelwire for r in records] == [  # type: ignore[attr-defined]
        {"model": "gpt-4.1-mini", "operator": "generate", "attempts": 1, "input_tokens": 4, "output_tokens": 2,
         "cost": records[0].modelwire["cost"], "latency_ms": records[0].modelwire["latency_ms"], "outcome": "ok"},  # type: ignore[attr-defined]
        {"model": "gpt-4.1-mini", "operator": "generate", "attempts": 3, "input_tokens": None, "output_tokens": None,
         "cost": None, "latency_ms": records[1].modelwire["latency_ms"], "outcome": "rate_limit:HTTP_429"},  # type: ignore[attr-defined]
    ]
    assert str(records[0].modelwire["cost"]) == "0.0000048"  # type: ignore[attr-defined]
    text = "\n".join(r.getMessage() for r in records)
    assert "sk-never-logged-123" not in text and "secret prompt" not in text
    assert records[0].getMessage().startswith("call model=gpt-4.1-mini operator=generate attempts=1 ")


def modelwire_errors() -> Any:
    import modelwire

    return modelwire
