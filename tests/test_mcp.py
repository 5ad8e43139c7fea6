"""MCP servers as modelwire tools, against real MCP servers (the SDK's own
``MCPServer``) over streamable HTTP and over SSE, under asyncio and trio."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

import modelwire
from modelwire import NetworkError
from modelwire.testing import ReplayServer, Script, ToolCall
from modelwire.tools import ToolError, ToolRegistry, ToolResult, call_tool, run_tools
from modelwire.tools._mcp import MCPClient, MCPServerConfig, input_ports, tool_name

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.timeout(30),
    # Under trio, the SDK's transports leave httpx2's SSE event iterator
    # (EventSource.__aiter__) to trio's async-generator GC hook when a stream
    # is torn down mid-way: inside the SDK, not reachable from here.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <async_generator object EventSource\\.__aiter__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

SERVER = Path(__file__).parent / "servers" / "mcp_server.py"
TRANSPORTS = {"streamable_http": ("streamable-http", "/mcp"), "sse": ("sse", "/sse")}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mcp_urls() -> Iterator[dict[str, str]]:
    """Both transports, each a real server in its own subprocess."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        ports = {}
        for transport, (arg, path) in TRANSPORTS.items():
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, str(SERVER), arg, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ))
            ports[transport] = port
            urls[transport] = f"http://127.0.0.1:{port}{path}"
        deadline = time.monotonic() + 20
        for transport, port in ports.items():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                        pytest.fail(f"MCP test server ({transport}) did not start")
                    time.sleep(0.05)
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                p.kill()


@pytest.fixture(params=list(TRANSPORTS))
def config(request: pytest.FixtureRequest, mcp_urls: dict[str, str]) -> MCPServerConfig:
    transport = request.param
    return MCPServerConfig("calc", mcp_urls[transport], transport=transport, timeout=10)


async def test_list_tools_carries_the_input_schema(config: MCPServerConfig) -> None:
    async with MCPClient(config) as client:
        assert client.connected
        tools = {t.name: t for t in await client.list_tools()}
        prefixed = await client.list_tools(prefix=True)
    assert not client.connected
    assert set(tools) == {"add", "greet", "weather", "fail"}
    assert sorted(t.name for t in prefixed) == ["calc__add", "calc__fail", "calc__greet", "calc__weather"]
    add = tools["add"].manifest
    assert add.description == "Add two integers."
    assert [(p.name, p.schema["type"], p.is_required) for p in add.inputs] == [("a", "integer", True), ("b", "integer", False)]
    schema = add.input_schema()
    assert schema["required"] == ["a"] and schema["properties"]["b"]["default"] == 1
    assert [p.name for p in add.outputs] == ["result"]
    assert add.as_model_tool()["name"] == "add"
    # a registry accepts them (its manifest checks pass)
    registry = ToolRegistry(prefixed)
    assert "calc__greet" in registry


async def test_call_a_tool(config: MCPServerConfig) -> None:
    async with MCPClient(config) as client:
        assert await client.call("add", {"a": 2, "b": 3}) == 5  # the SDK's {"result": 5} unwrapped
        assert await client.call("greet", {"name": "Ada"}) == "Hello, Ada!"
        assert await client.call("weather", {"city": "Oslo"}) == {"city": "Oslo", "forecast": "sunny in Oslo"}
        tools = {t.name: t for t in await client.list_tools(prefix=True)}
        # through modelwire's own checks: defaults, validation, the output port
        assert await call_tool(tools["calc__add"], {"a": 40}) == {"result": 41}
        with pytest.raises(ToolError) as info:
            await call_tool(tools["calc__add"], {"a": "x"})
        assert info.value.code == "TOOL_BAD_INPUT"


async def test_tool_error(config: MCPServerConfig) -> None:
    async with MCPClient(config) as client:
        with pytest.raises(ToolError) as info:
            await client.call("fail", {"reason": "boom"})
        assert info.value.code == "MCP_TOOL_ERROR"
        assert info.value.server == "calc" and info.value.tool == "fail"  # type: ignore[attr-defined]
        assert "'fail'" in str(info.value) and "'calc'" in str(info.value)
        tool = {t.name: t for t in await client.list_tools()}["fail"]
        with pytest.raises(ToolError) as info:
            await call_tool(tool, {"reason": "boom"})
        assert info.value.code == "MCP_TOOL_ERROR"  # passes through call_tool unchanged


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_connection_refused_is_a_network_error(transport: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}{TRANSPORTS[transport][1]}"
    client = MCPClient(MCPServerConfig("nowhere", url, transport=transport, timeout=5))
    with pytest.raises(NetworkError) as info:
        await client.connect()
    assert info.value.code == "MCP_CONNECT_FAILED"
    assert "'nowhere'" in str(info.value) and url in str(info.value)
    assert not client.connected
    with pytest.raises(NetworkError) as info:
        await client.call("add", {"a": 1})
    assert info.value.code == "MCP_NOT_CONNECTED"
    await client.aclose()  # harmless


