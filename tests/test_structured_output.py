"""Structured output: one ``response_format`` (a JSON Schema) mapped per provider,
and ``Response.parsed`` validated against it; over loopback, with the official
SDKs as oracles for the request shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import hypothesis.strategies as st
import openai
import pytest
from hypothesis import HealthCheck, given, settings

import modelwire
from modelwire.testing import ReplayServer, Script

from core_helpers import provider_env

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "number"},
                   "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["city", "temp"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=21) as srv:
        yield srv


@pytest.fixture
def env(server: ReplayServer) -> dict[str, str]:
    server.reset()
    return {**provider_env(server), "OPENAI_COMPATIBLE_BASE_URL": server.url_for("openai"),
            "MISTRAL_BASE_URL": server.url_for("mistral"), "MISTRAL_API_KEY": "key-for-mistral"}


def runtime(env: dict[str, str]) -> modelwire.Runtime:
    return modelwire.Runtime.from_manifests("builtin:*", env=env, policy="raise")


# What each bundled manifest sends for response_format={name: weather, schema: SCHEMA, strict: true}:
# (model, the body's members that carry it, as a function of the body)
SHAPES = [
    pytest.param("gpt-4.1-mini", lambda b: b["response_format"],
                 {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}},
                 id="openai"),
    pytest.param("openai-compatible/qwen3", lambda b: b["response_format"],
                 {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}},
                 id="openai-compatible"),
    # Mistral's request is its own (no stream_options), with OpenAI's response_format
    pytest.param("mistral-small-latest", lambda b: b["response_format"],
                 {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}},
                 id="mistral"),
    pytest.param("claude-haiku-4-5", lambda b: b["output_config"],
                 {"format": {"type": "json_schema", "schema": SCHEMA}}, id="anthropic"),
    pytest.param("gemini-2.5-flash",
                 lambda b: {k: b["generationConfig"][k] for k in ("responseMimeType", "responseJsonSchema")},
                 {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}, id="gemini"),
    pytest.param("llama3.2", lambda b: b["format"], SCHEMA, id="ollama"),
]
# the body members that only structured output sets (absent without response_format)
ONLY_WITH_SCHEMA = {"gpt-4.1-mini": ["response_format"], "openai-compatible/qwen3": ["response_format"],
                    "mistral-small-latest": ["response_format"],
                    "claude-haiku-4-5": ["output_config"], "gemini-2.5-flash": [],
                    "llama3.2": ["format"]}


@pytest.mark.parametrize(("model", "pick", "expected"), SHAPES)
async def test_request_shape_per_provider(server: ReplayServer, env: dict[str, str], model: str,
                                          pick: Any, expected: Any) -> None:
    answer = {"city": "Paris", "temp": 21.5, "tags": ["sunny"]}
    server.push(Script(text=json.dumps(answer)), Script(text="plain"))
    async with runtime(env) as rt:
        resp = await rt.generate(model, "Weather in Paris as JSON",
                                 response_format={"name": "weather", "schema": SCHEMA, "strict": True})
        plain = await rt.generate(model, "hi")
    with_schema, without = server.requests[0].json, server.requests[1].json
    assert pick(with_schema) == expected
    assert resp.parsed == answer
    for member in ONLY_WITH_SCHEMA[model]:
        assert member not in without
    assert "responseJsonSchema" not in json.dumps(without)
    with pytest.raises(modelwire.OutputSchemaError) as info:
        _ = plain.parsed  # no schema: still JSON is required
    assert info.value.code == "OUTPUT_NOT_JSON" and info.value.text == "plain"


@pytest.mark.parametrize(
    ("given_format", "sent"),
    [
        pytest.param(SCHEMA, {"name": "response", "schema": SCHEMA}, id="bare-schema"),
        pytest.param({"name": "w", "schema": SCHEMA}, {"name": "w", "schema": SCHEMA}, id="wrapped"),
        pytest.param({"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA, "strict": False}},
                     {"name": "w", "schema": SCHEMA, "strict": False}, id="openai-form"),
    ],
)
async def test_openai_sdk_is_the_oracle(server: ReplayServer, env: dict[str, str], given_format: Any,
                                        sent: dict[str, Any]) -> None:
    """modelwire's response_format member equals what the openai SDK sends for the same schema."""
    server.push(Script(text='{"city": "x", "temp": 1}'), Script(text='{"city": "x", "temp": 1}'))
    async with runtime(env) as rt:
        await rt.generate("gpt-4.1-mini", "hi", response_format=given_format)
    # closed here: an unclosed client's socket warns later, in another test
    with openai.OpenAI(base_url=server.url_for("openai"), api_key="k", max_retries=0) as client:
        client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": sent},  # type: ignore[typeddict-item]
        )
    ours, theirs = server.requests[0].json, server.requests[1].json
    assert ours["response_format"] == theirs["response_format"]


async def test_anthropic_sdk_is_the_oracle(server: ReplayServer, env: dict[str, str]) -> None:
    server.push(Script(text='{"city": "x", "temp": 1}'), Script(text='{"city": "x", "temp": 1}'))
    async with runtime(env) as rt:
        await rt.generate("claude-haiku-4-5", "hi", response_format=SCHEMA)
    with anthropic.Anthropic(base_url=server.url_for("anthropic"), api_key="k", max_retries=0) as client:
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}],
            output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
        )
    ours, theirs = server.requests[0].json, server.requests[1].json
    assert ours["output_config"] == theirs["output_config"]


