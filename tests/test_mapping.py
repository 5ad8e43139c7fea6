"""Event rules and error rules, fed by hand (sans-IO)."""

from __future__ import annotations

from typing import Any

import pytest

import modelwire
from modelwire import Data, Done, Finish, Frame, TextDelta, ToolCallDelta, Usage
from modelwire._manifest.model import ErrorRule, EventRule, Operator
from modelwire._manifest.structure import converter
from modelwire._runtime.mapping import ErrorMapper, EventMapper, compile_rules

CTX = {"model": "m", "provider": "p", "endpoint": "http://x/y"}


def mapper(*rules: dict[str, Any]) -> EventMapper:
    op = converter().structure({"path": "/x", "events": list(rules)}, Operator)
    return EventMapper(compile_rules(op), CTX)


def feed(m: EventMapper, *frames: Frame) -> list[Any]:
    out: list[Any] = []
    for f in frames:
        out += m.feed(f)
    return out


@pytest.mark.parametrize(
    ("rules", "frames", "expected"),
    [
        pytest.param(
            [{"each": "choices[].delta.content", "emit": {"type": "text", "text": "@"}}],
            [Frame('{"choices":[{"delta":{"content":"a"}},{"delta":{"content":""}}]}')],
            [TextDelta("a")],
            id="each-text-skips-empty",
        ),
        pytest.param(
            [{"event": "delta", "emit": {"type": "text", "text": "t"}}],
            [Frame('{"t":"x"}', event="other"), Frame('{"t":"y"}', event="delta")],
            [TextDelta("y")],
            id="event-filter",
        ),
        pytest.param(
            [{"data": "[DONE]", "stop": True}, {"emit": {"type": "text", "text": "t"}}],
            [Frame('{"t":"a"}'), Frame("[DONE]"), Frame('{"t":"never"}')],
            [TextDelta("a")],
            id="raw-data-stop-before-decoding",
        ),
        pytest.param(
            [{"when": "usage", "emit": {"type": "usage", "input_tokens": "usage.i", "output_tokens": "usage.o"}}],
            [Frame('{"usage":null}'), Frame('{"usage":{"i":3,"o":4}}')],
            [Usage(3, 4)],
            id="when-usage",
        ),
        pytest.param(
            [{"each": "calls[]", "emit": {"type": "tool_call", "index": "i", "id": "id", "name": "n", "arguments": "a"}}],
            [Frame('{"calls":[{"i":1,"id":"c","n":"f","a":"{\\"x"}]}'), Frame('{"calls":[{"i":1,"a":"\\":1}"}]}')],
            [ToolCallDelta(1, "c", "f", '{"x'), ToolCallDelta(1, None, None, '":1}')],
            id="tool-call-deltas",
        ),
        pytest.param(
            [{"each": "calls[]", "emit": {"type": "tool_call", "id": "id", "name": "n", "arguments": "args"}}],
            [Frame('{"calls":[{"id":"a","n":"f","args":{"x":1}},{"id":"b","n":"g","args":{}}]}'),
             Frame('{"calls":[{"id":"c","n":"h","args":{"y":[1]}}]}')],
            [ToolCallDelta(0, "a", "f", '{"x":1}'), ToolCallDelta(1, "b", "g", "{}"), ToolCallDelta(2, "c", "h", '{"y":[1]}')],
            id="auto-index-for-whole-calls",
        ),
        pytest.param(
            [{"when": "done", "emit": {"type": "finish", "reason": "why"}}, {"stop_when": "done"}],
            [Frame({"done": False}), Frame({"done": True, "why": "stop"})],
            [Finish("stop")],
            id="decoded-frames-and-stop-when",
        ),
        pytest.param(
            [{"each": "results[]", "emit": {"type": "data", "value": "{i: index, s: score}"}},
             {"when": "flag", "emit": {"type": "data"}}, {"emit": {"type": "data", "value": "missing"}}],
            [Frame('{"results":[{"index":1,"score":0.5},{"index":0}]}'), Frame('{"flag":[true]}')],
            [Data({"i": 1, "s": 0.5}), Data({"i": 0, "s": None}), Data({"flag": [True]})],
            id="data-any-json-value-null-skipped",
        ),
    ],
)
def test_rules(rules: list[dict[str, Any]], frames: list[Frame], expected: list[Any]) -> None:
    assert feed(mapper(*rules), *frames) == expected


