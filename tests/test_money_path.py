"""The money path: which model is tried, when, how long we wait, what is admitted
and what it costs.

Every test here is written to fail on one specific plausible one-line bug (the
list is in docs/testing.md, "Money-path tests"). Real HTTP over loopback
(``modelwire.testing.ReplayServer``), no mocks of modelwire code. Waits are
observed, not slept: the runtime runs under trio with a ``MockClock`` whose
time only moves when every task sleeps, so the virtual time a call took is
exactly the sum of the waits the runtime chose. Providers get infinite
timeouts for that (a finite read deadline would be jumped to while the
loopback server answers); pytest-timeout guards against a hang instead.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
import trio.testing

import modelwire
from modelwire import Fallback, TextDelta, Usage
from modelwire.testing import ReplayServer, Reply, Script

from core_helpers import PROVIDERS, provider_env

pytestmark = pytest.mark.timeout(60)

PARSERS = ["modelwire-sse", "modelwire-jsonchunk", "modelwire-text"]
TINY = "{attempts: 1}"

MODELS = f"""
version: 1
limiter: {{backend: clocked}}
providers:
  plain:  # an OpenAI-shaped provider with no `errors:` rules: the default status mapping
    base_url: ${{PLAIN_BASE_URL}}
    operators:
      generate:
        path: /chat/completions
        parser: sse
        request: "{{model: model, messages: messages, stream: `true`}}"
        events:
          - {{data: "[DONE]", stop: true}}
          - {{each: "choices[].delta.content", emit: {{type: text, text: "@"}}}}
models:
  # a chain of four, each a distinct provider model id
  head:
    provider: openai
    id: id-head
    fallback: [second, third, fourth]
    retry: {{attempts: 2, base_delay: 0.25, max_delay: 0.25}}
  second: {{provider: openai, id: id-second, retry: {TINY}}}
  third: {{provider: openai, id: id-third, retry: {TINY}}}
  fourth: {{provider: openai, id: id-fourth, retry: {TINY}}}

  # mid-stream fallback with on_midstream: prefix
  prefix-to-noprefill:
    provider: openai
    fallback: [noprefill]
    retry: {{attempts: 1, on_midstream: prefix}}
  prefix-to-prefill:
    provider: openai
    fallback: [prefill]
    retry: {{attempts: 1, on_midstream: prefix}}
  noprefill: {{provider: openai, id: id-noprefill, capabilities: [generate, stream], retry: {TINY}}}
  prefill: {{provider: anthropic, id: id-prefill, capabilities: [generate, stream, prefill], retry: {TINY}}}

  # retries: one per format, with a fallback to tell "moved on" from "retried"
  retry-openai: {{provider: openai, fallback: [second], retry: {{attempts: 2, base_delay: 0.25, max_delay: 0.25}}}}
  retry-anthropic: {{provider: anthropic, fallback: [second], retry: {{attempts: 2, base_delay: 0.25, max_delay: 0.25}}}}
  retry-gemini: {{provider: gemini, fallback: [second], retry: {{attempts: 2, base_delay: 0.25, max_delay: 0.25}}}}
  retry-ollama: {{provider: ollama, fallback: [second], retry: {{attempts: 2, base_delay: 0.25, max_delay: 0.25}}}}
  retry-plain: {{provider: plain, fallback: [second], retry: {{attempts: 2, base_delay: 0.25, max_delay: 0.25}}}}

  # backoff: five tries, base 0.5 s, cap 1.5 s
  backoff:
    provider: openai
    policy: capped-rng
    retry: {{attempts: 5, base_delay: 0.5, max_delay: 1.5}}

  # local tpm, counted by the `clocked` limiter (a LocalLimiter on a test clock)
  metered: {{provider: openai, limits: {{tpm: 1000}}, retry: {TINY}}}

  # pricing
  priced:
    provider: openai
    pricing: {{input_per_mtok: 2.5, output_per_mtok: 10, cached_input_per_mtok: 1.25}}
    retry: {TINY}
  priced-no-cache-price:
    provider: openai
    pricing: {{input_per_mtok: 2.5, output_per_mtok: 10}}
    retry: {TINY}
  priced-tenths:
    provider: openai
    pricing: {{input_per_mtok: 0.1, output_per_mtok: 0.2, cached_input_per_mtok: 0.01}}
    retry: {TINY}
  priced-claude:
    provider: anthropic
    pricing: {{input_per_mtok: 3, output_per_mtok: 15, cached_input_per_mtok: 0.3}}
    retry: {TINY}
  unpriced: {{provider: openai, retry: {TINY}}}
  priced-chain:
    provider: openai
    id: id-priced-chain
    fallback: [priced-claude]
    pricing: {{input_per_mtok: 100, output_per_mtok: 100}}
    retry: {{attempts: 2, base_delay: 0.25, max_delay: 0.25}}
