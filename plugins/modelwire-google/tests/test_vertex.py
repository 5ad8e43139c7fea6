"""The bundled ``vertex`` manifest and the ``google`` injector, against google-genai in Vertex mode.

For each seed the replay server renders one random script as Gemini's SSE
stream under the Vertex AI path, once for ``google-genai``
(``vertexai=True``, ``base_url``, ``api_version="v1"``) and once for
modelwire; text, tool calls, usage and finish reason must agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import google.oauth2.credentials
import modelwire_google
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

import modelwire
from modelwire.testing import Citation, Reasoning, ReplayServer, Reply, Script

SEEDS = range(120)
PROJECT, LOCATION, TOKEN = "proj-1", "europe-west4", "ya29.static-token-for-tests"
FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=15) as srv:
        yield srv


def env_for(server: ReplayServer, **extra: str) -> dict[str, str]:
    base = {"VERTEX_BASE_URL": server.url_for("vertex"), "VERTEX_PROJECT": PROJECT,
            "VERTEX_LOCATION": LOCATION, "VERTEX_ACCESS_TOKEN": TOKEN}
    return {k: v for k, v in {**base, **extra}.items() if v}


@pytest.fixture(scope="module")
def runtime(server: ReplayServer) -> Iterator[modelwire.SyncRuntime]:
    with modelwire.SyncRuntime.from_manifests("builtin:vertex", env=env_for(server)) as rt:
        yield rt


@pytest.fixture(scope="module")
def client(server: ReplayServer) -> Iterator[Any]:
    client = genai.Client(
        vertexai=True, project=PROJECT, location=LOCATION,
        credentials=google.oauth2.credentials.Credentials(token=TOKEN),
        http_options=types.HttpOptions(base_url=server.url_for("vertex"), api_version="v1"),
    )
    yield client
    client.close()


def json_answer(script: Script) -> bool:
    """Whether the script's answer is a JSON object (then modelwire asks for one with ``response_format``)."""
    try:
        return isinstance(json.loads(script.full_text()), dict)
    except ValueError:
        return False


def ours(rt: modelwire.SyncRuntime, model: str = "vertex/gemini-2.5-flash", script: Script | None = None) -> dict[str, Any]:
    structured = script is not None and json_answer(script)
    resp = rt.generate(model, "hi", **({"response_format": {"type": "object"}} if structured else {}))
    usage = resp.usage
    return {
        "text": resp.text,
        "tool_calls": [(c.name, c.parsed_arguments()) for c in resp.tool_calls],
        "usage": (usage.input_tokens, usage.output_tokens) if usage else None,
        "finish": resp.finish_reason,
        "reasoning": resp.reasoning,
        "cache_read": (usage.cached_input_tokens or 0) if usage else None,
        "reasoning_tokens": (usage.reasoning_tokens or 0) if usage else None,
        "parsed": resp.parsed if structured else None,
    }