def test_stop_sets_stopped_and_end_marker() -> None:
    m = mapper({"data": "[DONE]", "stop": True})
    assert m.has_end_marker and not m.stopped
    m.feed(Frame("[DONE]"))
    assert m.stopped


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        pytest.param("overloaded_error", modelwire.ProviderDownError, id="mapped-provider-down"),
        pytest.param("rate_limit_error", modelwire.RateLimitError, id="mapped-rate-limit"),
        pytest.param("weird", modelwire.InvalidRequestError, id="unmapped-uses-kind"),
    ],
)
def test_in_stream_error(code: str, cls: type[Exception]) -> None:
    m = mapper({
        "event": "error",
        "error": {"kind": "invalid_request", "code": "error.type", "message": "error.message",
                  "kinds": {"overloaded_error": "provider_down", "rate_limit_error": "rate_limit"}},
    })
    with pytest.raises(cls) as info:
        m.feed(Frame(f'{{"error":{{"type":"{code}","message":"boom"}}}}', event="error"))
    err = info.value
    assert isinstance(err, modelwire.ModelError)
    assert (err.code, err.message, err.model, err.provider) == (code, "boom", "m", "p")


def test_non_json_frame_is_a_parse_error() -> None:
    m = mapper({"emit": {"type": "text", "text": "t"}})
    with pytest.raises(modelwire.ParseError) as info:
        m.feed(Frame("<html>"))
    assert info.value.code == "FRAME_NOT_JSON" and info.value.endpoint == "http://x/y"
    # the raw-text rule that would have read it is named (DESIGN.md's sketch wrote `stop_when: "data == ..."`,
    # which reads a JSON field called data)
    assert "got '<html>'" in info.value.message and "{data: '[DONE]', stop: true}" in info.value.message


@pytest.mark.parametrize(
    ("rules", "status", "body", "cls", "code"),
    [
        pytest.param([], 429, b"", modelwire.RateLimitError, "HTTP_429", id="default-429"),
        pytest.param([], 503, b"x", modelwire.ProviderDownError, "HTTP_503", id="default-5xx"),
        pytest.param([], 401, b"", modelwire.AuthError, "HTTP_401", id="default-401"),
        pytest.param([], 418, b"", modelwire.InvalidRequestError, "HTTP_418", id="default-4xx"),
        pytest.param(
            [{"status": 400, "when": "error.code == 'ctx'", "kind": "limit_exceeded", "code": "error.code"}],
            400, b'{"error":{"code":"ctx"}}', modelwire.LimitExceededError, "ctx", id="rule-with-when",
        ),
        pytest.param(
            [{"status": "5xx", "kind": "rate_limit", "code": "error.code", "message": "error.message"}],
            529, b'{"error":{"code":"busy","message":"later"}}', modelwire.RateLimitError, "busy", id="status-class",
        ),
    ],
)
def test_error_rules(rules: list[dict[str, Any]], status: int, body: bytes, cls: type[Exception], code: str) -> None:
    mapped = ErrorMapper([converter().structure(r, ErrorRule) for r in rules])
    err = mapped.error(status, body, CTX, retry_after=2.0)
    assert type(err) is cls
    assert (err.code, err.status, err.retry_after, err.model) == (code, status, 2.0, "m")


def test_done_event_has_type() -> None:
    assert Done().to_dict() == {"type": "done"}


