"""The gateway through real HTTP: official SDKs -> gateway (uvicorn) -> ReplayServer in each bundled format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelwire.gateway import Gateway
from modelwire.testing import ReplayServer, Script, StreamError, ToolCall

from core_helpers import PROVIDERS
from gateway_helpers import running_gateway

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")

MODELS = [pytest.param(model, fmt, id=fmt) for fmt, model, _base, _key in PROVIDERS]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}}


@pytest.fixture(scope="module")
def srv() -> Iterator[ReplayServer]:
    with ReplayServer(seed=11) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(srv: ReplayServer) -> Iterator[tuple[str, Gateway]]:
    with running_gateway(srv) as running:
        yield running


@pytest.fixture
def client(gateway: tuple[str, Gateway], srv: ReplayServer) -> Iterator[Any]:
    srv.reset()
    with openai.OpenAI(base_url=gateway[0] + "/v1", api_key="unused", max_retries=0) as c:
        yield c


@pytest.mark.parametrize(("model", "fmt"), MODELS)
def test_openai_sdk_streams_text_and_usage_from_every_format(client: Any, srv: ReplayServer, model: str, fmt: str) -> None:
    srv.push(Script(text=["Hello", ", ", "wörld"], usage=(12, 7)))
    chunks = list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], stream=True,
        stream_options={"include_usage": True},
    ))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello, wörld"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 7)
    assert srv.requests[0].fmt == fmt
    assert srv.requests[0].json is not None


@pytest.mark.parametrize(("model", "fmt"), MODELS)
def test_openai_sdk_gets_whole_answers_with_tool_calls(client: Any, srv: ReplayServer, model: str, fmt: str) -> None:
    srv.push(Script(text="Let me check.", tool_calls=[ToolCall("call_1", "get_weather", '{"city": "Paris"}')], usage=(20, 9)))
    resp = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER],
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (20, 9)
    sent = srv.requests[0].json
    assert "get_weather" in json.dumps(sent)  # the tool went to the provider in its own format


@pytest.mark.parametrize(("model", "fmt"), MODELS)
def test_streamed_tool_calls_reassemble_in_the_sdk(client: Any, srv: ReplayServer, model: str, fmt: str) -> None:
    srv.push(Script(text="", tool_calls=[ToolCall("call_7", "get_weather", '{"city": "Oslo"}'),
                                         ToolCall("call_8", "get_weather", '{"city": "Rome"}')]))
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}],
                                                tools=[WEATHER], stream=True):
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
            slot["id"] += tc.id or ""
            slot["name"] += (tc.function.name or "") if tc.function else ""
            slot["args"] += (tc.function.arguments or "") if tc.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [json.loads(c["args"]) for _, c in sorted(calls.items())] == [{"city": "Oslo"}, {"city": "Rome"}]
    assert all(c["name"] == "get_weather" and c["id"] for c in calls.values())


def test_a_tool_round_trip_reaches_the_provider_in_its_format(client: Any, srv: ReplayServer) -> None:
    srv.push(Script(text="It is sunny."))
    client.chat.completions.create(model="claude-haiku-4-5", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
    ], tools=[WEATHER])
    sent = srv.requests[0].json
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    blocks = [b for m in sent["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])]
    assert {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}} in blocks
    assert any(b.get("type") == "tool_result" and b.get("tool_use_id") == "toolu_1" for b in blocks)


WEATHER_SCHEMA = {
    "type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
    "required": ["city", "temp"], "additionalProperties": False,
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_response_format_reaches_an_anthropic_provider(client: Any, srv: ReplayServer, stream: bool) -> None:
    """OpenAI's json_schema response_format -> the runtime -> Anthropic's output_config form."""
    answer = {"city": "Paris", "temp": 21.5}
    srv.push(Script(text=json.dumps(answer)))
    response_format = {"type": "json_schema", "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True}}
    messages = [{"role": "user", "content": "Weather in Paris as JSON"}]
    if stream:
        chunks = client.chat.completions.create(model="claude-haiku-4-5", messages=messages,
                                                response_format=response_format, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(model="claude-haiku-4-5", messages=messages,
                                              response_format=response_format).choices[0].message.content
    assert json.loads(text) == answer
    (sent,) = [r.json for r in srv.requests]
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}}


def test_openai_sdk_parse_through_the_gateway(client: Any, srv: ReplayServer) -> None:
    """The SDK's own parse(): a pydantic model as response_format, its schema sent on, the answer parsed."""
    from pydantic import BaseModel

    class Weather(BaseModel):
        city: str
        temp: float

    srv.push(Script(text='{"city": "Oslo", "temp": -3}'))
    completion = client.chat.completions.parse(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "Oslo?"}], response_format=Weather,
    )
    assert completion.choices[0].message.parsed == Weather(city="Oslo", temp=-3)
    schema = srv.requests[0].json["output_config"]["format"]["schema"]
    assert schema["required"] == ["city", "temp"] and set(schema["properties"]) == {"city", "temp"}