def genai_reads(client: Any) -> dict[str, Any]:
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[tuple[str, Any]] = []
    usage = finish = cache_read = reasoning_tokens = None
    for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
        for candidate in chunk.candidates or ():
            for part in (candidate.content.parts if candidate.content else None) or ():
                if part.text is not None:
                    (thoughts if part.thought else text).append(part.text)
                if part.function_call is not None:
                    calls.append((part.function_call.name, part.function_call.args))
            if candidate.finish_reason is not None:
                finish = "tool_calls" if calls else FINISH[candidate.finish_reason.value]
        meta = chunk.usage_metadata
        if meta is not None and meta.candidates_token_count is not None:
            # candidatesTokenCount leaves thinking out; modelwire's output includes it.
            reasoning_tokens = meta.thoughts_token_count or 0
            usage = (meta.prompt_token_count, meta.candidates_token_count + reasoning_tokens)
            cache_read = meta.cached_content_token_count or 0
    return {
        "text": "".join(text), "tool_calls": calls, "usage": usage, "finish": finish,
        "reasoning": "".join(thoughts), "cache_read": cache_read, "reasoning_tokens": reasoning_tokens,
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_google_genai_agrees(seed: int, server: ReplayServer, runtime: modelwire.SyncRuntime, client: Any) -> None:
    script = Script.random(seed, rich=True)
    # google-genai mis-reads SSE comment lines (see the next test), so it gets
    # the same script without them; modelwire reads the one with them.
    server.push(attrs.evolve(script, pings=0))
    sdk = genai_reads(client)
    sdk["parsed"] = json.loads(sdk["text"]) if json_answer(script) else None
    server.push(script)
    assert ours(runtime, script=script) == sdk
    assert sdk["text"] == script.full_text()
    assert sdk["reasoning"] == script.full_reasoning()


def test_google_genai_misreads_sse_comments(server: ReplayServer, runtime: modelwire.SyncRuntime, client: Any) -> None:
    """A ``: ping`` line is a valid SSE comment (WHATWG), which google-genai
    parses as JSON and fails on; modelwire skips it, as the wire says."""
    script = Script(text=["a", "b"], pings=2)
    server.push(script)
    with pytest.raises(genai_errors.UnknownApiResponseError):
        genai_reads(client)
    server.push(script)
    assert ours(runtime)["text"] == "ab"


def test_both_send_the_same_request(server: ReplayServer, runtime: modelwire.SyncRuntime, client: Any) -> None:
    server.reset()
    server.push(Script(text="ok"), Script(text="ok"))
    runtime.generate("vertex-gemini-2.5-flash", "hi")
    genai_reads(client)
    mine, theirs = server.requests
    assert mine.path == theirs.path == (
        f"/vertex/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/"
        "gemini-2.5-flash:streamGenerateContent"
    )
    assert mine.query == theirs.query == {"alt": "sse"}
    assert mine.headers["authorization"] == theirs.headers["authorization"] == f"Bearer {TOKEN}"
    assert mine.json["contents"] == theirs.json["contents"]


def test_vertex_inherits_gemini_rules(server: ReplayServer, runtime: modelwire.SyncRuntime) -> None:
    """``extends: gemini``: thoughts, citations, cache and thinking usage, structured output read as on Gemini."""
    server.reset()
    server.push(Script(
        text='{"ok": true}', reasoning=[Reasoning(["Let me ", "think."])],
        citations=[Citation(url="https://example.com/a", title="A")],
        usage=(120, 40), cache_read=100, reasoning_tokens=15,
    ))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    resp = runtime.generate("vertex-gemini-2.5-flash", "hi", response_format=schema)
    assert (resp.text, resp.reasoning, resp.parsed) == ('{"ok": true}', "Let me think.", {"ok": True})
    assert [(c.url, c.title) for c in resp.citations] == [("https://example.com/a", "A")]
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (120, 40)
    assert (resp.usage.cached_input_tokens, resp.usage.reasoning_tokens) == (100, 15)
    (request,) = server.requests
    assert request.path.startswith(f"/vertex/v1/projects/{PROJECT}/locations/{LOCATION}/")
    assert request.json["generationConfig"]["responseMimeType"] == "application/json"
    assert request.json["generationConfig"]["responseJsonSchema"] == schema


def test_vertex_offers_no_embeddings(runtime: modelwire.SyncRuntime) -> None:
    with pytest.raises(modelwire.ModelError):
        runtime.embed("vertex/gemini-2.5-flash", ["hi"])


@pytest.fixture(scope="module")
def private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _adc_file(tmp_path: Path, token_uri: str, private_key: str) -> Path:
    """A service-account key file (google-auth honours its token_uri; a user file's it ignores)."""
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "adc-project", "private_key_id": "k1",
        "private_key": private_key, "client_email": "sa@adc-project.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": token_uri,
    }))
    return path