# -- the generated rule functions agree with the plain loop ------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KEYS = st.sampled_from([
    "choices", "delta", "content", "tool_calls", "function", "name", "arguments", "index", "id",
    "finish_reason", "usage", "prompt_tokens", "completion_tokens", "error", "message", "type",
    "text", "content_block", "partial_json", "stop_reason", "candidates", "parts", "functionCall",
    "args", "finishReason", "usageMetadata", "done", "done_reason", "eval_count", "code",
    "thought", "thinking", "reasoning_content", "reasoning", "signature", "object", "citation",
])
LEAVES = st.none() | st.booleans() | st.integers(-2, 5) | st.sampled_from([
    "", "x", "tool_use", "text_delta", "[DONE]", "stop", "server_tool_use", "input_json_delta", "thinking",
    "text", "chat.completion.done", "thinking_delta", "web_search_tool_result",
])
PAYLOADS = st.recursive(LEAVES, lambda c: st.lists(c, max_size=3) | st.dictionaries(KEYS, c, max_size=5), max_leaves=30)
EVENTS = st.sampled_from([None, "message", "message_start", "content_block_start", "content_block_delta", "message_delta", "message_stop", "error", "ping"])


def _outcome(fn: Any, frame: Frame) -> Any:
    try:
        return ("ok", fn(frame))
    except modelwire.ModelError as exc:
        return ("error", type(exc).__name__, exc.code, exc.message)


@pytest.mark.parametrize("manifest", ["openai", "anthropic", "gemini", "ollama", "openai-compatible"])
@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.tuples(PAYLOADS, EVENTS), min_size=1, max_size=6), as_text=st.booleans())
def test_generated_rules_agree_with_the_loop(manifest: str, frames: list[Any], as_text: bool) -> None:
    import json as _json

    from modelwire._manifest.catalog import load_manifests
    from modelwire._runtime.planning import plan

    catalog = _CATALOG.get(manifest) or _CATALOG.setdefault(manifest, load_manifests(f"builtin:{manifest}", env={}))
    provider = next(iter(catalog.providers))
    p = plan(catalog, f"{provider}/m", "generate")
    rules = compile_rules(p.operator)
    fast, slow = EventMapper(rules, CTX), EventMapper(rules, CTX)
    for payload, event in frames:
        data = _json.dumps(payload) if as_text else payload
        frame = Frame(data, event)
        assert _outcome(fast.feed, frame) == _outcome(slow.feed_reference, frame)
        assert fast.stopped == slow.stopped


_CATALOG: dict[str, Any] = {}


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(PAYLOADS, min_size=1, max_size=6))
def test_generated_data_rules_agree_with_the_loop(frames: list[Any]) -> None:
    rules = compile_rules(Operator(path="/x", events=[
        EventRule(each="choices", emit={"type": "data", "value": "@"}),
        EventRule(when="usage", emit={"type": "data"}),
        EventRule(emit={"type": "data", "value": "error.message"}),
    ]))
    fast, slow = EventMapper(rules, CTX), EventMapper(rules, CTX)
    for payload in frames:
        frame = Frame(payload)
        assert _outcome(fast.feed, frame) == _outcome(slow.feed_reference, frame)


# -- shared paths, split conditions, repeated guards: generated rules vs the loop -----

SMALL_KEYS = st.sampled_from(["a", "b", "kind", "block", "n"])
SMALL_FRAMES = st.fixed_dictionaries(
    {"n": st.integers(0, 1)}, optional={"kind": st.sampled_from(["x", "y"]), "block": st.sampled_from(["x", "y"])}
)
SMALL_LEAVES = st.none() | st.booleans() | st.integers(0, 2) | st.sampled_from(["", "x", "y", "a"])
SMALL = st.recursive(
    SMALL_LEAVES, lambda c: st.lists(c, max_size=2) | st.dictionaries(SMALL_KEYS, c, max_size=4), max_leaves=12
)
PATHS = st.sampled_from(["a", "b", "kind", "block", "a.kind", "a.b.kind", "b.a", "a[0]", "@", "n"])


def _conditions() -> st.SearchStrategy[str]:
    atom = PATHS | st.builds(
        lambda p, op, lit, flip: f"'{lit}' {op} {p}" if flip else f"{p} {op} '{lit}'",
        PATHS, st.sampled_from(["==", "!="]), st.sampled_from(["", "x", "y"]), st.booleans(),
    ) | st.builds(lambda p: f"!{p}", PATHS) | st.builds(lambda p: f"{p} == `1`", PATHS)
    return st.recursive(
        atom, lambda c: st.builds(lambda a, op, b: f"({a} {op} {b})", c, st.sampled_from(["&&", "||"]), c),
        max_leaves=4,
    )


