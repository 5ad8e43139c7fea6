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


#: Read timeout for every answer that is meant to arrive: a safety net far
#: above the few milliseconds a loopback answer takes, even on a loaded machine.
SAFE_READ = 60.0
#: Read timeout for the one fault that injects a read timeout; its answers
#: stall for SLOW_DRIP seconds, so even a starved event loop sees the deadline
#: pass long before the next byte could arrive.
SHORT_READ = 0.3
SLOW_DRIP = 30.0


def make_runtime(
    server: ReplayServer,
    tmp_path: Path,
    closed_url: str,
    *,
    read: float = SAFE_READ,
    steady_server: ReplayServer | None = None,
) -> modelwire.Runtime:
    """A runtime whose providers answer from ``server`` (``steady`` from
    ``steady_server`` if given); OpenAI gets read timeout ``read`` and a small
    line limit, to inject those faults."""
    (tmp_path / "models.yaml").write_text(MODELS)
    steady = steady_server or server
    env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k",
           "ANTHROPIC_BASE_URL": steady.url_for("anthropic"), "ANTHROPIC_API_KEY": "k",
           "OLLAMA_BASE_URL": server.url_for("ollama"),
           "OPENAI_COMPATIBLE_BASE_URL": closed_url + "/v1"}
    catalog = modelwire.load_manifests("builtin:*", tmp_path / "models.yaml", env=env)
    providers = dict(catalog.providers)
    for name, provider in providers.items():
        # Connecting and reading are safety nets, far above the expected time.
        providers[name] = attrs.evolve(
            provider, timeout=attrs.evolve(provider.timeout, connect=SAFE_READ, read=SAFE_READ))
    openai = providers["openai"]
    op = attrs.evolve(openai.operators["generate"], parser_options={"max_line_size": 4096})
    providers["openai"] = attrs.evolve(openai, timeout=attrs.evolve(openai.timeout, read=read),
                                       operators={**openai.operators, "generate": op})
    catalog = attrs.evolve(catalog, providers=providers)
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
     [Script(text="a b", delay=SLOW_DRIP, chunk_size=None), Script(text="a b", delay=SLOW_DRIP, chunk_size=None),
      Script(text=GOOD)],
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
def test_fault_matrix(
    request: pytest.FixtureRequest, server: ReplayServer, tmp_path: Path, closed_url: str,
    model: str, answers: list[Any], expected: Any,
) -> None:
    server.reset()
    server.push(*answers)
    read = SHORT_READ if request.node.callspec.id == "slow-drip-past-read-timeout" else SAFE_READ
    rt = make_runtime(server, tmp_path, closed_url, read=read)
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


#: Faults for the load test, each with what it does to the stream that takes
#: it: "pass" faults come before any text, so ``fragile`` retries or falls
#: back to ``steady`` and the stream takes another answer; "end" faults come
#: after text, so the stream fails with that error kind (on_midstream: raise).
LOAD_FAULTS: list[tuple[Any, str]] = [
    (Script(status=503), "pass"),
    (Script(text="doomed words " * 30, disconnect_after=900), "network"),
    (Script(disconnect_after=50), "pass"),
    (Script(text="doomed", error=StreamError(type="overloaded_error", after=1)), "provider_down"),
    (Script(status=429, headers={"retry-after": "0"}), "pass"),
]


def test_load_with_injected_faults(server: ReplayServer, tmp_path: Path, closed_url: str) -> None:
    """200 concurrent streams, a fault before every tenth good answer: every
    success is one whole scripted answer, no answer twice, every failure typed.

    Which stream takes which answer depends on scheduling, so the assertions
    are on what the servers handed out: the answers are taken in order, every
    good one taken ends one stream with its text, every "end" fault taken ends
    one stream with its error, and every "pass" fault taken costs one more
    request. ``steady`` answers from its own server, which holds only good
    answers, so a fallback always succeeds whatever the interleaving.
    """
    server.reset()
    rng = random.Random(2026)
    words = ["alpha", "βeta", "γάμμα", "delta"]
    # The streams take at most 200 good answers plus the 30 faults, so 300
    # good answers outlast them: the default answer never serves.
    good = [f"answer-{i:03d} " + " ".join(rng.choice(words) for _ in range(12)) for i in range(300)]
    answers: list[Any] = []
    effects: list[str] = []
    for i, text in enumerate(good):
        if i % 10 == 3:
            fault, effect = LOAD_FAULTS[(i // 10) % len(LOAD_FAULTS)]
            answers.append(fault)
            effects.append(effect)
        answers.append(Script(text=text, chunk_size=(1, 64)))
        effects.append("good")
    server.push(*answers)
    fallback_good = [f"fallback-{i:03d} " + " ".join(rng.choice(words) for _ in range(12)) for i in range(len(good))]
    results: list[str] = []
    failures: list[BaseException] = []

    async def one(rt: modelwire.Runtime) -> None:
        try:
            resp = await rt.generate("fragile", "hi")
            results.append(resp.text)
        except modelwire.ModelError as exc:
            failures.append(exc)

    with ReplayServer(seed=5) as steady:
        steady.push(*(Script(text=text, chunk_size=(1, 64)) for text in fallback_good))
        rt = make_runtime(server, tmp_path, closed_url, steady_server=steady)

        async def go() -> None:
            async with rt, anyio.create_task_group() as tg:
                for _ in range(200):
                    tg.start_soon(one, rt)

        anyio.run(go)
        taken_steady = len(steady.requests)
        assert steady.pending == len(fallback_good) - taken_steady > 0

    taken = len(server.requests)
    assert server.pending == len(answers) - taken > 0  # the supply never ran out
    taken_effects = effects[:taken]
    assert len(results) + len(failures) == 200
    # Exactly the good answers handed out come back, each once, whole.
    expected_texts = [a.full_text() for a, e in zip(answers[:taken], taken_effects, strict=True) if e == "good"]
    assert sorted(results) == sorted(expected_texts + fallback_good[:taken_steady])
    # Every "pass" fault cost exactly one more request, to fragile or steady.
    assert taken + taken_steady == 200 + taken_effects.count("pass")
    # Every "end" fault ended one stream, with its own error kind.
    assert all(isinstance(f, modelwire.ModelError) for f in failures)
    assert sorted(f.kind for f in failures) == sorted(e for e in taken_effects if e not in ("good", "pass"))  # type: ignore[attr-defined]
    assert taken_effects.count("pass") > 0 and failures  # the faults did happen


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
