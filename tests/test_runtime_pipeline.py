"""Pipelines beside a runtime: an Orchestrator over a ToolRegistry, under asyncio, trio and SyncRuntime.run."""

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


def make_orchestrator() -> modelwire.pipelines.Orchestrator:
    orch = modelwire.pipelines.Orchestrator(modelwire.tools.ToolRegistry([double, add_one]))
    flow = (
        modelwire.pipelines.Flow("twice_plus_one", inputs={"x": {"type": "integer"}})
        .add_tool_node("a", "double", inputs={"x": "input.x"})
        .add_tool_node("b", "add_one", inputs={"result": "a.result"})
        .connect("a", "b")
        .add_output("value", "b.result")
    )
    orch.register_pipeline(flow)
    return orch


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_call_pipeline(backend: str) -> None:
    orch = make_orchestrator()

    async def go() -> dict[str, object]:
        return await orch.call_pipeline("twice_plus_one", {"x": 20})

    assert anyio.run(go, backend=backend) == {"value": 41}


def test_sync_call_pipeline() -> None:
    orch = make_orchestrator()
    with modelwire.SyncRuntime(modelwire.Runtime.from_manifests("builtin:openai", env={})) as rt:
        assert rt.run(orch.call_pipeline, "twice_plus_one", {"x": 1}) == {"value": 3}


def test_unknown_pipeline() -> None:
    orch = make_orchestrator()

    async def go() -> None:
        await orch.call_pipeline("nope", {})

    with pytest.raises(modelwire.NotFoundError):
        anyio.run(go)