def test_json_object_asks_for_any_object(client: Any, srv: ReplayServer) -> None:
    srv.push(Script(text='{"ok": true}'), Script(text="plain"))
    resp = client.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}],
                                          response_format={"type": "json_object"})
    assert resp.choices[0].message.content == '{"ok": true}'
    client.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}],
                                   response_format={"type": "text"})
    with_format, plain = (r.json for r in srv.requests)
    assert with_format["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert "output_config" not in plain


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        pytest.param({"type": "xml"}, "response_format.type", id="unknown-type"),
        pytest.param({"type": "json_schema", "json_schema": {"name": "w"}}, "response_format.json_schema.schema",
                     id="no-schema"),
        pytest.param("json", "response_format", id="not-an-object"),
        pytest.param({"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": 5}}}, None,
                     id="invalid-schema"),
    ],
)
def test_bad_response_format_is_400_before_the_provider(
    gateway: tuple[str, Gateway], srv: ReplayServer, response_format: Any, param: str | None,
) -> None:
    srv.reset()
    body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}],
            "response_format": response_format}
    resp = httpx.post(gateway[0] + "/v1/chat/completions", json=body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    else:
        assert "schema" in error["message"]
    assert srv.requests == []


def test_models_and_health(gateway: tuple[str, Gateway]) -> None:
    url, gw = gateway
    with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as c:
        ids = [m.id for m in c.models.list()]
    assert gw.runtime is not None
    assert ids == sorted(gw.runtime.catalog.models)
    assert {"gpt-4.1-mini", "claude-haiku-4-5", "gemini-2.5-flash", "llama3.2"} <= set(ids)
    health = httpx.get(url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


# -- errors, in the client's format ---------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "status", "sdk_error"),
    [
        pytest.param(Script(status=400, error=StreamError("invalid_request_error", "bad thing")), 400,
                     "BadRequestError", id="400"),
        pytest.param(Script(status=429, headers={"retry-after": "120"}), 429, "RateLimitError", id="429"),
        pytest.param(Script(status=401), 502, "InternalServerError", id="provider-401-is-502"),
        pytest.param(Script(status=503), 503, "InternalServerError", id="503"),
        pytest.param(Script(status=500), 503, "InternalServerError", id="500"),
    ],
)
def test_provider_errors_keep_their_meaning(client: Any, srv: ReplayServer, script: Script, status: int, sdk_error: str) -> None:
    srv.default = script
    try:
        with pytest.raises(getattr(openai, sdk_error)) as info:
            client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
    finally:
        srv.default = Script()
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict) and body["message"] and "Traceback" not in body["message"]
    assert "key-for-openai" not in json.dumps(body)  # the provider key never leaves the gateway
    if status == 429:
        assert info.value.response.headers["retry-after"] == "120"  # beyond the retry cap: passed on


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        pytest.param({"messages": [{"role": "user", "content": "x"}]}, 400, "model", id="no-model"),
        pytest.param({"model": "gpt-4.1-mini", "messages": [{"role": "robot", "content": "x"}]}, 400,
                     "messages[0].role", id="bad-role"),
        pytest.param({"model": "gpt-4.1-mini", "messages": "hi"}, 400, "messages", id="messages-not-list"),
        pytest.param({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": -3},
                     400, "max_tokens", id="negative-max-tokens"),
        pytest.param({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "x"}], "frobnicate": 1},
                     400, "frobnicate", id="unknown-field"),
        pytest.param({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}, 404, "model",
                     id="unknown-model"),
    ],
)
def test_bad_requests_name_the_field(gateway: tuple[str, Gateway], srv: ReplayServer, body: Any, status: int, param: str) -> None:
    srv.reset()
    resp = httpx.post(gateway[0] + "/v1/chat/completions", json=body)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["param"] == param and error["message"]
    assert srv.requests == []  # nothing reached the provider


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param(b"{not json", "bad_json", id="not-json"),
        pytest.param(b"[" * 200 + b"]" * 200, "bad_json", id="too-deep"),
    ],
)
def test_bad_json_is_400(gateway: tuple[str, Gateway], raw: bytes, code: str) -> None:
    resp = httpx.post(gateway[0] + "/v1/chat/completions", content=raw)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == code


def test_a_body_over_the_limit_is_413_unread(gateway: tuple[str, Gateway]) -> None:
    limit = gateway[1].config.server.max_body_bytes
    resp = httpx.post(gateway[0] + "/v1/chat/completions", content=b" " * (limit + 1))
    assert resp.status_code == 413


def test_unknown_paths_and_methods(gateway: tuple[str, Gateway]) -> None:
    assert httpx.get(gateway[0] + "/v1/nothing").status_code == 404
    assert httpx.get(gateway[0] + "/v1/chat/completions").status_code == 405


# -- /v1/messages with the anthropic SDK ------------------------------------------------------

anthropic = pytest.importorskip("anthropic")


@pytest.fixture
def claude(gateway: tuple[str, Gateway], srv: ReplayServer) -> Iterator[Any]:
    srv.reset()
    with anthropic.Anthropic(base_url=gateway[0], api_key="unused", max_retries=0) as c:
        yield c


