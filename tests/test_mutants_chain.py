"""Table-driven tests that pin planning and the fallback loop exactly.

They kill mutmut's survivors in ``_runtime/planning.py`` and ``_runtime/fallback.py``
(see docs/testing.md, "Mutation testing"). Planning is pure, so it is called
directly on a real catalog. The fallback loop is driven through its seams:
``attempt`` is a script of outcomes in place of the transport (tests/test_fallback.py
covers the same loop over loopback HTTP), the policy records what it was asked,
and trio's ``MockClock`` turns backoff into virtual time, never slept.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
import trio.testing

import modelwire
from modelwire import Decision, Fallback, TextDelta, ToolCallDelta, Usage
from modelwire._runtime.fallback import run_chain
from modelwire._runtime.planning import (
    CallPlan,
    chain_for,
    missing_capabilities,
    plan,
    resolve_model,
)

MODELS = """
version: 1
models:
  a: {provider: openai, id: gpt-a, fallback: [b, c], retry: {attempts: 4, base_delay: 0.25}}
  b: {provider: openai, fallback: [p]}
  c: {provider: anthropic, id: claude-c}
  p: {provider: anthropic, id: claude-p, capabilities: [generate, stream, prefill]}
  p2: {provider: anthropic, capabilities: [generate, stream, prefill]}
  plain: {provider: openai, capabilities: [generate]}
  to-p: {provider: openai, capabilities: [generate], fallback: [plain, p]}
  no-way: {provider: openai, capabilities: [generate], fallback: [plain]}
  slashed: {provider: openai, id: "org/model v1"}
  bare: {provider: bare}
  bare-slashed: {provider: bare, id: "org/model v1"}
  incapable: {provider: openai, capabilities: []}
  boxed: {provider: box, id: "Xy"}
providers:
  bare:
    base_url: https://bare.example/api/
    operators:
      generate: {path: "{model}:go", request: "{model: model}", parser: jsonchunk}
  box:  # only slashes are trimmed where base_url and path meet, never a letter
    base_url: https://box.example/BOX/
    operators:
      generate: {path: "/X/{model}", request: "{model: model}", parser: jsonchunk}
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> modelwire.Catalog:
    path = Path(tmp_path_factory.mktemp("chain")) / "models.yaml"
    path.write_text(MODELS)
    env = {"OPENAI_BASE_URL": "https://openai.example/v1/", "ANTHROPIC_BASE_URL": "https://anthropic.example"}
    return modelwire.load_manifests("builtin:openai", "builtin:anthropic", path, env=env)


# --- resolve_model / plan ----------------------------------------------------------------------

PLAN_CASES = [
    # model, model_id, provider, url, capabilities
    ("a", "gpt-a", "openai", "https://openai.example/v1/chat/completions", ["generate", "stream"]),
    ("b", "b", "openai", "https://openai.example/v1/chat/completions", ["generate", "stream"]),
    ("c", "claude-c", "anthropic", "https://anthropic.example/v1/messages", ["generate", "stream"]),
    ("bare", "bare", "bare", "https://bare.example/api/bare:go", ["generate", "stream"]),
    ("bare-slashed", "org/model v1", "bare", "https://bare.example/api/org%2Fmodel%20v1:go", ["generate", "stream"]),
    # provider/model of a known provider: the provider's default capabilities (openai.yaml)
    ("openai/gpt-z", "gpt-z", "openai", "https://openai.example/v1/chat/completions", ["generate", "stream", "tools", "embed"]),
    ("openai/gpt-z/v2", "gpt-z/v2", "openai", "https://openai.example/v1/chat/completions",
     ["generate", "stream", "tools", "embed"]),
    ("bare/x y", "x y", "bare", "https://bare.example/api/x%20y:go", ["generate", "stream"]),
    ("boxed", "Xy", "box", "https://box.example/BOX/X/Xy", ["generate", "stream"]),
]