"""


# -- harness ---------------------------------------------------------------------


class Clock:
    """A settable clock for LocalLimiter."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class BoundsRng:
    """An rng for the backoff: records each uniform(a, b) asked for and answers b."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return b


class Recording:
    """A policy that lets the real default policy decide, and keeps what it saw."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[tuple[modelwire.ModelError, Any]] = []

    def decide(self, error: modelwire.ModelError, attempt: modelwire.Attempt) -> modelwire.Decision:
        decision = self.inner.decide(error, attempt)
        self.seen.append((error, decision))
        return decision


def default_policy_class() -> type:
    """The class of the built-in ``default`` policy, reached through the plugin registry."""
    return type(modelwire.Plugins(entry_points=False).get_fallback_policy("default"))


class Harness:
    """A runtime over the replay server, with test-owned plugins and clocks."""

    def __init__(self, server: ReplayServer, tmp_path: Path, *, policy: str | None = None) -> None:
        self.server = server
        self.clock = Clock()
        self.rng = BoundsRng()
        self.recording = Recording(default_policy_class()())
        path = tmp_path / "money.yaml"
        path.write_text(MODELS)
        env = {**provider_env(server), "PLAIN_BASE_URL": server.url_for("openai")}
        catalog = modelwire.load_manifests(
            "builtin:openai", "builtin:anthropic", "builtin:gemini", "builtin:ollama", path, env=env
        )
        forever = {"connect": math.inf, "read": math.inf, "write": math.inf, "total": None}
        catalog = attrs.evolve(catalog, providers={
            name: attrs.evolve(p, timeout=attrs.evolve(p.timeout, **forever)) for name, p in catalog.providers.items()
        })
        plugins = modelwire.Plugins(only=PARSERS)
        plugins.register(self, name="money-path-test")
        self.rt = modelwire.Runtime(catalog, env=env, plugins=plugins, policy=policy)

    @modelwire.hookimpl
    def register_fallback_policies(self, register: Any) -> None:
        register("capped-rng", default_policy_class()(rng=self.rng))
        register("recording", self.recording)

    @modelwire.hookimpl
    def register_limiters(self, register: Any) -> None:
        register("clocked", lambda **options: modelwire.LocalLimiter(clock=self.clock))

    def run(self, fn: Callable[[modelwire.Runtime], Awaitable[Any]]) -> tuple[Any, float]:
        """Run ``fn(rt)`` under trio on a mock clock: (its result, the virtual seconds it waited)."""

        async def main() -> tuple[Any, float]:
            async with self.rt:
                start = anyio.current_time()
                result = await fn(self.rt)
                return result, anyio.current_time() - start

        clock = trio.testing.MockClock(autojump_threshold=0.001)
        return anyio.run(main, backend="trio", backend_options={"clock": clock})

    def stream(self, model: str, **kw: Any) -> tuple[list[Any], float]:
        async def go(rt: modelwire.Runtime) -> list[Any]:
            return [ev async for ev in rt.stream(model, "hi", **kw)]

        return self.run(go)

    def generate(self, model: str, **kw: Any) -> tuple[modelwire.Response, float]:
        return self.run(lambda rt: rt.generate(model, "hi", **kw))


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=11) as srv:
        yield srv


@pytest.fixture
def make(server: ReplayServer, tmp_path: Path) -> Callable[..., Harness]:
    server.reset()
    return lambda **kw: Harness(server, tmp_path, **kw)


