"""The bundled ``bedrock`` manifest end to end, against boto3 reading the same bytes.

For each seed the replay server renders one random script as a Bedrock
ConverseStream (binary event stream, written as AWS writes it) once for
boto3's ``converse_stream`` and once for modelwire; text, tool calls, usage
and finish reason must agree. The SigV4 signature modelwire sends is
checked against botocore's own signer, recomputed from the request the
server received.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import modelwire
from modelwire.testing import Reasoning, RecordedRequest, ReplayServer, Script, StreamError

SEEDS = range(120)
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
KEY_ID, SECRET, REGION = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-3"
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=14) as srv:
        yield srv


def env_for(server: ReplayServer, **extra: str) -> dict[str, str]:
    return {
        "BEDROCK_BASE_URL": server.url_for("bedrock"), "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, **extra,
    }


@pytest.fixture(scope="module")
def runtime(server: ReplayServer) -> Iterator[modelwire.SyncRuntime]:
    with modelwire.SyncRuntime.from_manifests("builtin:bedrock", env=env_for(server)) as rt:
        yield rt


@pytest.fixture(scope="module")
def client(server: ReplayServer) -> Iterator[Any]:
    client = boto3.client(
        "bedrock-runtime", endpoint_url=server.url_for("bedrock"), region_name=REGION,
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        config=Config(retries={"total_max_attempts": 1}),
    )
    yield client
    client.close()


def json_answer(script: Script) -> bool:
    """Whether the script's answer is a JSON object (then modelwire asks for one with ``response_format``)."""
    try:
        return isinstance(json.loads(script.full_text()), dict)
    except ValueError:
        return False


def ours(rt: modelwire.SyncRuntime, model: str = f"bedrock/{MODEL}", script: Script | None = None) -> dict[str, Any]:
    structured = script is not None and json_answer(script)
    resp = rt.generate(model, "hi", **({"response_format": {"type": "object"}} if structured else {}))
    usage = resp.usage
    return {
        "text": resp.text,
        "tool_calls": [(c.id, c.name, c.parsed_arguments()) for c in resp.tool_calls],
        "usage": (usage.input_tokens, usage.output_tokens) if usage else None,
        "finish": resp.finish_reason,
        "reasoning": [
            (b.text, b.signature, base64.b64decode(b.redacted) if b.redacted else None)
            for b in resp.reasoning_blocks
        ],
        "cache": (usage.cached_input_tokens or 0, usage.cache_write_tokens or 0) if usage else None,
        "parsed": resp.parsed if structured else None,
    }


def boto3_reads(client: Any) -> dict[str, Any]:
    resp = client.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    try:
        return _collect(resp["stream"])
    finally:
        resp["stream"].close()


def _collect(stream: Any) -> dict[str, Any]:
    text: list[str] = []
    calls: dict[int, list[str]] = {}
    thinking: dict[int, list[Any]] = {}
    usage = finish = cache = None
    for event in stream:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            tool = start["start"]["toolUse"]
            calls[start["contentBlockIndex"]] = [tool["toolUseId"], tool["name"], ""]
        elif "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]
            if "text" in delta["delta"]:
                text.append(delta["delta"]["text"])
            if "toolUse" in delta["delta"]:
                calls[delta["contentBlockIndex"]][2] += delta["delta"]["toolUse"]["input"]
            if "reasoningContent" in delta["delta"]:
                block = thinking.setdefault(delta["contentBlockIndex"], ["", None, None])
                part = delta["delta"]["reasoningContent"]
                block[0] += part.get("text", "")
                block[1] = part.get("signature", block[1])
                block[2] = part.get("redactedContent", block[2])
        elif "messageStop" in event:
            finish = FINISH.get(event["messageStop"]["stopReason"])
        elif "metadata" in event:
            wire = event["metadata"]["usage"]
            cache = (wire.get("cacheReadInputTokens", 0), wire.get("cacheWriteInputTokens", 0))
            # inputTokens leaves the cache reads and writes out; modelwire's input is the whole prompt.
            usage = (wire["inputTokens"] + sum(cache), wire["outputTokens"])
    return {
        "text": "".join(text),
        "tool_calls": [(i, n, json.loads(a) if a else {}) for _, (i, n, a) in sorted(calls.items())],
        "usage": usage,
        "finish": finish,
        "reasoning": [tuple(b) for _, b in sorted(thinking.items())],
        "cache": cache,
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_boto3_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, client: Any) -> None:
    # Rich scripts: boto3's reasoningContent deltas and cacheRead/WriteInputTokens
    # are compared wherever the replay server's bedrock stream carries them.
    script = Script.random(seed, rich=True)
    server.push(script)
    sdk = boto3_reads(client)
    sdk["parsed"] = json.loads(sdk["text"]) if json_answer(script) else None
    server.push(script)
    assert ours(runtime, script=script) == sdk
    assert sdk["text"] == script.full_text()
    assert [c[0] for c in sdk["tool_calls"]] == [c.id for c in script.tool_calls]


