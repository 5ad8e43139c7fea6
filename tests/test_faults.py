"""Fault injection over loopback: every fault ends in a documented typed
error or a marked fallback, and a loaded run loses or duplicates nothing."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import modelwire
from modelwire import Fallback, TextDelta
from modelwire.testing import ReplayServer, Reply, Script, StreamError

from servers.raw import closing_server

MODELS = """
version: 1
models:
  fragile:
    provider: openai
    fallback: [steady]
    retry: {attempts: 2, base_delay: 0.001, max_delay: 0.002}
  steady:
    provider: anthropic
    retry: {attempts: 1}
  local:
    provider: ollama
    retry: {attempts: 1}
  unreachable:
    provider: openai-compatible
    retry: {attempts: 2, base_delay: 0.001, max_delay: 0.002}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=4) as srv:
        yield srv


@pytest.fixture(scope="module")
def closed_url() -> Iterator[str]:
    with closing_server() as url:
        yield url


def make_runtime(server: ReplayServer, tmp_path: Path, closed_url: str) -> modelwire.Runtime:
    (tmp_path / "models.yaml").write_text(MODELS)
    env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k",
           "ANTHROPIC_BASE_URL": server.url_for("anthropic"), "ANTHROPIC_API_KEY": "k",
           "OLLAMA_BASE_URL": server.url_for("ollama"),
           "OPENAI_COMPATIBLE_BASE_URL": closed_url + "/v1"}
    catalog = modelwire.load_manifests("builtin:*", tmp_path / "models.yaml", env=env)
    # A short read timeout and a small line limit, to inject those faults quickly.
    openai = catalog.providers["openai"]
    op = attrs.evolve(openai.operators["generate"], parser_options={"max_line_size": 4096})
    openai = attrs.evolve(openai, timeout=attrs.evolve(openai.timeout, read=0.3),
                          operators={**openai.operators, "generate": op})
    catalog = attrs.evolve(catalog, providers={**catalog.providers, "openai": openai})
    return modelwire.Runtime(catalog, env=env, plugins=modelwire.Plugins(only=["modelwire-sse", "modelwire-jsonchunk", "modelwire-text"]))


GOOD = "all good here"
SSE = "text/event-stream"

# (id, model, answers pushed in order, expected: ("ok", text, fallback?) or (error class, code))
FAULTS: list[Any] = [
    ("reset-mid-stream", "fragile", [Script(text="partial words " * 30, disconnect_after=900)],
     (modelwire.NetworkError, "STREAM_BROKEN")),
    ("reset-before-text-retried", "fragile", [Script(disconnect_after=50), Script(text=GOOD)], ("ok", GOOD, False)),
    ("429-retry-after", "fragile", [Script(status=429, headers={"retry-after": "0"}), Script(text=GOOD)], ("ok", GOOD, False)),
    ("500-then-fallback", "fragile", [Script(status=500), Script(status=500), Script(text=GOOD)], ("ok", GOOD, True)),
    ("502-then-fallback", "fragile", [Script(status=502), Script(status=502), Script(text=GOOD)], ("ok", GOOD, True)),
    ("503-then-fallback", "fragile", [Script(status=503), Script(status=503), Script(text=GOOD)], ("ok", GOOD, True)),
    ("slow-drip-past-read-timeout", "fragile",
     [Script(text="a b", delay=1.0, chunk_size=None), Script(text="a b", delay=1.0, chunk_size=None), Script(text=GOOD)],
     ("ok", GOOD, True)),
    ("truncated-stream", "fragile", [Script(text="cut " * 40, end_marker=False)], (modelwire.NetworkError, "STREAM_TRUNCATED")),
    ("malformed-frame", "fragile", [Reply(content_type=SSE, body="data: {not json\n\n")], (modelwire.ParseError, "FRAME_NOT_JSON")),
    ("over-size-line", "fragile", [Reply(content_type=SSE, body="data: " + "x" * 10000 + "\n\n")], (modelwire.ParseError, None)),
    ("invalid-utf8", "local", [Reply(content_type="application/x-ndjson", body=b'{"message": {"content": "\xff\xfe"}}\n')],
     (modelwire.ParseError, None)),
    ("in-stream-overloaded", "steady", [Script(text="some text", error=StreamError(after=2))], (modelwire.ProviderDownError, "overloaded_error")),
    ("closed-before-headers", "unreachable", [], (modelwire.NetworkError, None)),
    ("html-login-page", "fragile", [Reply(content_type="text/html", body="<html>sign in</html>")], (modelwire.ParseError, "UNEXPECTED_HTML")),
]