@pytest.mark.parametrize(("model", "model_id", "provider", "url", "capabilities"), PLAN_CASES)
def test_plan(catalog: modelwire.Catalog, model: str, model_id: str, provider: str, url: str,
              capabilities: list[str]) -> None:
    got = plan(catalog, model, "generate", ["generate"])
    assert got == CallPlan(model, model_id, got.spec, provider, catalog.providers[provider], "generate",
                           catalog.providers[provider].operators["generate"], url)
    assert (got.spec.provider, got.spec.capabilities) == (provider, capabilities)
    # a declared model keeps its own spec; provider/model gets one naming the id
    assert got.spec.id == (catalog.models[model].id if model in catalog.models else model_id)
    assert resolve_model(catalog, model) == (got.spec, model_id)
    assert got.context() == {"model": model, "provider": provider, "endpoint": url}
    if model in catalog.models:
        assert got.spec is catalog.models[model]


def unknown(catalog: modelwire.Catalog, model: str, hint: str = "") -> str:
    known = ", ".join(sorted(catalog.models)) or "none"
    return (f"unknown model {model!r}{hint}; declared models: {known}"
            "; any model of a known provider works as provider/model")


UNKNOWN_CASES = [
    # model, the message (from the catalog), given the catalog
    ("nosuch", lambda c: unknown(c, "nosuch")),
    ("to-q", lambda c: unknown(c, "to-q", " (did you mean 'to-p'?)")),
    ("openai/", lambda c: unknown(c, "openai/")),  # a known provider, no model id
    ("nosuch/x", lambda c: "unknown model 'nosuch/x'; unknown provider 'nosuch', known: anthropic, bare, box, openai"),
    ("/x", lambda c: "unknown model '/x'; unknown provider '', known: anthropic, bare, box, openai"),
]


@pytest.mark.parametrize(("model", "message"), UNKNOWN_CASES)
def test_resolve_unknown_model(catalog: modelwire.Catalog, model: str, message: Any) -> None:
    for call in (lambda: resolve_model(catalog, model), lambda: plan(catalog, model, "generate"),
                 lambda: chain_for(catalog, model, [])):
        with pytest.raises(modelwire.NotFoundError) as info:
            call()
        assert info.value.message == message(catalog)
        assert (info.value.code, info.value.model) == ("MODEL_NOT_FOUND", model)


def test_resolve_in_an_empty_catalog(catalog: modelwire.Catalog) -> None:
    empty = attrs.evolve(catalog, models={})
    with pytest.raises(modelwire.NotFoundError) as info:
        resolve_model(empty, "x")
    assert info.value.message == unknown(empty, "x")
    assert "declared models: none;" in info.value.message
    with pytest.raises(modelwire.NotFoundError) as info:
        resolve_model(attrs.evolve(empty, providers={}), "p/x")
    assert info.value.message == "unknown model 'p/x'; unknown provider 'p', known: none"


PLAN_ERROR_CASES = [
    # model, operator, needs, error class, code, provider, message
    ("c", "embed", [], modelwire.NotFoundError, "OPERATOR_NOT_FOUND", "anthropic",
     "provider 'anthropic' has no 'embed' operator; it has: generate"),
    ("a", "nope", ["tools"], modelwire.NotFoundError, "OPERATOR_NOT_FOUND", "openai",
     "provider 'openai' has no 'nope' operator; it has: embed, generate"),
    ("plain", "generate", ["stream", "generate", "tools"], modelwire.InvalidRequestError, "CAPABILITY_MISSING",
     "openai", "model 'plain' lacks capability stream, tools (it has: generate)"),
    ("a", "generate", ["tools"], modelwire.InvalidRequestError, "CAPABILITY_MISSING", "openai",
     "model 'a' lacks capability tools (it has: generate, stream)"),
    ("incapable", "generate", ["generate"], modelwire.InvalidRequestError, "CAPABILITY_MISSING", "openai",
     "model 'incapable' lacks capability generate (it has: none)"),
]


