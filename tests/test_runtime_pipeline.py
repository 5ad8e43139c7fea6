"""Runtime.call_pipeline: the runtime's tools, its orchestrator, one shutdown."""

from __future__ import annotations

import anyio
import pytest

import modelwire


@modelwire.tools.tool
def double(x: int) -> int:
    """Twice x."""
    return 2 * x


@modelwire.tools.tool
def add_one(result: int) -> int:
    """result + 1."""
    return result + 1


def make_runtime() -> modelwire.Runtime:
    registry = modelwire.tools.ToolRegistry([double, add_one])
    rt = modelwire.Runtime.from_manifests("builtin:openai", env={}, tools=registry)
    flow = (
        modelwire.pipelines.Flow("twice_plus_one", inputs={"x": {"type": "integer"}})
        .add_tool_node("a", "double", inputs={"x": "input.x"})
        .add_tool_node("b", "add_one", inputs={"result": "a.result"})
        .connect("a", "b")
        .add_output("value", "b.result")
    )
    rt.pipelines.register_pipeline(flow)
    return rt


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_call_pipeline(backend: str) -> None:
    rt = make_runtime()

    async def go() -> dict[str, object]:
        async with rt:
            return await rt.call_pipeline("twice_plus_one", {"x": 20})

    assert anyio.run(go, backend=backend) == {"value": 41}


def test_sync_call_pipeline() -> None:
    with modelwire.SyncRuntime(make_runtime()) as rt:
        assert rt.call_pipeline("twice_plus_one", {"x": 1}) == {"value": 3}


def test_unknown_pipeline() -> None:
    rt = make_runtime()

    async def go() -> None:
        async with rt:
            await rt.call_pipeline("nope", {})

    with pytest.raises(modelwire.NotFoundError):
        anyio.run(go)