def _rule(when: str, extra: str) -> EventRule:
    rule: dict[str, Any] = {
        "emit": {"when": when, "emit": {"type": "data", "value": "@"}},
        "recall": {"when": when, "recall": {"key": "n", "into": "block"}, "emit": {"type": "data", "value": "block"}},
        "remember": {"when": when, "remember": {"key": "n", "value": "kind"}, "emit": {"type": "data", "value": "@"}},
        "stop": {"stop_when": when},
    }[extra]
    result: EventRule = converter().structure(rule, EventRule)
    return result


@settings(max_examples=300, deadline=None)
@given(
    whens=st.lists(st.tuples(_conditions(), st.sampled_from(["emit", "emit", "recall", "remember", "stop"])),
                   min_size=1, max_size=5).map(lambda ws: ws + ws[:2]),  # some repeated guards
    frames=st.lists(SMALL | SMALL_FRAMES, min_size=1, max_size=5),
)
def test_generated_conditions_agree_with_the_loop(whens: list[tuple[str, str]], frames: list[Any]) -> None:
    remember = converter().structure({"remember": {"key": "n", "value": "kind"}}, EventRule)
    rules = compile_rules(Operator(path="/x", events=[remember] + [_rule(w, extra) for w, extra in whens]))
    fast, slow = EventMapper(rules, CTX), EventMapper(rules, CTX)
    for payload in frames:
        frame = Frame(payload)
        assert _outcome(fast.feed, frame) == _outcome(slow.feed_reference, frame)
        assert fast.stopped == slow.stopped


@pytest.mark.parametrize(
    ("when", "frame", "expected"),
    [
        pytest.param("block", {"n": 0, "kind": "x"}, [Data("x")], id="recalled-field-not-the-frames"),
        pytest.param("block == 'x'", {"n": 0, "kind": "x", "block": "y"}, [Data("x")], id="recalled-field-compared"),
        pytest.param("kind == 'x' && block", {"n": 0, "kind": "x"}, [Data("x")], id="frame-path-and-recalled"),
        pytest.param("kind == 'y' || !block", {"n": 0, "kind": "x"}, [], id="or-of-frame-and-recalled"),
    ],
)
def test_recalled_field_shadows_the_frames(when: str, frame: dict[str, Any], expected: list[Any]) -> None:
    m = mapper(
        {"remember": {"key": "n", "value": "kind"}},
        {"when": when, "recall": {"key": "n", "into": "block"}, "emit": {"type": "data", "value": "block"}},
    )
    assert m.feed(Frame(frame)) == expected
    assert EventMapper(m.rules, CTX).feed_reference(Frame(frame)) == expected


# -- one-element projections (n=1 choices) take a fast path: generated rules vs the loop --

PARTS = st.lists(st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["text", "thinking", "x"]), "text": LEAVES,
    "thinking": st.lists(st.fixed_dictionaries({}, optional={"text": LEAVES}), max_size=2) | LEAVES,
}), max_size=3)
TOOL_CALLS = st.lists(st.fixed_dictionaries({}, optional={
    "index": LEAVES, "id": LEAVES, "function": st.fixed_dictionaries({}, optional={"name": LEAVES, "arguments": LEAVES}),
}) | LEAVES, max_size=2)
TEXTS = st.sampled_from(["a", "b"]) | LEAVES
DELTAS = st.fixed_dictionaries({}, optional={
    "content": TEXTS | PARTS, "reasoning_content": TEXTS, "reasoning": TEXTS, "tool_calls": TOOL_CALLS | LEAVES,
    "role": LEAVES,
})
CHOICES = st.fixed_dictionaries({"delta": DELTAS}, optional={"finish_reason": LEAVES, "index": LEAVES}) | \
    st.fixed_dictionaries({}, optional={"delta": LEAVES, "finish_reason": LEAVES})