@pytest.mark.parametrize(("model", "operator", "needs", "cls", "code", "provider", "message"), PLAN_ERROR_CASES)
def test_plan_errors(catalog: modelwire.Catalog, model: str, operator: str, needs: list[str],
                     cls: type[modelwire.ModelError], code: str, provider: str, message: str) -> None:
    with pytest.raises(cls) as info:
        plan(catalog, model, operator, needs)
    err = info.value
    assert (err.message, err.code, err.model, err.provider) == (message, code, model, provider)


def test_plan_operator_none_left(catalog: modelwire.Catalog) -> None:
    bare = attrs.evolve(catalog.providers["bare"], operators={})
    with pytest.raises(modelwire.NotFoundError) as info:
        plan(attrs.evolve(catalog, providers={**catalog.providers, "bare": bare}), "bare", "generate")
    assert info.value.message == "provider 'bare' has no 'generate' operator; it has: none"


# --- missing_capabilities / chain_for ----------------------------------------------------------

MISSING_CASES = [
    ("a", [], []),
    ("a", ["stream", "generate"], []),
    ("a", ["tools", "stream", "vision"], ["tools", "vision"]),
    ("p", ["prefill"], []),
    ("openai/x", ["tools", "prefill"], ["prefill"]),
]


@pytest.mark.parametrize(("model", "needs", "missing"), MISSING_CASES)
def test_missing_capabilities(catalog: modelwire.Catalog, model: str, needs: list[str], missing: list[str]) -> None:
    assert missing_capabilities(catalog, model, needs) == missing


CHAIN_CASES = [
    # model, needs, chain, the Fallback said before any HTTP
    ("a", [], ["a", "b", "c"], None),
    ("a", ["stream"], ["a", "b", "c"], None),
    ("c", [], ["c"], None),
    ("b", ["prefill"], ["p"], Fallback("b", "p", "capability prefill missing")),
    ("to-p", ["stream"], ["p"], Fallback("to-p", "p", "capability stream missing")),
    ("to-p", ["stream", "prefill"], ["p"], Fallback("to-p", "p", "capability stream, prefill missing")),
    ("to-p", ["generate"], ["to-p", "plain", "p"], None),
]


@pytest.mark.parametrize(("model", "needs", "chain", "marker"), CHAIN_CASES)
def test_chain_for(catalog: modelwire.Catalog, model: str, needs: list[str], chain: list[str],
                   marker: Fallback | None) -> None:
    assert chain_for(catalog, model, needs) == (chain, marker)


@pytest.mark.parametrize(("model", "needs", "message"), [
    ("no-way", ["stream", "tools"], "no model can serve this request: capability stream, tools is missing in no-way, plain"),
    ("c", ["tools"], "no model can serve this request: capability tools is missing in c"),
])
def test_chain_for_nobody_can(catalog: modelwire.Catalog, model: str, needs: list[str], message: str) -> None:
    with pytest.raises(modelwire.InvalidRequestError) as info:
        chain_for(catalog, model, needs)
    err = info.value
    assert (err.message, err.code, err.model, err.provider) == (
        message, "CAPABILITY_MISSING", model, catalog.models[model].provider)


# --- run_chain: the fallback loop --------------------------------------------------------------

MSGS = [{"role": "user", "content": "hi"}]


def down(code: str = "E") -> modelwire.ModelError:
    return modelwire.ProviderDownError("down", status=503, code=code)


def T(text: str) -> TextDelta:
    return TextDelta(text)


def prefixed(text: str) -> list[dict[str, Any]]:
    return [*MSGS, {"role": "assistant", "content": text}]


RETRY, NEXT, PREFIX, RAISE = Decision("retry"), Decision("next"), Decision("next", prefix=True), Decision("raise")