def text(events: list[Any]) -> str:
    return "".join(e.text for e in events if type(e) is TextDelta)


def fallbacks(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.from_model, e.to_model) for e in events if type(e) is Fallback]


def sent_models(server: ReplayServer) -> list[str]:
    return [r.json["model"] for r in server.requests]


# -- 1. the fallback chain is walked in manifest order ---------------------------------

DOWN = Script(status=503)


@pytest.mark.parametrize(
    ("answers", "tried", "switches", "answer"),
    [
        pytest.param([Script(text="head ok")], ["id-head"], [], "head ok", id="first-answers"),
        pytest.param([DOWN, DOWN, Script(text="second ok")], ["id-head", "id-head", "id-second"],
                     [("head", "second")], "second ok", id="head-retried-then-second"),
        pytest.param([DOWN, DOWN, DOWN, Script(text="third ok")], ["id-head", "id-head", "id-second", "id-third"],
                     [("head", "second"), ("second", "third")], "third ok", id="third-answers"),
        pytest.param([DOWN, DOWN, DOWN, DOWN, Script(text="fourth ok")],
                     ["id-head", "id-head", "id-second", "id-third", "id-fourth"],
                     [("head", "second"), ("second", "third"), ("third", "fourth")], "fourth ok", id="last-answers"),
        pytest.param([DOWN] * 5, ["id-head", "id-head", "id-second", "id-third", "id-fourth"],
                     [("head", "second"), ("second", "third"), ("third", "fourth")], None, id="chain-exhausted"),
    ],
)
def test_fallback_chain_order(make: Callable[..., Harness], server: ReplayServer, answers: list[Any],
                              tried: list[str], switches: list[tuple[str, str]], answer: str | None) -> None:
    h = make()
    server.push(*answers)
    events: list[Any] = []

    async def go(rt: modelwire.Runtime) -> None:
        async for ev in rt.stream("head", "hi"):
            events.append(ev)

    if answer is None:
        with pytest.raises(modelwire.ProviderDownError) as info:
            h.run(go)
        assert info.value.model == "fourth"
    else:
        h.run(go)
        assert text(events[[type(e) for e in events].index(TextDelta):]) == answer
        assert type(events[-1]) is modelwire.Done
    assert sent_models(server) == tried
    assert fallbacks(events) == switches
    assert all("provider_down" in e.reason and not e.continued for e in events if type(e) is Fallback)
    # each marker precedes the text of the model it hands over to
    if switches and answer is not None:
        assert [type(e) for e in events].index(Fallback) < [type(e) for e in events].index(TextDelta)
    assert h.rt.totals.fallbacks == len(switches)


def test_generate_reports_the_whole_path(make: Callable[..., Harness], server: ReplayServer) -> None:
    h = make()
    server.push(DOWN, DOWN, DOWN, DOWN, Script(text="fourth ok", usage=(3, 4)))
    resp, _ = h.generate("head")
    assert resp.models == ("head", "second", "third", "fourth")
    assert (resp.model, resp.text) == ("fourth", "fourth ok")


# -- 2. local tpm admission, with an injected clock ---------------------------------------

# Steps: ("at", t) sets the clock; ("take", tokens, admitted, retry_after) calls
# try_acquire; ("fix", n, tokens) reconciles the n-th admitted ticket.
TPM_CASES = [
    pytest.param(100, [("take", 101, False, math.inf)], id="more-than-tpm-never-fits"),
    pytest.param(100, [("take", 100, True, 0.0), ("take", 1, False, 60.0)], id="exactly-tpm-then-full"),
    pytest.param(100, [("take", 60, True, 0.0), ("at", 10), ("take", 30, True, 0.0),
                       ("at", 20), ("take", 20, False, 40.0),   # 10 over: wait for the t=0 entry
                       ("take", 10, True, 0.0)], id="rejects-with-exact-wait"),
    pytest.param(100, [("take", 60, True, 0.0), ("at", 10), ("take", 30, True, 0.0),
                       ("at", 20), ("take", 75, False, 50.0)], id="wait-for-two-entries"),
    pytest.param(100, [("take", 90, True, 0.0), ("at", 59.5), ("take", 20, False, 0.5),
                       ("at", 60), ("take", 20, True, 0.0)], id="window-slides-at-60s"),
    pytest.param(100, [("take", 90, True, 0.0), ("fix", 0, 10), ("take", 90, True, 0.0),
                       ("take", 1, False, 60.0)], id="reconcile-frees-reserved-tokens"),
    pytest.param(100, [("take", 10, True, 0.0), ("fix", 0, 95), ("take", 10, False, 60.0)],
                 id="reconcile-raises-usage"),
]