@pytest.mark.parametrize(("model", "answers", "expected"), [pytest.param(*row[1:], id=row[0]) for row in FAULTS])
def test_fault_matrix(server: ReplayServer, tmp_path: Path, closed_url: str, model: str, answers: list[Any], expected: Any) -> None:
    server.reset()
    server.push(*answers)
    rt = make_runtime(server, tmp_path, closed_url)
    events: list[Any] = []

    async def go() -> None:
        async with rt:
            async for ev in rt.stream(model, "hi"):
                events.append(ev)

    if expected[0] == "ok":
        anyio.run(go)
        after = events
        fallbacks = [i for i, e in enumerate(events) if type(e) is Fallback]
        if fallbacks:
            after = events[fallbacks[-1] + 1:]
        assert "".join(e.text for e in after if type(e) is TextDelta) == expected[1]
        assert bool(fallbacks) is expected[2]
        assert type(events[-1]) is modelwire.Done
    else:
        cls, code = expected
        with pytest.raises(cls) as info:
            anyio.run(go)
        assert info.value.model == model and info.value.provider is not None
        if code is not None:
            assert info.value.code == code
        assert not any(type(e) is modelwire.Done for e in events)


def test_load_with_injected_faults(server: ReplayServer, tmp_path: Path, closed_url: str) -> None:
    """200 concurrent streams, about 10 % faulty answers: every success is one
    whole scripted answer, no answer twice, every failure typed."""
    server.reset()
    rng = random.Random(2026)
    # 200 streams; retries and fallbacks take extra answers, so 100 spare ones follow.
    words = ["alpha", "βeta", "γάμμα", "delta"]
    good = [f"answer-{i:03d} " + " ".join(rng.choice(words) for _ in range(12)) for i in range(300)]
    answers: list[Any] = []
    for text in good:
        if rng.random() < 0.1:
            answers.append(rng.choice([
                Script(status=503),
                Script(text="doomed words " * 30, disconnect_after=900),
                Script(text="doomed", error=StreamError(type="overloaded_error", after=1)),
            ]))
        answers.append(Script(text=text, chunk_size=(1, 64)))
    server.push(*answers)
    rt = make_runtime(server, tmp_path, closed_url)
    results: list[str] = []
    failures: list[BaseException] = []

    async def one() -> None:
        try:
            resp = await rt.generate("fragile", "hi")
            results.append(resp.text)
        except modelwire.ModelError as exc:
            failures.append(exc)

    async def go() -> None:
        async with rt, anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(one)

    anyio.run(go)
    assert len(results) + len(failures) == 200
    assert set(results) <= set(good)  # nothing spliced, nothing truncated
    assert len(results) == len(set(results))  # nothing duplicated
    assert all(isinstance(f, modelwire.ModelError) and f.kind in ("network", "provider_down") for f in failures)
    faulty = len(answers) - len(good)
    assert len(failures) <= faulty
    assert server.pending > 0  # the supply never ran out (no default answer slipped in)


def test_total_timeout_bounds_a_dripping_stream(server: ReplayServer, tmp_path: Path, closed_url: str) -> None:
    """Each read arrives in time, but the whole answer does not: TOTAL_TIMEOUT."""
    server.reset()
    server.push(Script(text="drip " * 200, delay=0.02, chunk_size=(32, 32)))
    rt = make_runtime(server, tmp_path, closed_url)
    anthropic = rt.catalog.providers["anthropic"]
    slow = attrs.evolve(anthropic, timeout=attrs.evolve(anthropic.timeout, total=0.3))
    rt.catalog = attrs.evolve(rt.catalog, providers={**rt.catalog.providers, "anthropic": slow})

    async def go() -> None:
        async with rt:
            await rt.generate("steady", "hi")

    with pytest.raises(modelwire.RequestTimeout) as info:
        anyio.run(go)
    assert info.value.code in ("TOTAL_TIMEOUT", "TIMEOUT")