@pytest.mark.parametrize(
    ("text", "code", "pointer", "schema_path"),
    [
        pytest.param('{"city": 3, "temp": 1}', "OUTPUT_SCHEMA_MISMATCH", "/city", "/properties/city/type",
                     id="wrong-type"),
        pytest.param('{"city": "x"}', "OUTPUT_SCHEMA_MISMATCH", "", "/required", id="missing-member"),
        pytest.param('{"city": "x", "temp": 1, "tags": ["a", 2]}', "OUTPUT_SCHEMA_MISMATCH", "/tags/1",
                     "/properties/tags/items/type", id="deep"),
        pytest.param('{"city": "x", "temp": 1, "wind": 3}', "OUTPUT_SCHEMA_MISMATCH", "",
                     "/additionalProperties", id="extra-member"),
        pytest.param('{"city": "x", "temp": ', "OUTPUT_NOT_JSON", None, None, id="truncated"),
        pytest.param("Sure! Here it is", "OUTPUT_NOT_JSON", None, None, id="prose"),
    ],
)
async def test_parsed_names_where_it_failed(server: ReplayServer, env: dict[str, str], text: str, code: str,
                                            pointer: str | None, schema_path: str | None) -> None:
    server.push(Script(text=text))
    async with runtime(env) as rt:
        resp = await rt.generate("gpt-4.1-mini", "hi", response_format=SCHEMA)
    with pytest.raises(modelwire.OutputSchemaError) as info:
        _ = resp.parsed
    err = info.value
    assert isinstance(err, modelwire.ParseError) and err.kind == "parse"
    assert (err.code, err.pointer, err.schema_path, err.text) == (code, pointer, schema_path, text)
    assert err.model == "gpt-4.1-mini"
    if pointer is not None:
        assert f"at={pointer or '/'}" in str(err)
    else:
        assert err.offset is not None and err.line == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param({"type": "objekt"}, "not a valid JSON Schema at /type", id="bad-type"),
        pytest.param({"properties": {"a": {"minLength": -1}}}, "at /properties/a/minLength", id="deep-bad"),
        pytest.param({"name": "has space", "schema": SCHEMA}, "response_format.name", id="bad-name"),
        pytest.param({"schema": SCHEMA, "strict": "yes"}, "response_format.strict", id="bad-strict"),
        pytest.param({"schema": "{}"}, "response_format.schema must be a JSON Schema object", id="schema-text"),
        pytest.param(["not", "a", "schema"], "must be a JSON Schema object", id="list"),
        pytest.param({"type": "string", "enum": {"a", "b"}}, "cannot be sent as JSON", id="not-json"),
    ],
)
async def test_bad_response_format_fails_before_http(server: ReplayServer, env: dict[str, str], bad: Any,
                                                     message: str) -> None:
    async with runtime(env) as rt:
        with pytest.raises(modelwire.InvalidRequestError) as info:
            await rt.generate("gpt-4.1-mini", "hi", response_format=bad)
    assert info.value.code == "BAD_RESPONSE_FORMAT" and message in info.value.message
    assert server.requests == []


def test_sync_runtime_parsed(server: ReplayServer, env: dict[str, str]) -> None:
    server.push(Script(text='{"city": "Oslo", "temp": -3}'))
    with modelwire.SyncRuntime(runtime(env)) as rt:
        resp = rt.generate("llama3.2", "hi", response_format=SCHEMA)
        events = list(rt.stream("llama3.2", "hi", response_format=SCHEMA))
    assert resp.parsed == {"city": "Oslo", "temp": -3}
    assert type(events[-1]) is modelwire.Done
    assert server.requests[1].json["format"] == SCHEMA


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
TYPE_OF = {type(None): "null", bool: "boolean", int: "integer", str: "string", list: "array", dict: "object"}


@pytest.fixture(scope="module")
def openai_sync(server: ReplayServer) -> Iterator[modelwire.SyncRuntime]:
    """One runtime for every example of the property below: what varies is the stream."""
    rt = modelwire.Runtime.from_manifests("builtin:openai", env=provider_env(server), policy="raise")
    with modelwire.SyncRuntime(rt) as sync:
        yield sync


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON, pieces=st.integers(1, 6))
def test_parsed_round_trips_any_json(server: ReplayServer, openai_sync: modelwire.SyncRuntime,
                                     value: Any, pieces: int) -> None:
    """Whatever JSON the model streams, in however many deltas, ``parsed`` gives it back."""
    text = json.dumps(value, ensure_ascii=False)
    step = max(1, len(text) // pieces)
    server.push(Script(text=tuple(text[i:i + step] for i in range(0, len(text), step))))
    schema = {"type": TYPE_OF[type(value)]}
    resp = openai_sync.generate("gpt-4.1-mini", "hi", response_format=schema)
    assert resp.text == text and resp.parsed == value
    wrong = {"type": "number" if not isinstance(value, (int, float)) or isinstance(value, bool) else "string"}
    with pytest.raises(modelwire.OutputSchemaError) as info:
        modelwire.Response(resp.model, resp.text, [], None, None, schema=wrong).parsed  # noqa: B018
    assert info.value.pointer == "" and info.value.text == text