@pytest.fixture
def adc(tmp_path: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch, private_key: str) -> Iterator[None]:
    """Application Default Credentials whose token endpoint is the replay server."""
    path = _adc_file(tmp_path, server.base_url + "/token", private_key)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    modelwire_google.reset()
    yield
    modelwire_google.reset()


def test_adc_token_is_fetched_once_and_sent(adc: None, server: ReplayServer) -> None:
    server.reset()
    grant = {"access_token": "ya29.from-adc", "expires_in": 3600, "token_type": "Bearer"}
    server.push(Reply(body=json.dumps(grant)), Script(text="one"), Script(text="two"))
    with modelwire.SyncRuntime.from_manifests("builtin:vertex", env=env_for(server, VERTEX_ACCESS_TOKEN="")) as rt:
        assert rt.generate("vertex-gemini-2.5-flash", "hi").text == "one"
        assert rt.generate("vertex-gemini-2.5-flash", "hi").text == "two"
    token, first, second = server.requests
    assert token.path == "/token" and "grant_type=urn" in token.body.decode()
    assert first.headers["authorization"] == second.headers["authorization"] == "Bearer ya29.from-adc"


def test_adc_project_fills_an_unset_project(adc: None, server: ReplayServer) -> None:
    server.reset()
    grant = {"access_token": "ya29.from-adc", "expires_in": 3600, "token_type": "Bearer"}
    server.push(Reply(body=json.dumps(grant)), Script(text="ok"))
    env = env_for(server, VERTEX_ACCESS_TOKEN="", VERTEX_PROJECT="")
    with modelwire.SyncRuntime.from_manifests("builtin:vertex", env=env) as rt:
        rt.generate("vertex-gemini-2.5-flash", "hi")
    assert server.requests[1].path.startswith("/vertex/v1/projects/adc-project/locations/")


def test_failed_refresh_is_an_auth_error_without_secrets(adc: None, server: ReplayServer) -> None:
    server.reset()
    server.push(Reply(status=400, body='{"error": "invalid_grant", "error_description": "Bad Request"}'))
    with modelwire.SyncRuntime.from_manifests("builtin:vertex", env=env_for(server, VERTEX_ACCESS_TOKEN="")) as rt, pytest.raises(modelwire.AuthError) as info:
        rt.generate("vertex-gemini-2.5-flash", "hi")
    assert info.value.code == "GOOGLE_REFRESH_FAILED"
    assert "PRIVATE KEY" not in str(info.value) and "invalid_grant" not in str(info.value)


def test_missing_project_names_the_variable(server: ReplayServer) -> None:
    env = env_for(server, VERTEX_PROJECT="")
    with modelwire.SyncRuntime.from_manifests("builtin:vertex", env=env) as rt, pytest.raises(modelwire.AuthError) as info:
        rt.generate("vertex-gemini-2.5-flash", "hi")
    assert info.value.code == "GOOGLE_PROJECT_MISSING" and "VERTEX_PROJECT" in info.value.message


def test_http_error_never_shows_the_token(server: ReplayServer, runtime: modelwire.SyncRuntime) -> None:
    server.push(*[Script(status=403)] * 5)
    with pytest.raises(modelwire.AuthError) as info:
        runtime.generate("vertex-gemini-2.5-flash", "hi")
    server.reset()
    assert TOKEN not in f"{info.value!s} {info.value!r}"


def test_manifest_loads_without_the_plugin_and_the_call_names_it(server: ReplayServer) -> None:
    server.reset()
    plugins = modelwire.Plugins(only=["modelwire-sse"])
    with modelwire.SyncRuntime.from_manifests("builtin:vertex", env=env_for(server), plugins=plugins) as rt, pytest.raises(modelwire.NotFoundError) as info:
        rt.generate("vertex-gemini-2.5-flash", "hi")
    assert "pip install modelwire-google" in info.value.message
    assert server.requests == []