# n=1 above all, but also 0, 2 and 3 choices, lists inside the list, and non-objects
CHOICE_LISTS = st.lists(CHOICES, min_size=1, max_size=1) | st.lists(CHOICES, min_size=2, max_size=3) | st.lists(
    CHOICES | LEAVES | st.lists(CHOICES, max_size=2), max_size=3)
CHUNKS = st.fixed_dictionaries({"choices": CHOICE_LISTS | CHOICE_LISTS | LEAVES}, optional={
    "usage": st.fixed_dictionaries({}, optional={"prompt_tokens": LEAVES, "completion_tokens": LEAVES}) | LEAVES,
    "object": st.sampled_from(["chat.completion.chunk", "chat.completion.done"]), "finish_reason": LEAVES,
    "error": LEAVES, "message": st.fixed_dictionaries({}, optional={
        "content": LEAVES, "thinking": LEAVES, "tool_calls": TOOL_CALLS | LEAVES}),
    "done": LEAVES, "index": LEAVES | st.lists(LEAVES, max_size=1),
    "delta": st.fixed_dictionaries({}, optional={"type": LEAVES, "text": LEAVES, "partial_json": LEAVES}),
})


@pytest.mark.parametrize("manifest", ["openai", "openai-compatible", "ollama", "anthropic"])
@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.tuples(CHUNKS | CHUNKS | PAYLOADS, EVENTS), min_size=1, max_size=6))
def test_one_choice_fast_path_agrees_with_the_loop(manifest: str, frames: list[Any]) -> None:
    from modelwire._manifest.catalog import load_manifests
    from modelwire._runtime.planning import plan

    catalog = _CATALOG.get(manifest) or _CATALOG.setdefault(manifest, load_manifests(f"builtin:{manifest}", env={}))
    p = plan(catalog, f"{next(iter(catalog.providers))}/m", "generate")
    rules = compile_rules(p.operator)
    fast, slow = EventMapper(rules, CTX), EventMapper(rules, CTX)
    for payload, event in frames:
        frame = Frame(payload, event)
        assert _outcome(fast.feed, frame) == _outcome(slow.feed_reference, frame)
        assert fast.stopped == slow.stopped


PROJECTIONS = st.sampled_from([
    "a[].b", "a[].b.c", "a[].b[]", "a[].b.c[]", "a[?b].c", "a[?b.c].n", "a[].b[0]", "a[].b[-1]", "a[].b.c[1]",
    "a[]", "a[?b]", "a[].b[?c].n", "a[?b == 'x'].c", "a[].[b, c]",
])
ELEMENTS = st.fixed_dictionaries({}, optional={k: SMALL_LEAVES | SMALL for k in ("b", "c", "n")}) | SMALL
PROJ_FRAMES = st.fixed_dictionaries({"a": st.lists(ELEMENTS, min_size=1, max_size=1) | st.lists(ELEMENTS, max_size=3) | SMALL})


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(st.tuples(PROJECTIONS, st.sampled_from(["each", "when", "both"]),
                             st.sampled_from(["data", "text", "tool_call"])), min_size=1, max_size=4),
    frames=st.lists(PROJ_FRAMES | SMALL, min_size=1, max_size=5),
)
def test_projection_fast_paths_agree_with_the_loop(rules: list[tuple[str, str, str]], frames: list[Any]) -> None:
    emits = {"data": {"type": "data", "value": "@"}, "text": {"type": "text", "text": "@"},
             "tool_call": {"type": "tool_call", "name": "@"}}
    events = [
        converter().structure({
            **({"each": expr} if use != "when" else {}), **({"when": expr} if use != "each" else {}),
            "emit": emits[emit],
        }, EventRule)
        for expr, use, emit in rules
    ]
    compiled = compile_rules(Operator(path="/x", events=events))
    fast, slow = EventMapper(compiled, CTX), EventMapper(compiled, CTX)
    for payload in frames:
        frame = Frame(payload)
        assert _outcome(fast.feed, frame) == _outcome(slow.feed_reference, frame)