@pytest.mark.parametrize(("tpm", "steps"), TPM_CASES)
def test_local_limiter_tpm(tpm: int, steps: list[tuple[Any, ...]]) -> None:
    clock = Clock()
    limiter = modelwire.LocalLimiter(clock=clock)
    tickets: list[Any] = []
    for step in steps:
        if step[0] == "at":
            clock.now = step[1]
        elif step[0] == "fix":
            limiter.reconcile("k", tickets[step[1]], step[2])
        else:
            _, tokens, admitted, retry_after = step
            got = limiter.try_acquire("k", rpm=None, tpm=tpm, tokens=tokens)
            assert (got.admitted, got.retry_after) == (admitted, retry_after), step
            if got.admitted:
                tickets.append(got.ticket)
    # another key has its own budget
    assert limiter.try_acquire("other", rpm=None, tpm=tpm, tokens=tpm).admitted


def test_runtime_tpm_reserves_then_reconciles(make: Callable[..., Harness], server: ReplayServer) -> None:
    """tpm 1000; each call reserves prompt + max_tokens, then holds only the reported 10 + 20."""
    h = make()
    prompt = modelwire.count_messages(h.rt.plugins.get_tokenizer("approx"), [{"role": "user", "content": "hi"}])
    assert 0 < prompt <= 25  # the numbers below assume a short prompt
    server.push(*[Script(text="ok", usage=(10, 20))] * 3)

    async def calls(rt: modelwire.Runtime) -> list[Any]:
        # one runtime session: closing the runtime drops its limiter backend
        out = []
        for t, max_tokens in [(0, 400), (10, 900), (20, 975), (69.5, 975), (70, 975)]:
            h.clock.now = t
            try:
                out.append(await rt.generate("metered", "hi", max_tokens=max_tokens))
            except modelwire.RateLimitError as exc:
                out.append(exc)
        return out

    first, second, third, fourth, fifth = h.run(calls)[0]
    assert first.text == "ok"    # t=0: reserves prompt + 400, keeps the reported 30
    assert second.text == "ok"   # t=10: 30 + prompt + 900 fits only because the first was reconciled
    # t=20: 60 + prompt + 975 > 1000; enough leaves only when t=10's entry does, at 70
    assert isinstance(third, modelwire.RateLimitError) and third.code == "LOCAL_RATE_LIMIT"
    assert third.retry_after == 50.0
    assert isinstance(fourth, modelwire.RateLimitError) and fourth.retry_after == 0.5  # t=0 has left
    assert fifth.text == "ok"
    assert len(server.requests) == 3


# -- 3. cost: cached input at its own price, exact Decimals ----------------------------------

def openai_sse(prompt: int, completion: int, cached: int | None) -> Reply:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    frames = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "priced"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": usage},
    ]
    body = "".join(f"data: {json.dumps(f)}\n\n" for f in frames) + "data: [DONE]\n\n"
    return Reply(body=body, content_type="text/event-stream", stream=True)


