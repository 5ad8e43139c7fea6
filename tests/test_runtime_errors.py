"""Bad input at every stage is a typed error naming model, provider and endpoint."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import modelwire

from servers.raw import RawServer, raw_server

CORE = Path(modelwire.__file__).parent


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    with raw_server() as srv:
        yield srv


@pytest.fixture
def openai_rt(server: RawServer, monkeypatch: pytest.MonkeyPatch) -> modelwire.Runtime:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    return modelwire.Runtime.from_manifests("builtin:openai")


def run(rt: modelwire.Runtime, model: str = "gpt-4.1", **kw: Any) -> modelwire.Response:
    async def go() -> modelwire.Response:
        async with rt:
            return await rt.generate(model, "hi", **kw)

    return anyio.run(go)


CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}\n\n'


@pytest.mark.parametrize(
    ("status", "content_type", "body", "cls", "code"),
    [
        pytest.param(200, "text/html", b"<html><body>Login</body></html>", modelwire.ParseError, "UNEXPECTED_HTML", id="html-page"),
        pytest.param(200, "text/event-stream", b"", modelwire.NetworkError, "STREAM_TRUNCATED", id="empty-200"),
        pytest.param(200, "text/event-stream", CHUNK, modelwire.NetworkError, "STREAM_TRUNCATED", id="cut-before-done"),
        pytest.param(200, "text/event-stream", b"data: not json\n\n", modelwire.ParseError, "FRAME_NOT_JSON", id="non-json-data"),
        pytest.param(429, "application/json", b'{"error":{"code":"rate_limit_exceeded","message":"slow down"}}',
                     modelwire.RateLimitError, "rate_limit_exceeded", id="429"),
        pytest.param(500, "text/plain", b"oops", modelwire.ProviderDownError, None, id="500-plain"),
        pytest.param(200, "text/event-stream", b'data: {"error":{"code":"server_error","message":"bad"}}\n\n',
                     modelwire.ProviderDownError, "server_error", id="in-stream-error"),
    ],
)
def test_bad_responses(openai_rt: modelwire.Runtime, server: RawServer, status: int, content_type: str,
                       body: bytes, cls: type[modelwire.ModelError], code: str | None) -> None:
    server.reply(body, content_type, status=status)
    with pytest.raises(cls) as info:
        run(openai_rt)
    err = info.value
    assert (err.model, err.provider, err.endpoint) == ("gpt-4.1", "openai", server.url + "/v1/chat/completions")
    if code is not None:
        assert err.code == code
    assert "sk-test" not in str(err) and "sk-test" not in repr(err)


def test_retry_after_is_read(openai_rt: modelwire.Runtime, server: RawServer) -> None:
    # One try: the header is read into the error all the same, while the
    # default retries would honour it with 2 x 7 s of real sleep.
    spec = openai_rt.catalog.models["gpt-4.1"]
    once = attrs.evolve(spec, retry=attrs.evolve(spec.retry, attempts=1))
    openai_rt.catalog = attrs.evolve(openai_rt.catalog, models={**openai_rt.catalog.models, "gpt-4.1": once})
    before = len(server.requests)
    server.reply(b"{}", "application/json", status=429, retry_after="7")
    with pytest.raises(modelwire.RateLimitError) as info:
        run(openai_rt)
    assert info.value.retry_after == 7.0
    assert len(server.requests) == before + 1


def test_missing_key_fails_before_any_request(server: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    before = len(server.requests)
    with pytest.raises(modelwire.AuthError) as info:
        run(modelwire.Runtime.from_manifests("builtin:openai"))
    assert "OPENAI_API_KEY" in str(info.value)
    assert len(server.requests) == before


@pytest.mark.parametrize(
    ("model", "kwargs", "cls", "code"),
    [
        pytest.param("gpt-9", {}, modelwire.NotFoundError, "MODEL_NOT_FOUND", id="unknown-model"),
        pytest.param("nope/x", {}, modelwire.NotFoundError, "MODEL_NOT_FOUND", id="unknown-provider"),
        pytest.param("text-embedding-3-small", {}, modelwire.InvalidRequestError, "CAPABILITY_MISSING", id="no-generate"),
        pytest.param("gpt-4.1", {"max_tokens": 10**6}, modelwire.LimitExceededError, "MAX_TOKENS_EXCEEDED", id="max-tokens"),
    ],
)
def test_planning_errors_send_nothing(openai_rt: modelwire.Runtime, server: RawServer, model: str,
                                      kwargs: dict[str, Any], cls: type[modelwire.ModelError], code: str) -> None:
    before = len(server.requests)
    with pytest.raises(cls) as info:
        run(openai_rt, model, **kwargs)
    assert info.value.code == code
    assert len(server.requests) == before


def test_tools_on_a_model_without_tools(tmp_path: Path, server: RawServer) -> None:
    file = tmp_path / "m.yaml"
    file.write_text(
        "version: 1\nproviders:\n  p:\n    base_url: " + server.url + "\n    operators:\n"
        "      generate: {path: /x, parser: sse, request: '{m: model}', events: [{data: '[DONE]', stop: true}]}\n"
        "models:\n  small: {provider: p, capabilities: [generate, stream]}\n"
    )
    before = len(server.requests)
    with pytest.raises(modelwire.InvalidRequestError) as info:
        run(modelwire.Runtime.from_manifests(file), "small", tools=[{"name": "f", "parameters": {}}])
    assert "small" in str(info.value) and "tools" in str(info.value)
    assert len(server.requests) == before


def test_unknown_undeclared_model_works_as_provider_slash_model(openai_rt: modelwire.Runtime, server: RawServer) -> None:
    server.reply(CHUNK + b"data: [DONE]\n\n", "text/event-stream")
    resp = run(openai_rt, "openai/some-new-model")
    assert resp.text == "partial"
    assert b'"model":"some-new-model"' in server.requests[-1]["body"].replace(b" ", b"")


def test_connection_refused_is_network_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(modelwire.NetworkError) as info:
        run(modelwire.Runtime.from_manifests("builtin:openai"))
    assert isinstance(info.value.__cause__, Exception)


PROVIDER_NAMES = re.compile(r"openai|anthropic|gemini|ollama|mistral|groq|deepseek|claude|gpt-", re.I)


def _code_strings(source: str) -> list[tuple[int, str]]:
    """Identifiers and string literals of a module, docstrings and comments left out."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append((node.lineno, node.name))
    return out


