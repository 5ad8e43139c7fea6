"""``providers.*.requires`` and ``OutgoingRequest.body()``: a provider whose plugins are missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelwire
from modelwire.testing import ReplayServer, Script

MANIFEST = """
version: 1
providers:
  cloudy:
    base_url: {base_url}
    auth: {{type: {auth}}}
    {requires}
    operators:
      generate:
        path: /chat/completions
        parser: {parser}
        request: "{{model: model, messages: messages, stream: `true`}}"
        events:
          - {{data: "[DONE]", stop: true}}
          - each: "choices[].delta.content"
            emit: {{type: text, text: "@"}}
"""


def write(tmp_path: Path, *, auth: str = "none", parser: str = "sse", requires: str = "",
          base_url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "cloudy.yaml"
    line = f"requires: [{requires}]" if requires else ""
    path.write_text(MANIFEST.format(base_url=base_url, auth=auth, parser=parser, requires=line))
    return path


@pytest.mark.parametrize(
    ("auth", "parser", "code"),
    [
        pytest.param("cloud-signer", "sse", "AUTH_INJECTOR_NOT_FOUND", id="auth"),
        pytest.param("none", "cloud-frames", "PARSER_NOT_FOUND", id="parser"),
    ],
)
def test_missing_plugin_fails_the_call_not_the_load(tmp_path: Path, auth: str, parser: str, code: str) -> None:
    path = write(tmp_path, auth=auth, parser=parser, requires="modelwire-cloudy")
    with modelwire.SyncRuntime.from_manifests(path) as rt, pytest.raises(modelwire.NotFoundError) as info:
        rt.generate("cloudy/m1", "hi")
    assert info.value.code == code
    assert "provider 'cloudy' needs the plugin distribution modelwire-cloudy" in info.value.message
    assert "pip install modelwire-cloudy" in info.value.message
    assert info.value.model == "cloudy/m1"


def test_without_requires_a_missing_plugin_fails_the_load(tmp_path: Path) -> None:
    path = write(tmp_path, auth="cloud-signer")
    with pytest.raises(modelwire.NotFoundError) as info:
        modelwire.Runtime.from_manifests(path)
    assert info.value.code == "AUTH_INJECTOR_NOT_FOUND"


def test_requires_met_calls_normally(tmp_path: Path) -> None:
    with ReplayServer(seed=3) as srv:
        path = write(tmp_path, requires="modelwire-sse", base_url=srv.url_for("openai"))
        srv.push(Script(text=["a", "é", "😀"]))
        with modelwire.SyncRuntime.from_manifests(path) as rt:
            assert rt.generate("cloudy/m1", 'say "hi" \u2028').text == "aé😀"
        (request,) = srv.requests
    # The body on the wire is OutgoingRequest.body(): compact, raw UTF-8.
    expected = {"model": "m1", "messages": [{"role": "user", "content": 'say "hi" \u2028'}], "stream": True}
    assert request.body == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
    assert request.headers["content-type"] == "application/json"


def test_body_is_encoded_once_and_refuses_lone_surrogates() -> None:
    request = modelwire.plugin.OutgoingRequest("POST", "http://x", json={"a": "é"})
    assert request.body() == '{"a":"é"}'.encode()
    assert request.body() is request.body()
    assert modelwire.plugin.OutgoingRequest("GET", "http://x").body() is None
    with pytest.raises(modelwire.InvalidRequestError) as info:
        modelwire.plugin.OutgoingRequest("POST", "http://x", json={"a": "\ud800"}).body()
    assert info.value.code == "INVALID_UNICODE"