def anthropic_sse(fresh: int, cache_read: int, cache_write: int, completion: int) -> Reply:
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "m",
            "usage": {"input_tokens": fresh, "cache_read_input_tokens": cache_read,
                      "cache_creation_input_tokens": cache_write, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "priced"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": completion}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    return Reply(body=body, content_type="text/event-stream", stream=True)


# (model, answer, input tokens, output tokens, cached tokens, cost computed by hand)
COST_CASES = [
    # (10000 * 2.5 + 2345 * 1.25 + 678 * 10) / 1e6 = (25000 + 2931.25 + 6780) / 1e6
    pytest.param("priced", openai_sse(12345, 678, 2345), 12345, 678, 2345, Decimal("0.03471125"),
                 id="cached-at-cached-price"),
    # no cached price: cached tokens cost the input price, (12345 * 2.5 + 678 * 10) / 1e6
    pytest.param("priced-no-cache-price", openai_sse(12345, 678, 2345), 12345, 678, 2345, Decimal("0.0376425"),
                 id="no-cached-price-means-input-price"),
    pytest.param("priced", openai_sse(12345, 678, None), 12345, 678, None, Decimal("0.0376425"),
                 id="nothing-cached"),
    # the whole prompt cached: (12345 * 1.25 + 678 * 10) / 1e6
    pytest.param("priced", openai_sse(12345, 678, 12345), 12345, 678, 12345, Decimal("0.02221125"),
                 id="all-cached"),
    # a provider claiming more cached than sent is clamped to the prompt
    pytest.param("priced", openai_sse(12345, 678, 99999), 12345, 678, 99999, Decimal("0.02221125"),
                 id="cached-over-prompt-clamped"),
    # 0.1 and 0.2 as binary floats would give 3.0000000000000004e-07; here: (2 * 0.1 + 1 * 0.01 + 1 * 0.2) / 1e6
    pytest.param("priced-tenths", openai_sse(3, 1, 1), 3, 1, 1, Decimal("0.00000041"), id="no-float-error"),
    # Anthropic: input = fresh 400 + cache read 2000 + cache write 300; cached = the read part
    # (400 * 3 + 300 * 3 + 2000 * 0.3 + 50 * 15) / 1e6 = (1200 + 900 + 600 + 750) / 1e6
    pytest.param("priced-claude", anthropic_sse(400, 2000, 300, 50), 2700, 50, 2000, Decimal("0.00345"),
                 id="anthropic-cache-read"),
    pytest.param("unpriced", openai_sse(12345, 678, 2345), 12345, 678, 2345, None, id="no-pricing-no-cost"),
]


@pytest.mark.parametrize(("model", "answer", "inp", "out", "cached", "cost"), COST_CASES)
def test_cost_with_cached_input(make: Callable[..., Harness], server: ReplayServer, model: str, answer: Reply,
                                inp: int, out: int, cached: int | None, cost: Decimal | None) -> None:
    h = make()
    server.push(answer, answer)
    events, _ = h.stream(model)
    usage = [e for e in events if type(e) is Usage]
    assert len(usage) == 1
    assert (usage[0].input_tokens, usage[0].output_tokens, usage[0].cached_input_tokens) == (inp, out, cached)
    assert usage[0].estimated is False
    assert usage[0].cost == cost
    if cost is not None:
        assert type(usage[0].cost) is Decimal and usage[0].cost.as_tuple() == cost.as_tuple()
    resp, _ = h.generate(model)
    assert resp.cost == cost and resp.text == "priced"
    totals = h.rt.totals
    assert (totals.calls, totals.input_tokens, totals.output_tokens) == (2, 2 * inp, 2 * out)
    assert totals.cost == 2 * (cost or 0) and type(totals.cost) is Decimal


def test_failed_attempts_cost_nothing(make: Callable[..., Harness], server: ReplayServer) -> None:
    """Retries and fallbacks are free: only the answer that arrived is billed, at its model's price."""
    h = make()
    server.push(DOWN, DOWN, anthropic_sse(400, 2000, 300, 50))
    resp, _ = h.generate("priced-chain")
    assert resp.models == ("priced-chain", "priced-claude")
    assert resp.cost == Decimal("0.00345")
    totals = h.rt.totals
    assert (totals.calls, totals.fallbacks, totals.cost) == (1, 1, Decimal("0.00345"))


def test_estimated_usage_is_priced(make: Callable[..., Harness], server: ReplayServer) -> None:
    h = make()
    server.push(Script(text="a few words without usage", usage=None))
    resp, _ = h.generate("priced")
    u = resp.usage
    assert u is not None and u.estimated is True and u.input_tokens and u.output_tokens
    assert resp.cost == (Decimal(u.input_tokens) * Decimal("2.5") + Decimal(u.output_tokens) * 10) / 1_000_000
    assert h.rt.totals.cost == resp.cost


# -- 4. a 408 is retried, whatever the format ------------------------------------------------

RETRY_MODELS = [pytest.param(f"retry-{fmt}", id=fmt) for fmt, *_ in PROVIDERS] + [
    pytest.param("retry-plain", id="default-status-mapping")
]


@pytest.mark.parametrize("model", RETRY_MODELS)
def test_408_is_a_timeout_and_is_retried(make: Callable[..., Harness], server: ReplayServer, model: str) -> None:
    h = make()
    server.push(Script(status=408), Script(text="after the 408"))
    events, waited = h.stream(model)
    assert text(events) == "after the 408"
    assert fallbacks(events) == []  # retried on the same model, not moved on
    assert len(server.requests) == 2 and server.requests[0].path == server.requests[1].path
    assert 0 <= waited <= 0.25  # full jitter under base_delay

    h = make(policy="raise")
    server.reset()
    server.push(Script(status=408))
    with pytest.raises(modelwire.RequestTimeout) as info:
        h.stream(model)
    assert (info.value.kind, info.value.status) == ("timeout", 408)


def test_408_twice_moves_down_the_chain(make: Callable[..., Harness], server: ReplayServer) -> None:
    h = make()
    server.push(Script(status=408), Script(status=408), Script(text="second ok"))
    events, _ = h.stream("retry-openai")
    assert fallbacks(events) == [("retry-openai", "second")] and text(events) == "second ok"


# -- 5. Retry-After: delta-seconds and HTTP-date, and the runtime waits that long -------------

def http_date(seconds_from_now: float) -> str:
    return email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


# (header value, status, retry_after bounds (low, high] or exact, what follows)
RETRY_AFTER_CASES = [
    pytest.param(lambda: "7", 429, (7.0, 7.0), "retry", id="delta-seconds"),
    pytest.param(lambda: "0", 503, (0.0, 0.0), "retry", id="delta-zero"),
    pytest.param(lambda: " 12 ", 429, (12.0, 12.0), "retry", id="delta-with-spaces"),
    pytest.param(lambda: http_date(30), 429, (20.0, 30.0), "retry", id="http-date-future"),
    pytest.param(lambda: http_date(45), 503, (35.0, 45.0), "retry", id="http-date-on-503"),
    pytest.param(lambda: http_date(-3600), 429, (0.0, 0.0), "retry", id="http-date-past-is-now"),
    pytest.param(lambda: http_date(3600), 429, (3500.0, 3600.0), "next", id="http-date-over-cap-moves-on"),
    pytest.param(lambda: "soon", 429, None, "retry", id="unparsable-is-none"),
]


@pytest.mark.parametrize(("header", "status", "bounds", "then"), RETRY_AFTER_CASES)
def test_retry_after_is_parsed_and_waited(make: Callable[..., Harness], server: ReplayServer,
                                          header: Callable[[], str], status: int,
                                          bounds: tuple[float, float] | None, then: str) -> None:
    h = make(policy="recording")
    server.push(Script(status=status, headers={"retry-after": header()}), Script(text="after waiting"))
    events, waited = h.stream("retry-openai")
    assert text(events) == "after waiting"
    (error, decision), = h.recording.seen
    if bounds is None:
        assert error.retry_after is None
        assert decision.action == "retry" and 0 <= waited <= 0.25  # plain backoff
        return
    low, high = bounds
    assert error.retry_after is not None
    assert (error.retry_after == low) if low == high else (low < error.retry_after <= high)
    if then == "retry":
        assert decision.action == "retry" and decision.delay == error.retry_after
        assert waited == pytest.approx(error.retry_after, abs=1e-9)  # the runtime really waited that long
        assert fallbacks(events) == []
    else:  # longer than retry_after_cap (60 s): no wait, the next model
        assert decision.action == "next" and waited == 0
        assert fallbacks(events) == [("retry-openai", "second")]


@pytest.mark.parametrize("form", [pytest.param("7", id="delta-seconds"), pytest.param("date", id="http-date")])
def test_retry_after_reaches_the_caller(make: Callable[..., Harness], server: ReplayServer, form: str) -> None:
    h = make(policy="raise")
    server.push(Script(status=429, headers={"retry-after": http_date(20) if form == "date" else form}))
    with pytest.raises(modelwire.RateLimitError) as info:
        h.stream("retry-openai")
    ra = info.value.retry_after
    assert ra is not None and (ra == 7.0 if form == "7" else 10.0 < ra <= 20.0)


# -- 6. a prefix fallback needs the target's `prefill` capability --------------------------------

PARTIAL = Script(text=("Once ", "upon ", "a ", "time ") * 20, disconnect_after=1000)


@pytest.mark.parametrize(
    ("model", "target", "continued"),
    [
        pytest.param("prefix-to-noprefill", "noprefill", False, id="target-without-prefill-restarts"),
        pytest.param("prefix-to-prefill", "prefill", True, id="target-with-prefill-continues"),
    ],
)
def test_prefix_fallback_needs_prefill(make: Callable[..., Harness], server: ReplayServer, model: str,
                                       target: str, continued: bool) -> None:
    h = make()
    server.push(PARTIAL, Script(text=" the end."))
    events, _ = h.stream(model)
    fb, = (e for e in events if type(e) is Fallback)
    assert (fb.from_model, fb.to_model, fb.continued) == (model, target, continued)
    partial = text(events[:events.index(fb)])
    assert partial.startswith("Once upon")
    last = server.requests[-1].json["messages"][-1]
    if continued:
        assert last["role"] == "assistant" and json.dumps(last).count(partial.strip()) == 1
    else:
        assert last["role"] == "user" and all(m["role"] != "assistant" for m in server.requests[-1].json["messages"])

    server.reset()
    server.push(PARTIAL, Script(text=" the end."))
    resp, _ = h.generate(model)
    assert resp.models == (model, target)
    assert resp.text.endswith(" the end.")
    assert resp.text.startswith("Once upon") is continued


# -- 7. full-jitter backoff: exact bounds, base and cap ---------------------------------------------

@pytest.mark.parametrize(
    ("number", "base", "cap", "ceiling"),
    [
        pytest.param(1, 0.5, 4.0, 0.5, id="first-retry-is-base"),
        pytest.param(2, 0.5, 4.0, 1.0, id="doubles"),
        pytest.param(3, 0.5, 4.0, 2.0, id="doubles-again"),
        pytest.param(4, 0.5, 4.0, 4.0, id="reaches-cap"),
        pytest.param(5, 0.5, 4.0, 4.0, id="stays-at-cap"),
        pytest.param(1, 3.0, 2.0, 2.0, id="cap-below-base"),
        pytest.param(8, 0.25, 100.0, 32.0, id="far-below-cap"),
    ],
)
def test_backoff_bounds(tmp_path: Path, server: ReplayServer, number: int, base: float, cap: float,
                        ceiling: float) -> None:
    h = Harness(server, tmp_path)
    settings = attrs.evolve(h.rt.catalog.models["backoff"].retry, base_delay=base, max_delay=cap, attempts=99)
    error = modelwire.ProviderDownError("down", status=503)
    rng = BoundsRng()
    decision = default_policy_class()(rng=rng).decide(error, modelwire.Attempt("m", number, False, settings, None))
    assert rng.asked == [(0.0, ceiling)]
    assert (decision.action, decision.delay) == ("retry", ceiling)
    seeded, twin = random.Random(2026), random.Random(2026)
    decision = default_policy_class()(rng=seeded).decide(error, modelwire.Attempt("m", number, False, settings, None))
    assert decision.delay == twin.uniform(0.0, ceiling)


def test_backoff_waits_are_what_the_runtime_sleeps(make: Callable[..., Harness], server: ReplayServer) -> None:
    """Four 503s then an answer: waits of 0.5, 1, 1.5 (cap), 1.5, each the upper bound the rng was given."""
    h = make()
    server.push(DOWN, DOWN, DOWN, DOWN, Script(text="fifth try"))
    events, waited = h.stream("backoff")
    assert text(events) == "fifth try" and len(server.requests) == 5
    assert h.rng.asked == [(0.0, 0.5), (0.0, 1.0), (0.0, 1.5), (0.0, 1.5)]
    assert waited == pytest.approx(4.5, abs=1e-9)