def test_no_provider_names_in_core_python() -> None:
    """The interpreter knows no provider: they are all manifests.

    Code (identifiers and string literals) is checked; prose in docstrings
    and comments may cite a provider. ``modelwire.testing`` and the demo are
    exempt: they emulate providers' wire formats for tests and are never on
    the path of a real call.
    """
    offenders = []
    for path in sorted(CORE.glob("*.py")):
        if path.name == "_demo.py":
            continue
        for line, text in _code_strings(path.read_text(encoding="utf-8")):
            if PROVIDER_NAMES.search(text):
                offenders.append(f"{path.name}:{line}: {text[:80]!r}")
    assert offenders == []


def test_the_provider_name_check_can_fail() -> None:
    found = _code_strings('"""A docstring about OpenAI."""\nx = "api.openai.com"  # a comment on Gemini\n')
    assert sorted(found) == [(2, "api.openai.com"), (2, "x")]


def test_headers_and_query_from_expressions(tmp_path: Path, server: RawServer) -> None:
    file = tmp_path / "m.yaml"
    file.write_text(
        "version: 1\nproviders:\n  p:\n    base_url: " + server.url + "\n    operators:\n"
        "      generate:\n        path: /x\n        parser: sse\n        request: '{m: model}'\n"
        "        request_headers: \"{\\\"x-model\\\": model, \\\"x-tools\\\": when(tools, 'yes', `null`)}\"\n"
        "        request_query: \"{temperature: temperature, n: `2`}\"\n"
        "        events: [{data: '[DONE]', stop: true}]\n"
        "models:\n  small: {provider: p, id: tiny-1}\n"
    )
    server.reply(b"data: [DONE]\n\n", "text/event-stream")
    run(modelwire.Runtime.from_manifests(file), "small", temperature=0.5)
    sent = server.requests[-1]
    assert sent["headers"].get("x-model") == "tiny-1" and "x-tools" not in sent["headers"]
    assert sent["path"] == "/x?temperature=0.5&n=2"


def test_a_whole_json_body_on_a_stream_names_its_content_type(openai_rt: modelwire.Runtime, server: RawServer) -> None:
    server.reply(b'{"choices":[{"message":{"content":"hi"}}]}', "application/json; charset=utf-8")
    with pytest.raises(modelwire.NetworkError) as info:
        run(openai_rt)
    assert info.value.code == "STREAM_TRUNCATED"
    assert "of application/json)" in str(info.value)


def test_requests_carry_a_user_agent(openai_rt: modelwire.Runtime, server: RawServer) -> None:
    server.reply(b"data: [DONE]\n\n", "text/event-stream")
    run(openai_rt)
    headers = {k.lower(): v for k, v in server.requests[-1]["headers"].items()}
    assert headers["user-agent"] == f"modelwire/{modelwire.__version__}"
