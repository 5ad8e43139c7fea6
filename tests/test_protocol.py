"""Protocol resolution: explicit parser > Content-Type > URL rules > default, per mode."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import modelwire

from core_helpers import PARSER_DISTS, UPPER
from servers.raw import RawServer, raw_server


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    with raw_server() as srv:
        yield srv


def runtime(tmp_path: Path, base_url: str, *, parser: str | None = None, protocol: dict[str, Any] | None = None,
            path: str = "/gen") -> modelwire.Runtime:
    op: dict[str, Any] = {"path": path, "request": "{prompt: messages[0].content}",
                          "events": [{"raw": True, "emit": {"type": "text", "text": "to_string(@)"}}]}
    if parser:
        op["parser"] = parser
    doc: dict[str, Any] = {
        "version": 1,
        "providers": {"local": {"base_url": base_url, "operators": {"generate": op}}},
        "models": {"m": {"provider": "local"}},
    }
    if protocol is not None:
        doc["protocol"] = protocol
    file = tmp_path / "m.yaml"
    file.write_text(json.dumps(doc))
    # The test venv also holds a plugin that clashes with upper-lines on purpose.
    plugins = modelwire.Plugins(only=[*PARSER_DISTS, UPPER])
    return modelwire.Runtime.from_manifests(file, plugins=plugins)


def text_of(rt: modelwire.Runtime) -> str:
    async def go() -> str:
        async with rt:
            return (await rt.generate("m", "hi")).text

    return anyio.run(go)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        pytest.param("text/event-stream", b"data: a\n\ndata: b\n\n", "ab", id="sse"),
        pytest.param("text/event-stream; charset=utf-8", b"data: a\n\n", "a", id="sse-with-params"),
        pytest.param("application/x-ndjson", b'{"a":1}\n{"b":2}\n', '{"a":1}{"b":2}', id="ndjson"),
        pytest.param("application/json", b'{\n  "a": 1\n}\n', '{"a":1}', id="json-document"),
        pytest.param("text/plain", b"plain words", "plain words", id="text-wildcard"),
        pytest.param("text/x-upper-lines", b"ab\ncd\n", "ABCD", id="third-party-plugin-joins-detection"),
        pytest.param("application/octet-stream", b"raw", "raw", id="unknown-type-default-text"),
        pytest.param(None, b"no type", "no type", id="missing-type-default-text"),
    ],
)
def test_detection_by_content_type(tmp_path: Path, server: RawServer, content_type: str | None, body: bytes, expected: str) -> None:
    server.reply(body, content_type)
    assert text_of(runtime(tmp_path, server.url)) == expected


def test_explicit_parser_wins(tmp_path: Path, server: RawServer) -> None:
    server.reply(b"data: x\n\n", "application/x-ndjson")
    assert text_of(runtime(tmp_path, server.url, parser="sse")) == "x"


def test_url_rule(tmp_path: Path, server: RawServer) -> None:
    server.reply(b"data: x\n\n", "application/octet-stream")
    protocol = {"url_rules": [{"contains": "chat/completions", "parser": "sse"}]}
    rt = runtime(tmp_path, server.url, protocol=protocol, path="/v1/chat/completions")
    assert text_of(rt) == "x"


def test_no_default_is_an_error(tmp_path: Path, server: RawServer) -> None:
    server.reply(b"x", "application/octet-stream")
    with pytest.raises(modelwire.InvalidRequestError) as info:
        text_of(runtime(tmp_path, server.url, protocol={"default": None}))
    assert info.value.code == "PROTOCOL_UNDETECTED"


@pytest.mark.parametrize(
    ("protocol", "code"),
    [
        pytest.param({"detect": "off"}, "PROTOCOL_MISSING", id="off"),
        pytest.param({"detect": False}, "PROTOCOL_MISSING", id="off-as-yaml-boolean"),
        pytest.param({"allow": ["other"]}, "PROTOCOL_MISSING", id="not-in-allowlist"),
        pytest.param({"detect": "strict"}, "PROTOCOL_DETECTION_FORBIDDEN", id="strict"),
    ],
)
def test_modes_that_refuse(tmp_path: Path, server: RawServer, protocol: dict[str, Any], code: str) -> None:
    server.reply(b"data: x\n\n", "text/event-stream")
    with pytest.raises(modelwire.InvalidRequestError) as info:
        text_of(runtime(tmp_path, server.url, protocol=protocol))
    assert info.value.code == code
    assert info.value.provider == "local"


@pytest.mark.parametrize("allow", [["local"], ["http://127.0.0.1"]], ids=["by-provider", "by-base-url"])
def test_allowlist_permits(tmp_path: Path, server: RawServer, allow: list[str]) -> None:
    server.reply(b"data: x\n\n", "text/event-stream")
    assert text_of(runtime(tmp_path, server.url, protocol={"allow": allow})) == "x"


@pytest.mark.parametrize("mode", ["on", "warn"])
def test_detection_warns_whenever_it_picks_the_parser(
    tmp_path: Path, server: RawServer, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    server.reply(b"data: x\n\n", "text/event-stream")
    with caplog.at_level(logging.WARNING, logger="modelwire"):
        assert text_of(runtime(tmp_path, server.url, protocol={"detect": mode})) == "x"
    assert "parser 'sse'" in caplog.text and "text/event-stream" in caplog.text


def test_quiet_detection_logs_at_debug_only(tmp_path: Path, server: RawServer, caplog: pytest.LogCaptureFixture) -> None:
    server.reply(b"data: x\n\n", "text/event-stream")
    with caplog.at_level(logging.DEBUG, logger="modelwire"):
        assert text_of(runtime(tmp_path, server.url, protocol={"detect": "quiet"})) == "x"
    chosen = [r for r in caplog.records if "parser 'sse' chosen" in r.getMessage()]
    assert [r.levelno for r in chosen] == [logging.DEBUG]
