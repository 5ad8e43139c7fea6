"""``modelwire call``, ``embed`` and ``demo`` as a user runs them: the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelwire.testing import ReplayServer, Script, ToolCall, fake_embedding

EXE = Path(sysconfig.get_path("scripts")) / "modelwire"


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=5) as srv:
        yield srv


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=full, timeout=60, check=False)


def test_call_json_events(server: ReplayServer) -> None:
    server.push(Script(text=("Bon", "jour ☀️"), tool_calls=[ToolCall("c1", "f", '{"a": 1}')], usage=(4, 2)))
    proc = cli("call", "gpt-4.1-mini", "hi", "--json", "--system", "terse",
               env={"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k"})
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "".join(e["text"] for e in events if e["type"] == "text") == "Bonjour ☀️"
    calls = [e for e in events if e["type"] == "tool_call"]
    assert calls[0]["id"] == "c1" and "".join(c["arguments"] or "" for c in calls) == '{"a": 1}'
    usage = [e for e in events if e["type"] == "usage"]
    # cost is a decimal string (a float would round money), with its currency
    assert usage == [{"type": "usage", "input_tokens": 4, "output_tokens": 2, "cost": "0.0000048", "currency": "USD"}]
    assert events[-1] == {"type": "done"}
    assert server.requests[-1].json["messages"][0] == {"role": "system", "content": "terse"}


def test_call_text_streams_and_base_url_override(server: ReplayServer) -> None:
    server.push(Script(text="plain answer", usage=(1, 1)))
    proc = cli("call", "anthropic/claude-x", "hi", "--base-url", server.url_for("anthropic"),
               env={"ANTHROPIC_API_KEY": "k"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "plain answer"
    assert server.requests[-1].json["model"] == "claude-x"


@pytest.mark.parametrize(
    ("args", "env", "kind", "code"),
    [
        pytest.param(["nope-model", "hi"], {}, "not_found", "MODEL_NOT_FOUND", id="unknown-model"),
        pytest.param(["gpt-4.1", "hi"], {"OPENAI_API_KEY": ""}, "auth", "AUTH_KEY_MISSING", id="missing-key"),
    ],
)
def test_call_errors_json(args: list[str], env: dict[str, str], kind: str, code: str) -> None:
    proc = cli("call", *args, "--json", env=env)
    assert proc.returncode == 1
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (line["type"], line["kind"], line["code"]) == ("error", kind, code)
    assert "Traceback" not in proc.stderr


def test_call_error_human(server: ReplayServer) -> None:
    server.push(*[Script(status=429, headers={"retry-after": "0"})] * 3)  # every default attempt
    proc = cli("call", "gpt-4.1", "hi", env={"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "sk-secret-123456"})
    assert proc.returncode == 1
    *retries, last = proc.stderr.splitlines()
    # One line per retry, with the reason and the wait; then the error.
    assert retries == [
        "retry: gpt-4.1 attempt 1 failed with rate_limit (HTTP_429); next try in 0.0 s",
        "retry: gpt-4.1 attempt 2 failed with rate_limit (HTTP_429); next try in 0.0 s",
    ]
    assert last.startswith("error: ") and "Traceback" not in proc.stderr
    assert "sk-secret-123456" not in proc.stderr


def test_call_with_extra_manifest(tmp_path: Path, server: ReplayServer) -> None:
    manifest = tmp_path / "mine.yaml"
    manifest.write_text(
        "version: 1\nmodels:\n  house-model:\n    provider: openai\n    id: gpt-4.1-nano\n"
    )
    server.push(Script(text="from my manifest"))
    proc = cli("call", "house-model", "hi", "--manifest", str(manifest),
               env={"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k"})
    assert proc.returncode == 0, proc.stderr
    assert "from my manifest" in proc.stdout
    assert server.requests[-1].json["model"] == "gpt-4.1-nano"


def test_embed(server: ReplayServer) -> None:
    proc = cli("embed", "nomic-embed-text", "alpha", "beta", env={"OLLAMA_BASE_URL": server.url_for("ollama")})
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows == [{"text": "alpha", "vector": fake_embedding("alpha")}, {"text": "beta", "vector": fake_embedding("beta")}]


def test_demo_runs_offline() -> None:
    proc = cli("demo", env={"OPENAI_API_KEY": "", "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert proc.returncode == 0, proc.stderr
    for header in ("openai", "anthropic", "gemini", "ollama"):
        assert f"== {header} " in proc.stdout
    assert proc.stdout.count("tool call: get_weather") == 4
    assert proc.stdout.count("  done") == 4


def test_demo_json() -> None:
    proc = cli("demo", "--json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {e["provider"] for e in events if e["type"] == "done"} == {"openai", "anthropic", "gemini", "ollama"}


def test_python_dash_m() -> None:
    proc = subprocess.run([sys.executable, "-m", "modelwire", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("modelwire ")