THINKING = [
    [Reasoning(["Let me ", "see."], signature="sig-1")],
    [Reasoning(redacted="opaque\x00blob"), Reasoning("Then: 2+2=4.", signature="sig-2")],
]


@pytest.mark.parametrize("seed", range(20))
def test_boto3_agrees_on_reasoning(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, client: Any) -> None:
    """``delta.reasoningContent`` (text, signature, redactedContent), read as boto3 reads it."""
    script = attrs.evolve(Script.random(seed), reasoning=THINKING[seed % len(THINKING)], error=None, status=200)
    server.push(script)
    sdk = boto3_reads(client)
    sdk["parsed"] = None  # no response_format here
    server.push(script)
    assert ours(runtime) == sdk
    assert [b[0] for b in sdk["reasoning"]] == [r.full_text() if r.redacted is None else "" for r in script.reasoning]
    assert sdk["text"] == script.full_text()


def test_reasoning_goes_back_with_its_signature(server: ReplayServer, runtime: modelwire.SyncRuntime) -> None:
    """The next turn carries the thinking blocks (signature, redacted blob) before the text, as Converse wants."""
    server.reset()
    server.push(Script(text="4", reasoning=THINKING[1]), Script(text="ok"))
    first = runtime.generate(f"bedrock/{MODEL}", "2+2?")
    runtime.generate(f"bedrock/{MODEL}", messages=[
        {"role": "user", "content": "2+2?"}, first.message(), {"role": "user", "content": "thanks"},
    ])
    assistant = server.requests[1].json["messages"][1]
    assert assistant == {"role": "assistant", "content": [
        {"reasoningContent": {"redactedContent": base64.b64encode(b"opaque\x00blob").decode()}},
        {"reasoningContent": {"reasoningText": {"text": "Then: 2+2=4.", "signature": "sig-2"}}},
        {"text": "4"},
    ]}


def verify_sigv4(request: RecordedRequest, base_url: str) -> None:
    """Recompute the signature from what arrived, with botocore's signer."""
    scheme, _, rest = request.headers["authorization"].partition(" ")
    assert scheme == "AWS4-HMAC-SHA256"
    fields = dict(part.strip().split("=", 1) for part in rest.split(","))
    key_id, date, region, service, terminator = fields["Credential"].split("/")
    assert (key_id, region, service, terminator) == (KEY_ID, REGION, "bedrock", "aws4_request")
    amz_date = request.headers["x-amz-date"]
    assert amz_date.startswith(date)
    signed = fields["SignedHeaders"].split(";")
    assert {"host", "x-amz-date"} <= set(signed)
    aws = AWSRequest(
        method=request.method, url=base_url + request.path, data=request.body,
        headers={name: request.headers[name] for name in signed},
    )
    aws.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(KEY_ID, SECRET), "bedrock", REGION)
    canonical = signer.canonical_request(aws)
    assert signer.signature(signer.string_to_sign(aws, canonical), aws) == fields["Signature"]


