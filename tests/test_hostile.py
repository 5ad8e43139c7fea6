"""Hostile input and bounded resources: keys, streams and bodies an attacker (or an accident) controls.

Every case runs over real loopback HTTP or feeds the sans-IO exchange bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anyio
import attrs
import pytest

import modelwire
from modelwire._errors import redact
from modelwire._manifest.model import Budget
from modelwire._runtime.exchange import Exchange
from modelwire._runtime.mapping import compile_rules
from modelwire._runtime.planning import plan

from servers.raw import RawServer, raw_server

KEY = "sk-live-5ecret0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    with raw_server() as srv:
        yield srv


def runtime(server: RawServer, key: str, **provider: Any) -> modelwire.Runtime:
    env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": server.url + "/v1"}
    catalog = modelwire.load_manifests("builtin:openai", env=env)
    if provider:
        p = catalog.providers["openai"]
        catalog = attrs.evolve(catalog, providers={**catalog.providers, "openai": attrs.evolve(p, **provider)})
    return modelwire.Runtime(catalog, env=env)


def generate(rt: modelwire.Runtime) -> modelwire.Response:
    async def go() -> modelwire.Response:
        async with rt:
            return await rt.generate("gpt-4.1", "hi")

    return anyio.run(go)


# -- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_key",
    [
        pytest.param(KEY + "\n", id="trailing-newline"),
        pytest.param(KEY + "\r\n", id="crlf"),
        pytest.param("sk-\x00" + KEY, id="nul"),
        pytest.param(KEY + "\u2028", id="non-latin1"),
    ],
)
def test_a_key_that_cannot_be_a_header_is_refused_before_sending(
    server: RawServer, caplog: pytest.LogCaptureFixture, bad_key: str
) -> None:
    before = len(server.requests)
    with caplog.at_level(logging.DEBUG), pytest.raises(modelwire.AuthError) as info:
        generate(runtime(server, bad_key))
    err = info.value
    assert err.code == "AUTH_KEY_INVALID"
    assert "OPENAI_API_KEY" in str(err)  # names the variable...
    rendered = "\n".join([str(err), repr(err), str(err.to_dict()), str(err.__cause__), caplog.text])
    assert KEY not in rendered  # ...never the value
    assert len(server.requests) == before  # nothing was sent


def test_errors_scrub_the_injected_key_whatever_its_shape(server: RawServer) -> None:
    shapeless = "plainwords-without-a-known-prefix"
    server.reply(b'{"error": {"message": "bad key plainwords-without-a-known-prefix"}}', "application/json", status=401)
    with pytest.raises(modelwire.AuthError) as info:
        generate(runtime(server, shapeless))
    assert shapeless not in str(info.value) and shapeless not in repr(info.value)
    assert "***" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("models.main.api_key: environment variable MISSING_KEY is not set",
                     "models.main.api_key: environment variable MISSING_KEY is not set", id="words-survive"),
        pytest.param("Authorization: Bearer sk-abc123def456", "Authorization: Bearer ***", id="bearer"),
        pytest.param("GET /v1beta?key=AIzaSyA1234567890abcdefghijklmno", "GET /v1beta?key=***", id="query-key"),
        pytest.param("the key AIzaSyA1234567890abcdefghijklmno leaked", "the key *** leaked", id="gemini-shape"),
    ],
)
def test_redaction_hides_keys_and_keeps_the_words(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_reprs_never_show_a_literal_key(server: RawServer) -> None:
    catalog = modelwire.load_manifests("builtin:openai", env={"OPENAI_BASE_URL": server.url})
    p = catalog.providers["openai"]
    catalog = attrs.evolve(
        catalog, providers={"openai": attrs.evolve(p, auth=attrs.evolve(p.auth, value=KEY, env=None))}
    )
    assert KEY not in repr(catalog)
    assert KEY not in repr(catalog.providers["openai"].auth)


# -- streams ------------------------------------------------------------------------------

CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"0123456789abcdef"}}]}\n\n'


@pytest.mark.parametrize(
    ("budget", "body"),
    [
        pytest.param({"max_bytes": 10_000}, CHUNK * 1_000, id="bytes"),
        pytest.param({"max_events": 50}, CHUNK * 1_000, id="events"),
        pytest.param({"max_bytes": 10_000}, b"data: " + b"x" * 200_000, id="no-newline-ever"),
    ],
)
def test_a_stream_past_its_budget_stops(server: RawServer, budget: dict[str, int], body: bytes) -> None:
    server.reply(body, "text/event-stream")
    rt = runtime(server, KEY, budget=Budget(**budget))
    with pytest.raises(modelwire.LimitExceededError) as info:
        generate(rt)
    assert info.value.code == "STREAM_TOO_LARGE"


def test_every_manifest_inherits_bounded_defaults() -> None:
    catalog = modelwire.load_manifests("builtin:*", env={})
    for name, provider in catalog.providers.items():
        assert provider.timeout.total is not None, name
        assert provider.budget.max_bytes is not None and provider.budget.max_events is not None, name


def test_memory_stays_flat_when_the_provider_reports_usage() -> None:
    """The tally keeps produced text only until usage is reported (the estimate is then not needed)."""
    catalog = modelwire.load_manifests("builtin:openai", env={})
    plan_ = plan(catalog, "gpt-4.1", "generate")
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n'
    exchange = Exchange(modelwire.get_parser("sse"), compile_rules(plan_.operator), plan_.context())
    exchange.feed(usage)
    for _ in range(20_000):  # 20,000 deltas of 16 characters, discarded by the caller
        exchange.feed(CHUNK)
    assert exchange.tally.produced == []
    assert exchange.tally.reported


def test_an_html_page_is_read_only_in_part(server: RawServer) -> None:
    server.reply(b"<html>" + b"A" * 5_000_000, "text/html")
    with pytest.raises(modelwire.ParseError) as info:
        generate(runtime(server, KEY))
    assert info.value.code == "UNEXPECTED_HTML"
    assert len(str(info.value)) < 1_000


def test_httpx_log_lines_never_carry_a_query_key(caplog: pytest.LogCaptureFixture) -> None:
    """``auth: {type: query}`` puts the key in the URL, which httpx logs at INFO."""
    from modelwire.testing import ReplayServer

    secret = "plainsecretwithoutshape"
    with ReplayServer() as srv:
        env = {"GEMINI_API_KEY": secret, "GEMINI_BASE_URL": srv.url_for("gemini")}

        catalog = modelwire.load_manifests("builtin:gemini", env=env)
        p = catalog.providers["gemini"]
        query = attrs.evolve(p.auth, type="query", name="key")
        catalog = attrs.evolve(catalog, providers={"gemini": attrs.evolve(p, auth=query)})

        async def go() -> None:
            async with modelwire.Runtime(catalog, env=env) as rt:
                await rt.generate("gemini-2.5-flash", "hi")

        with caplog.at_level(logging.DEBUG):
            anyio.run(go)
        assert srv.requests[-1].query["key"] == secret  # the key did go out, in the query
    assert "HTTP Request" in caplog.text
    assert secret not in caplog.text


# -- nesting and unicode --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ctype", "body", "code"),
    [
        pytest.param(200, "text/event-stream", b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n",
                     "FRAME_TOO_DEEP", id="deep-frame"),
        pytest.param(500, "application/json", b"[" * 100_000 + b"]" * 100_000, "HTTP_500", id="deep-error-body"),
    ],
)
def test_deep_json_is_a_typed_error(server: RawServer, status: int, ctype: str, body: bytes, code: str) -> None:
    server.reply(body, ctype, status=status)
    rt = modelwire.Runtime.from_manifests(
        "builtin:openai", env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url + "/v1"}, policy="raise"
    )
    with pytest.raises(modelwire.ModelError) as info:
        generate(rt)
    assert info.value.code == code


def test_a_lone_surrogate_in_a_message_is_a_typed_error(server: RawServer) -> None:
    before = len(server.requests)

    async def go() -> None:
        async with runtime(server, KEY) as rt:
            await rt.generate("gpt-4.1", "half a pair: \ud800")

    with pytest.raises(modelwire.InvalidRequestError) as info:
        anyio.run(go)
    assert info.value.code == "INVALID_UNICODE"
    assert len(server.requests) == before


def test_the_cli_prints_a_lone_surrogate_from_the_model(tmp_path: Any) -> None:
    """Model output is JSON: ``"\\ud800"`` decodes to a lone surrogate, which stdout cannot encode."""
    import subprocess
    import sys

    from modelwire.testing import ReplayServer, Reply

    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"before \\ud800 after"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    with ReplayServer() as srv:
        srv.push(Reply(body=body, content_type="text/event-stream"))
        env = {"OPENAI_BASE_URL": srv.url_for("openai"), "OPENAI_API_KEY": KEY, "PATH": ""}
        proc = subprocess.run(
            [sys.executable, "-m", "modelwire", "call", "gpt-4.1-mini", "hi"],
            capture_output=True, env=env, timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert b"before \\ud800 after" in proc.stdout
    assert b"Traceback" not in proc.stderr


def test_a_model_tool_call_nested_too_deep_is_fed_back_as_an_error() -> None:
    from modelwire.testing import ReplayServer, Script
    from modelwire.testing import ToolCall as ScriptedCall
    from modelwire.tools import ToolResult, run_tools, tool

    @tool
    def echo(x: int) -> int:
        """x back."""
        return x

    deep = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with ReplayServer() as srv:
        srv.push(Script(text="", tool_calls=[ScriptedCall("c1", "echo", deep)]), Script(text="done"))
        env = {"OPENAI_BASE_URL": srv.url_for("openai"), "OPENAI_API_KEY": KEY}

        async def go() -> list[Any]:
            async with modelwire.Runtime.from_manifests("builtin:openai", env=env) as rt:
                return [ev async for ev in run_tools(rt, "gpt-4.1-mini", "?", tools=[echo])]

        events = anyio.run(go)
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.code for r in results] == ["TOOL_BAD_ARGUMENTS"]
    assert "nested too deeply" in (results[0].error or "")
