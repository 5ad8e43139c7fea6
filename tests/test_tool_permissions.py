"""Tool permissions enforced: the host's ``permit`` check in the model loop and the orchestrator.

The model loop runs over loopback (the replay server asks for a tool); a
denied call never reaches the tool and goes back to the model as an error
result, or raises with ``on_tool_error="raise"``. A pipeline step whose
tool is denied fails without retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import pytest

import modelwire
from modelwire import Event
from modelwire.pipelines import Orchestrator, Pipeline, PipelineError, RetryPolicy, Step
from modelwire.testing import ReplayServer, Script, ToolCall
from modelwire.tools import (
    PermissionRequest,
    Port,
    Tool,
    ToolError,
    ToolManifest,
    ToolResult,
    call_tool,
    grant,
    run_tools,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=15) as srv:
        yield srv


def fetch_tool(ran: list[str], permissions: list[str]) -> Tool:
    manifest = ToolManifest(
        "fetch_page", "fetch a page", inputs=[Port("url", {"type": "string"})],
        outputs=[Port("body", {"type": "string"})], permissions=permissions,
    )

    def fetch_page(url: str) -> str:
        ran.append(url)
        return f"<html>{url}</html>"

    return Tool(manifest, fetch_page)


async def loop(server: ReplayServer, tool: Tool, **kw: Any) -> list[Event]:
    server.reset()
    server.push(Script(text="", tool_calls=[ToolCall("call_1", "fetch_page", '{"url": "https://x.test"}')]),
                Script(text="done"))
    env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k"}
    rt = modelwire.Runtime.from_manifests("builtin:openai", env=env, policy="raise")
    async with rt, aclosing(run_tools(rt, "gpt-4.1-mini", "hi", tools=[tool], **kw)) as events:
        return [ev async for ev in events]


def result(events: list[Event]) -> ToolResult:
    (res,) = [e for e in events if isinstance(e, ToolResult)]
    return res


async def ask_host(request: PermissionRequest) -> bool:  # an awaitable answer: the host was asked
    return request.tool == "fetch_page" and dict(request.inputs) == {"url": "https://x.test"}


def broken(request: PermissionRequest) -> bool:
    raise RuntimeError("policy service down")


LOOP_CASES = [
    # permissions the tool declares, permit, does it run, the result's code
    pytest.param(["net"], None, True, None, id="no-permit-no-check"),
    pytest.param(["net"], grant("net"), True, None, id="granted"),
    pytest.param(["net", "fs.write"], grant("net"), False, "TOOL_PERMISSION_DENIED", id="one-missing"),
    pytest.param(["net"], grant(), False, "TOOL_PERMISSION_DENIED", id="nothing-granted"),
    pytest.param([], grant(), True, None, id="declares-none"),
    pytest.param(["net"], ask_host, True, None, id="async-host-grants"),
    pytest.param(["net"], lambda r: "yes", False, "TOOL_PERMISSION_DENIED", id="only-True-grants"),
    pytest.param(["net"], broken, False, "TOOL_PERMISSION_DENIED", id="failing-check-denies"),
]


@pytest.mark.parametrize(("permissions", "permit", "runs", "code"), LOOP_CASES)
async def test_the_loop_asks_before_running(server: ReplayServer, permissions: list[str], permit: Any,
                                            runs: bool, code: str | None) -> None:
    ran: list[str] = []
    events = await loop(server, fetch_tool(ran, permissions), permit=permit)
    res = result(events)
    assert (bool(ran), res.code) == (runs, code)
    sent = [m for m in json.loads(server.requests[1].body)["messages"] if m["role"] == "tool"]
    if runs:
        assert res.output == {"body": "<html>https://x.test</html>"}
    else:
        assert res.error is not None and "fetch_page" in res.error
        assert json.loads(sent[0]["content"]) == {"error": res.error}  # the model is told


async def test_a_denial_raises_in_raise_mode(server: ReplayServer) -> None:
    ran: list[str] = []
    with pytest.raises(ToolError) as info:
        await loop(server, fetch_tool(ran, ["net"]), permit=grant(), on_tool_error="raise")
    assert info.value.code == "TOOL_PERMISSION_DENIED" and info.value.tool == "fetch_page"
    assert ran == [] and len(server.requests) == 1


async def test_call_tool_asks_after_validating() -> None:
    asked: list[PermissionRequest] = []

    def permit(request: PermissionRequest) -> bool:
        asked.append(request)
        return False

    tool = fetch_tool([], ["net"])
    with pytest.raises(ToolError) as info:
        await call_tool(tool, {"url": 3}, permit=permit)
    assert info.value.code == "TOOL_BAD_INPUT" and asked == []
    with pytest.raises(ToolError) as info:
        await call_tool(tool, {"url": "secret-u"}, permit=permit)
    assert info.value.code == "TOOL_PERMISSION_DENIED"
    assert asked == [PermissionRequest("fetch_page", ("net",), {"url": "secret-u"})]
    assert "secret-u" not in repr(asked[0])  # inputs stay out of reprs


async def test_a_denied_pipeline_step_is_not_retried() -> None:
    ran: list[str] = []
    registry = modelwire.tools.ToolRegistry()
    registry.register(fetch_tool(ran, ["net"]))
    asked: list[str] = []

    def permit(request: PermissionRequest) -> bool:
        asked.append(request.tool)
        return False

    orch = Orchestrator(registry, permit=permit)
    orch.register_pipeline(Pipeline("p", [Step("get", tool="fetch_page", inputs={"url": {"value": "u"}},
                                                retry=RetryPolicy(attempts=3))]))
    with pytest.raises(PipelineError) as info:
        await orch.execute("p")
    cause = info.value.__cause__
    assert isinstance(cause, ToolError) and cause.code == "TOOL_PERMISSION_DENIED"
    assert (ran, asked) == ([], ["fetch_page"])
    granted = Orchestrator(registry, permit=grant("net"))
    granted.register_pipeline(orch.get_pipeline("p"))
    assert (await granted.call_pipeline("p")) == {"get": {"body": "<html>u</html>"}} and ran == ["u"]