@pytest.mark.parametrize(("model", "fmt"), MODELS)
def test_anthropic_sdk_streams_text_and_tools_from_every_format(claude: Any, srv: ReplayServer, model: str, fmt: str) -> None:
    srv.push(Script(text=["Let ", "me ", "check."], tool_calls=[ToolCall("c1", "get_weather", '{"city": "Paris"}')],
                    usage=(15, 6)))
    with claude.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Weather?"}],
        tools=[{"name": "get_weather", "description": "Weather", "input_schema": WEATHER["function"]["parameters"]}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Let me check."
    assert final.stop_reason == "tool_use"
    [tool] = [b for b in final.content if b.type == "tool_use"]
    assert (tool.name, tool.input) == ("get_weather", {"city": "Paris"})
    assert (final.usage.input_tokens, final.usage.output_tokens) == (15, 6)
    assert srv.requests[0].fmt == fmt


@pytest.mark.parametrize(("model", "fmt"), MODELS)
def test_anthropic_sdk_whole_answers(claude: Any, srv: ReplayServer, model: str, fmt: str) -> None:
    srv.push(Script(text="Bonjour", usage=(4, 2)))
    msg = claude.messages.create(model=model, max_tokens=50, system="Be French.",
                                 messages=[{"role": "user", "content": "Hi"}])
    assert [b.text for b in msg.content if b.type == "text"] == ["Bonjour"]
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (4, 2)
    assert "Be French." in json.dumps(srv.requests[0].json)


@pytest.mark.parametrize(
    ("model", "field", "expected"),
    [
        pytest.param("gpt-4.1-mini", "response_format",
                     {"type": "json_schema", "json_schema": {"name": "response", "schema": None}},
                     id="openai"),
        pytest.param("gemini-2.5-flash", "generationConfig", None, id="gemini"),
        pytest.param("claude-haiku-4-5", "output_config", {"format": {"type": "json_schema", "schema": None}},
                     id="anthropic"),
    ],
)
def test_anthropic_output_config_reaches_every_provider_in_its_form(
    claude: Any, srv: ReplayServer, model: str, field: str, expected: Any
) -> None:
    """/v1/messages with output_config.format (the SDK's structured output) -> each provider's own form."""
    answer = {"city": "Paris", "temp": 21.5}
    srv.push(Script(text=json.dumps(answer)))
    msg = claude.messages.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": "Paris?"}],
        output_config={"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}},
    )
    assert json.loads("".join(b.text for b in msg.content if b.type == "text")) == answer
    sent = srv.requests[0].json[field]
    if model.startswith("gemini"):
        assert (sent["responseMimeType"], sent["responseJsonSchema"]) == ("application/json", WEATHER_SCHEMA)
    else:
        got = json.loads(json.dumps(sent).replace(json.dumps(WEATHER_SCHEMA), "null"))
        assert got == expected, sent


@pytest.mark.parametrize(
    ("output_config", "field"),
    [
        ({"format": {"type": "json_object"}}, "output_config.format.type"),
        ({"format": {"type": "json_schema", "schema": "x"}}, "output_config.format.schema"),
        ({"effort": "high"}, "output_config.effort"),
        ("fast", "output_config"),
    ],
)
def test_a_bad_output_config_names_its_field(claude: Any, output_config: Any, field: str) -> None:
    anthropic = pytest.importorskip("anthropic")
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model="gpt-4.1-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                               extra_body={"output_config": output_config})
    assert field in str(info.value)


def test_anthropic_tool_results_reach_an_openai_provider(claude: Any, srv: ReplayServer) -> None:
    srv.push(Script(text="Sunny."))
    claude.messages.create(model="gpt-4.1-mini", max_tokens=50, messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
    ])
    sent = srv.requests[0].json["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert sent[2] == {"role": "tool", "tool_call_id": "t1", "content": "sunny"}


def test_anthropic_errors_are_in_anthropic_format(claude: Any, srv: ReplayServer) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        claude.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model="gpt-4.1-mini", max_tokens=5, messages=[{"role": "robot", "content": "x"}])
    assert "messages[0].role" in bad.value.body["error"]["message"]
    assert srv.requests == []


# -- /v1/embeddings ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["text-embedding-3-small", "gemini-embedding-001", "nomic-embed-text"])
def test_embeddings_through_the_openai_sdk(client: Any, srv: ReplayServer, model: str) -> None:
    from modelwire.testing import fake_embedding

    resp = client.embeddings.create(model=model, input=["one", "two words"])  # the SDK asks for base64
    got = [d.embedding for d in resp.data]
    assert [len(v) for v in got] == [len(fake_embedding("one")), len(fake_embedding("two words"))]
    assert got == [pytest.approx(fake_embedding("one"), rel=1e-6), pytest.approx(fake_embedding("two words"), rel=1e-6)]
    plain = httpx.post(str(client.base_url) + "embeddings", json={"model": model, "input": "one"}).json()
    assert plain["data"][0]["embedding"] == pytest.approx(fake_embedding("one"), rel=1e-6)