# chain; per attempt: the events it yields, then optionally an error; the policy's decisions in order;
# events the caller gets (an error last: raised); attempts the policy saw (model, number, started, next);
# the (model, messages) each attempt was sent; virtual seconds slept.
CHAIN_LOOP_CASES = [
    pytest.param(["a", "b"], [[T("hi")]], [], [T("hi")], [], [("a", MSGS)], 0.0, id="first-succeeds"),
    pytest.param(["a", "b"], [[Usage(1, 2), down()], [T("ok")]], [Decision("retry", 1.5)],
                 [Usage(1, 2), T("ok")], [("a", 1, False, "b")], [("a", MSGS), ("a", MSGS)], 1.5,
                 id="retry-before-text-is-invisible"),
    pytest.param(["a"], [[down()], [down()], [down()], [T("ok")]],
                 [Decision("retry", 1.0), Decision("retry", 2.0), Decision("retry", 4.0)],
                 [T("ok")], [("a", 1, False, None), ("a", 2, False, None), ("a", 3, False, None)],
                 [("a", MSGS)] * 4, 7.0, id="retries-count-up"),
    pytest.param(["a", "b"], [[T("par"), T("tial"), down()], [T("ok")]], [Decision("retry", 2.0)],
                 [T("par"), T("tial"), Fallback("a", "a", "retry after provider_down (E)"), T("ok")],
                 [("a", 1, True, "b")], [("a", MSGS), ("a", MSGS)], 2.0, id="retry-after-text-is-marked"),
    pytest.param(["a", "b"], [[ToolCallDelta(0, name="f"), down("T")], [T("ok")]], [RETRY],
                 [ToolCallDelta(0, name="f"), Fallback("a", "a", "retry after provider_down (T)"), T("ok")],
                 [("a", 1, True, "b")], [("a", MSGS), ("a", MSGS)], 0.0, id="a-tool-call-counts-as-started"),
    pytest.param(["a", "b", "c"], [[down()], [down("F")], [T("ok")]], [NEXT, NEXT],
                 [Fallback("a", "b", "provider_down (E)"), Fallback("b", "c", "provider_down (F)"), T("ok")],
                 [("a", 1, False, "b"), ("b", 1, False, "c")], [("a", MSGS), ("b", MSGS), ("c", MSGS)], 0.0,
                 id="next-walks-the-chain"),
    pytest.param(["a", "b"], [[down()], [down()], [T("ok")]], [RETRY, NEXT],
                 [Fallback("a", "b", "provider_down (E)"), T("ok")],
                 [("a", 1, False, "b"), ("a", 2, False, "b")], [("a", MSGS)] * 2 + [("b", MSGS)], 0.0,
                 id="retry-then-next"),
    pytest.param(["a", "b"], [[down()], [down()], [down()]], [NEXT, RETRY, RAISE],
                 [Fallback("a", "b", "provider_down (E)"), down()],
                 [("a", 1, False, "b"), ("b", 1, False, None), ("b", 2, False, None)],
                 [("a", MSGS), ("b", MSGS), ("b", MSGS)], 0.0,
                 id="number-restarts-on-the-next-model"),
    pytest.param(["a"], [[T("x"), down()]], [NEXT], [T("x"), down()], [("a", 1, True, None)], [("a", MSGS)], 0.0,
                 id="next-at-the-end-of-the-chain-raises"),
    pytest.param(["a", "b"], [[down()]], [RAISE], [down()], [("a", 1, False, "b")], [("a", MSGS)], 0.0,
                 id="raise"),
    pytest.param(["a", "p"], [[T("x"), T("y"), down()], [T("z")]], [PREFIX],
                 [T("x"), T("y"), Fallback("a", "p", "provider_down (E)", True), T("z")],
                 [("a", 1, True, "p")], [("a", MSGS), ("p", prefixed("xy"))], 0.0,
                 id="prefix-continues-on-a-prefill-model"),
    pytest.param(["a", "p"], [[T("x"), down()], [T("y"), T("z"), down()], [T("!")]], [RETRY, PREFIX],
                 [T("x"), Fallback("a", "a", "retry after provider_down (E)"), T("y"), T("z"),
                  Fallback("a", "p", "provider_down (E)", True), T("!")],
                 [("a", 1, True, "p"), ("a", 2, True, "p")], [("a", MSGS), ("a", MSGS), ("p", prefixed("yz"))], 0.0,
                 id="a-retry-drops-the-earlier-partial"),
    pytest.param(["a", "b"], [[T("x"), down()], [T("y")]], [PREFIX],
                 [T("x"), Fallback("a", "b", "provider_down (E)"), T("y")],
                 [("a", 1, True, "b")], [("a", MSGS), ("b", MSGS)], 0.0, id="prefix-needs-a-prefill-target"),
    pytest.param(["a", "p"], [[down()], [T("y")]], [PREFIX],
                 [Fallback("a", "p", "provider_down (E)"), T("y")],
                 [("a", 1, False, "p")], [("a", MSGS), ("p", MSGS)], 0.0, id="prefix-needs-a-partial-answer"),
    pytest.param(["a", "p"], [[T("x"), down()], [T("y")]], [NEXT],
                 [T("x"), Fallback("a", "p", "provider_down (E)"), T("y")],
                 [("a", 1, True, "p")], [("a", MSGS), ("p", MSGS)], 0.0, id="prefill-target-but-no-prefix-asked"),
    pytest.param(["a", "b", "p"], [[T("x"), down()], [T("y"), down()], [T("z")]], [NEXT, PREFIX],
                 [T("x"), Fallback("a", "b", "provider_down (E)"), T("y"), Fallback("b", "p", "provider_down (E)", True),
                  T("z")],
                 [("a", 1, True, "b"), ("b", 1, True, "p")], [("a", MSGS), ("b", MSGS), ("p", prefixed("y"))], 0.0,
                 id="a-switch-drops-the-earlier-partial"),
    # Two `prefix` switches: the third model gets the whole answer once, not "x" then "xy".
    pytest.param(["a", "p", "p2"], [[T("x"), down()], [T("y"), down()], [T("z")]], [PREFIX, PREFIX],
                 [T("x"), Fallback("a", "p", "provider_down (E)", True), T("y"),
                  Fallback("p", "p2", "provider_down (E)", True), T("z")],
                 [("a", 1, True, "p"), ("p", 1, True, "p2")],
                 [("a", MSGS), ("p", prefixed("x")), ("p2", prefixed("xy"))], 0.0, id="prefix-twice-sends-the-answer-once"),
    # A retry on a model that continues a prefix restarts after the prefix, not from nothing.
    pytest.param(["a", "p", "p2"], [[T("x"), down()], [T("y"), down()], [T("w"), down()], [T("z")]],
                 [PREFIX, RETRY, PREFIX],
                 [T("x"), Fallback("a", "p", "provider_down (E)", True), T("y"),
                  Fallback("p", "p", "retry after provider_down (E)"), T("w"),
                  Fallback("p", "p2", "provider_down (E)", True), T("z")],
                 [("a", 1, True, "p"), ("p", 1, True, "p2"), ("p", 2, True, "p2")],
                 [("a", MSGS), ("p", prefixed("x")), ("p", prefixed("x")), ("p2", prefixed("xw"))], 0.0,
                 id="retry-keeps-the-carried-prefix"),
    # A plain switch after a `prefix` one starts from scratch: the earlier prefix is not resent.
    pytest.param(["a", "p", "b"], [[T("x"), down()], [T("y"), down()], [T("z")]], [PREFIX, NEXT],
                 [T("x"), Fallback("a", "p", "provider_down (E)", True), T("y"),
                  Fallback("p", "b", "provider_down (E)"), T("z")],
                 [("a", 1, True, "p"), ("p", 1, True, "b")],
                 [("a", MSGS), ("p", prefixed("x")), ("b", MSGS)], 0.0, id="next-after-prefix-starts-over"),
    pytest.param(["a", "b", "p"], [[T("x"), down()], [T("y"), T("v"), down()], [T("w"), down()], [T("z")]],
                 [NEXT, RETRY, PREFIX],
                 [T("x"), Fallback("a", "b", "provider_down (E)"), T("y"), T("v"),
                  Fallback("b", "b", "retry after provider_down (E)"), T("w"),
                  Fallback("b", "p", "provider_down (E)", True), T("z")],
                 [("a", 1, True, "b"), ("b", 1, True, "p"), ("b", 2, True, "p")],
                 [("a", MSGS), ("b", MSGS), ("b", MSGS), ("p", prefixed("w"))], 0.0,
                 id="after-a-plain-switch-a-retry-keeps-nothing"),
]