@pytest.mark.parametrize("prompt", ["hi", "unicode: é 😀 \u2028", '"quotes" and \\ backslash'])
def test_sigv4_signature_verifies(prompt: str, server: ReplayServer, runtime: modelwire.SyncRuntime) -> None:
    server.reset()
    server.push(Script(text="ok"))
    runtime.generate(f"bedrock/{MODEL}", prompt, max_tokens=50, temperature=0.5)
    (request,) = server.requests
    assert request.path == "/bedrock/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream"
    assert request.json["messages"] == [{"role": "user", "content": [{"text": prompt}]}]
    assert request.json["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.5}
    verify_sigv4(request, server.base_url)
    # A changed body no longer verifies: the signature covers the bytes sent.
    tampered = RecordedRequest(
        method=request.method, path=request.path, query=request.query, headers=request.headers,
        body=request.body + b" ", json=request.json, fmt=request.fmt,
    )
    with pytest.raises(AssertionError):
        verify_sigv4(tampered, server.base_url)


def test_session_token_is_signed(server: ReplayServer) -> None:
    server.reset()
    server.push(Script(text="ok"))
    env = env_for(server, AWS_SESSION_TOKEN="token-abc-123")
    with modelwire.SyncRuntime.from_manifests("builtin:bedrock", env=env) as rt:
        rt.generate(f"bedrock/{MODEL}", "hi")
    (request,) = server.requests
    assert request.headers["x-amz-security-token"] == "token-abc-123"
    assert "x-amz-security-token" in request.headers["authorization"]


def test_boto3_and_modelwire_send_the_same_request_shape(
    server: ReplayServer, runtime: modelwire.SyncRuntime, client: Any
) -> None:
    server.reset()
    server.push(Script(text="ok"), Script(text="ok"))
    tools = [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]
    runtime.generate(f"bedrock/{MODEL}", "hi", system="be brief", tools=tools, tool_choice="required")
    resp = client.converse_stream(
        modelId=MODEL, system=[{"text": "be brief"}],
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
        toolConfig={"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                                            "inputSchema": {"json": {"type": "object"}}}}],
                    "toolChoice": {"any": {}}},
    )
    _collect(resp["stream"])
    mine, theirs = server.requests
    assert mine.path == theirs.path
    assert mine.json == theirs.json


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (StreamError("rate_limit_error", "slow down", after=2), modelwire.RateLimitError),
        (StreamError("validationException", "bad input", after=0), modelwire.InvalidRequestError),
        (StreamError("modelStreamErrorException", "model broke"), modelwire.ProviderDownError),
    ],
)
def test_exception_in_stream_is_typed(
    error: StreamError, kind: type[Exception], server: ReplayServer, runtime: modelwire.SyncRuntime, client: Any
) -> None:
    script = Script(text=["a", "b", "c"], error=error)
    server.push(script)
    with pytest.raises(Exception) as sdk:
        boto3_reads(client)
    assert error.message in str(sdk.value)
    server.push(script)
    with pytest.raises(kind) as info:
        runtime.generate(f"bedrock/{MODEL}", "hi")
    assert info.value.message == error.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, modelwire.RateLimitError), (400, modelwire.InvalidRequestError), (403, modelwire.AuthError),
     (503, modelwire.ProviderDownError)],
)
def test_http_errors_are_typed_and_never_show_the_secret(
    status: int, kind: type[Exception], server: ReplayServer, runtime: modelwire.SyncRuntime
) -> None:
    server.push(*[Script(status=status)] * 5)  # the default policy may retry
    with pytest.raises(kind) as info:
        runtime.generate(f"bedrock/{MODEL}", "hi")
    server.reset()
    text = f"{info.value!s} {info.value!r} {info.value.message}"
    assert SECRET not in text and "Signature=" not in text


def test_cache_usage_is_counted(server: ReplayServer, runtime: modelwire.SyncRuntime) -> None:
    from modelwire_aws import encode_message

    from modelwire.testing import Reply

    def ev(name: str, data: dict[str, Any]) -> bytes:
        headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
        return encode_message(headers, json.dumps(data).encode())

    usage = {"inputTokens": 10, "outputTokens": 4, "totalTokens": 114, "cacheReadInputTokens": 60,
             "cacheWriteInputTokens": 40}
    body = b"".join([
        ev("messageStart", {"role": "assistant"}),
        ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
        ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}),
        ev("messageStop", {"stopReason": "end_turn"}),
        ev("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}),
    ])
    server.push(Reply(body=body, content_type="application/vnd.amazon.eventstream", stream=True))
    resp = runtime.generate("nova-lite", "hi")
    assert resp.text == "hi"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cached_input_tokens) == (110, 4, 60)


def test_stream_cut_before_metadata_is_an_error(server: ReplayServer, runtime: modelwire.SyncRuntime) -> None:
    server.push(*[Script(text="abc", end_marker=False)] * 5)
    with pytest.raises(modelwire.ModelError):
        runtime.generate(f"bedrock/{MODEL}", "hi")
    server.reset()


def test_manifest_loads_without_the_plugin_and_the_call_names_it(server: ReplayServer) -> None:
    server.reset()
    plugins = modelwire.Plugins(only=["modelwire-sse"])
    with modelwire.SyncRuntime.from_manifests("builtin:bedrock", env=env_for(server), plugins=plugins) as rt, pytest.raises(modelwire.NotFoundError) as info:
        rt.generate("nova-lite", "hi")
    assert "pip install modelwire-aws" in info.value.message
    assert server.requests == []  # failed before any HTTP


def test_missing_credentials_name_the_variables(server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelwire_aws import signing as module

    monkeypatch.setattr(module, "_chain", [None])  # as if botocore's chain found nothing
    env = {"BEDROCK_BASE_URL": server.url_for("bedrock"), "AWS_REGION": REGION}
    with modelwire.SyncRuntime.from_manifests("builtin:bedrock", env=env) as rt, pytest.raises(modelwire.AuthError) as info:
        rt.generate("nova-lite", "hi")
    assert info.value.code == "AWS_CREDENTIALS_MISSING"
    assert "AWS_ACCESS_KEY_ID" in info.value.message