async def test_run_tools_calls_an_mcp_tool(config: MCPServerConfig) -> None:
    with ReplayServer(seed=7) as server:
        server.push(
            Script(text="", tool_calls=[ToolCall("call_1", "calc__weather", '{"city": "Paris"}')]),
            Script(text="Sunny in Paris."),
        )
        env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k"}
        async with MCPClient(config) as client:
            tools = await client.list_tools(prefix=True)
            async with (
                modelwire.Runtime.from_manifests("builtin:openai", env=env, policy="raise") as rt,
                aclosing(run_tools(rt, "gpt-4.1-mini", "Weather in Paris?", tools=tools)) as events,
            ):
                seen = [ev async for ev in events]
        results = [e for e in seen if isinstance(e, ToolResult)]
        assert [(r.name, r.output, r.error) for r in results] == [
            ("calc__weather", {"result": {"city": "Paris", "forecast": "sunny in Paris"}}, None)
        ]
        first = server.requests[0].json
        spec = next(t for t in first["tools"] if t["function"]["name"] == "calc__weather")
        assert spec["function"]["parameters"]["required"] == ["city"]
        tool_msg = [m for m in server.requests[-1].json["messages"] if m["role"] == "tool"]
        assert json.loads(tool_msg[0]["content"]) == {"result": {"city": "Paris", "forecast": "sunny in Paris"}}


def test_schema_mapping() -> None:
    schema = {
        "type": "object",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "properties": {"at": {"$ref": "#/$defs/Point", "description": "where"}, "n": {"type": "integer"}},
        "required": ["at"],
    }
    ports, split = input_ports(schema)
    assert split
    assert ports[0].schema == {"type": "object", "properties": {"x": {"type": "number"}}}
    assert ports[0].description == "where" and ports[0].is_required and not ports[1].is_required
    odd = {"type": "object", "properties": {"a.b": {"type": "string"}}}
    ports, split = input_ports(odd)
    assert not split and [p.name for p in ports] == ["arguments"] and ports[0].schema == odd
    assert input_ports(None) == ([], True)
    assert tool_name("my server", "read/file", True) == "my_server__read_file"
    assert tool_name("s", "9lives", False) == "_9lives"


async def test_concurrent_calls_and_closing_from_another_task(config: MCPServerConfig) -> None:
    import anyio

    from modelwire import InvalidRequestError

    async with MCPClient(config) as client:
        out: dict[int, Any] = {}

        async def one(i: int) -> None:
            out[i] = await client.call("add", {"a": i, "b": i})

        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(one, i)
        assert out == {i: 2 * i for i in range(5)}

    other = MCPClient(config)
    await other.connect()
    errors: list[BaseException] = []

    async def close_elsewhere() -> None:
        try:
            await other.aclose()
        except InvalidRequestError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(close_elsewhere)
    assert [getattr(e, "code", None) for e in errors] == ["MCP_WRONG_TASK"]
    assert other.connected and await other.call("greet", {"name": "x"}) == "Hello, x!"
    await other.aclose()  # from the connecting task: fine
    assert not other.connected


async def test_unknown_tool_and_a_server_that_goes_away(config: MCPServerConfig) -> None:
    import anyio

    async with MCPClient(config) as client:
        with pytest.raises(ToolError) as info:
            await client.call("nope", {})
        assert info.value.code == "MCP_TOOL_ERROR" and "nope" in str(info.value)

    port = free_port()
    arg, path = TRANSPORTS[config.transport]
    proc = subprocess.Popen([sys.executable, str(SERVER), arg, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                await anyio.sleep(0.05)
        lost = MCPServerConfig("gone", f"http://127.0.0.1:{port}{path}", transport=config.transport, timeout=5)
        async with MCPClient(lost) as client:
            assert await client.call("add", {"a": 1}) == 2
            proc.kill()
            proc.wait(5)
            # The transport's failure ends the client's own background task,
            # not this one: the call fails with a typed error.
            for _ in range(2):
                with anyio.fail_after(10), pytest.raises(NetworkError) as failed:
                    await client.call("add", {"a": 1})
                assert failed.value.code == "MCP_CALL_FAILED" and "'gone'" in str(failed.value)
        assert not client.connected
    finally:
        proc.kill()
        proc.wait(5)