def run_virtual(fn: Any) -> Any:
    return anyio.run(fn, backend="trio", backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.mark.parametrize(("chain", "script", "decisions", "events", "asked", "sent", "slept"), CHAIN_LOOP_CASES)
def test_run_chain(catalog: modelwire.Catalog, chain: list[str], script: list[list[Any]], decisions: list[Decision],
                   events: list[Any], asked: list[tuple[Any, ...]], sent: list[tuple[str, Any]], slept: float) -> None:
    script, decisions = list(script), list(decisions)
    seen: list[tuple[Any, ...]] = []
    calls: list[tuple[str, Any]] = []
    markers: list[Fallback] = []
    planned: list[str] = []

    def policy_for(plan_: CallPlan) -> Any:
        planned.append(plan_.model)

        def policy(error: modelwire.ModelError, attempt: Any) -> Decision:
            assert attempt.settings is catalog.models[attempt.model].retry
            assert attempt.model == plan_.model
            seen.append((attempt.model, attempt.number, attempt.started, attempt.next_model))
            return decisions.pop(0)

        return policy

    async def attempt(plan_: CallPlan, msgs: Any) -> AsyncGenerator[Any, None]:
        assert plan_ == plan(catalog, plan_.model, "generate")
        calls.append((plan_.model, msgs))
        for item in script.pop(0):
            if isinstance(item, modelwire.ModelError):
                raise modelwire.ProviderDownError(item.message, status=item.status, code=item.code)
            yield item

    async def main() -> tuple[list[Any], float]:
        got: list[Any] = []
        start = anyio.current_time()
        try:
            async for ev in run_chain(catalog, chain, "generate", ["generate"], MSGS, policy_for=policy_for,
                                      attempt=attempt, on_fallback=markers.append):
                got.append(ev)
        except modelwire.ModelError as exc:
            got.append(exc)
        return got, anyio.current_time() - start

    got, elapsed = run_virtual(main)
    last = events[-1] if events else None
    if isinstance(last, modelwire.ModelError):
        err = got.pop()
        assert isinstance(err, modelwire.ProviderDownError) and err.code == last.code
        events = events[:-1]
    assert got == events
    assert markers == [e for e in events if isinstance(e, Fallback)]
    assert seen == asked
    assert calls == sent
    assert planned == [m for i, (m, _) in enumerate(sent) if i == 0 or sent[i - 1][0] != m]  # once per model
    assert elapsed == slept
    assert not script and not decisions  # every scripted attempt and decision was used


def test_run_chain_rechecks_capabilities(catalog: modelwire.Catalog) -> None:
    """A chain not filtered by chain_for still fails before any attempt on a model that lacks a need."""
    async def attempt(plan_: CallPlan, msgs: Any) -> AsyncGenerator[Any, None]:
        raise AssertionError("no attempt expected")
        yield  # pragma: no cover

    async def main() -> None:
        async for _ in run_chain(catalog, ["plain"], "generate", ["stream"], MSGS,
                                 policy_for=lambda p: None, attempt=attempt, on_fallback=lambda m: None):
            pass

    with pytest.raises(modelwire.InvalidRequestError) as info:
        run_virtual(main)
    assert info.value.code == "CAPABILITY_MISSING"
