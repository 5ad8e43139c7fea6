"""A step that runs another pipeline: YAML (``pipeline:``) and Flow
(``add_pipeline_node``), dotted pipeline names, the nested pipeline's ports
(declared, or read), the load-time checks (unknown pipeline, itself, a cycle
across pipelines, the IO check through the node) and the run: retry,
timeout, fallback, permissions and cancellation reach the nested steps.

No timed assertions: the only clock is a step timeout against a tool that
waits on an event nobody sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from modelwire._errors import ManifestError
from modelwire.pipelines import Flow, Orchestrator, PipelineError, compile_pipeline, read_pipelines
from modelwire.pipelines._plan import node_manifest
from modelwire.tools import PermissionRequest, Port, Tool, ToolError, ToolManifest, ToolRegistry

STR = {"type": "string"}
INT = {"type": "integer"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_tool(name: str, fn: Any, inputs: dict[str, Any], outputs: dict[str, Any], permissions: list[str] | None = None) -> Tool:
    manifest = ToolManifest(
        name,
        inputs=[Port(n, s) for n, s in inputs.items()],
        outputs=[Port(n, s) for n, s in outputs.items()],
        permissions=permissions or [],
    )
    return Tool(manifest, fn)


def text_tools(log: list[str]) -> ToolRegistry:
    async def shout(text: str) -> str:
        log.append(f"shout {text}")
        return text.upper()

    async def count(text: str) -> int:
        log.append(f"count {text}")
        return len(text)

    async def broken(text: str) -> str:
        log.append("broken")
        raise RuntimeError("the summariser is down")

    async def plain(text: str) -> str:
        log.append("plain")
        return f"plain:{text}"

    return ToolRegistry(
        [
            make_tool("shout", shout, {"text": STR}, {"loud": STR}),
            make_tool("count", count, {"text": STR}, {"n": INT}),
            make_tool("broken", broken, {"text": STR}, {"loud": STR}),
            make_tool("plain", plain, {"text": STR}, {"loud": STR}),
        ]
    )


YAML = """\
version: 1
pipelines:
  report:                      # uses a pipeline defined further down
    inputs: {words: {type: string}}
    outputs: {loud: s.loud, n: n.n}
    steps:
      s:
        pipeline: summarize.pipeline
        inputs: {text: input.words}
      n:
        tool: count
        inputs: {text: s.loud}
  summarize.pipeline:
    inputs: {text: {type: string}}
    outputs: {loud: up.loud}
    steps:
      up: {tool: shout}
"""


# -- running -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_yaml_step_runs_a_dotted_pipeline_defined_later_in_the_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(YAML)
    log: list[str] = []
    orch = Orchestrator(text_tools(log))
    loaded = orch.load_pipelines(tmp_path / "p.yaml")
    assert [p.name for p in loaded] == ["summarize.pipeline", "report"]  # each after the one it runs
    result = await orch.execute("report", {"words": "hello"})
    assert result.outputs == {"loud": "HELLO", "n": 5}
    assert result.steps["s"].tool == "summarize.pipeline"
    assert result.steps["s"].outputs == {"loud": "HELLO"}
    assert log == ["shout hello", "count HELLO"]


@pytest.mark.anyio
async def test_flow_pipeline_node_with_undeclared_inputs_takes_what_the_pipeline_reads() -> None:
    log: list[str] = []
    orch = Orchestrator(text_tools(log))
    inner = Flow("text.shout").add_tool_node("up", tool="shout", inputs={"text": "input.words"})
    orch.register_pipeline(inner)
    outer = Flow("outer").add_pipeline_node("a", "text.shout", inputs={"words": {"value": "hi"}})
    orch.register_pipeline(outer)
    result = await orch.execute("outer")
    # undeclared outputs: one object per step of the nested pipeline
    assert result.outputs == {"a": {"up": {"loud": "HI"}}}


def test_node_manifest_declared_and_derived_ports() -> None:
    registry = text_tools([])
    declared = Flow("d", inputs={"text": STR}, outputs={"loud": "up.loud"}).add_tool_node("up", tool="shout")
    plan, issues = compile_pipeline(declared.to_pipeline(), registry)
    assert not issues and plan is not None
    m = node_manifest(plan)
    assert [(p.name, p.schema, p.is_required) for p in m.inputs] == [("text", STR, True)]
    assert [p.name for p in m.outputs] == ["loud"]

    derived = (
        Flow("r")
        .add_tool_node("a", tool="shout", inputs={"text": "input.first"})
        .add_tool_node("b", tool="count")  # `text` unmapped: fed by input.text
    )
    plan, issues = compile_pipeline(derived.to_pipeline(), registry)
    assert not issues and plan is not None
    m = node_manifest(plan)
    assert [(p.name, p.schema, p.is_required) for p in m.inputs] == [("first", {}, False), ("text", {}, False)]
    assert [(p.name, p.required) for p in m.outputs] == [("a", False), ("b", False)]

    whole = Flow("w").add_tool_node("a", tool="shout", inputs={"text": "to_string(input)"})
    plan, issues = compile_pipeline(whole.to_pipeline(), registry)
    assert not issues and plan is not None and plan.reads is None


@pytest.mark.anyio
async def test_a_failing_nested_pipeline_falls_back_to_a_tool_after_its_retries() -> None:
    log: list[str] = []
    orch = Orchestrator(text_tools(log))
    orch.register_pipeline(Flow("inner", inputs={"text": STR}, outputs={"loud": "b.loud"}).add_tool_node("b", tool="broken"))
    orch.register_pipeline(
        Flow("outer", inputs={"text": STR}).add_pipeline_node("s", "inner", retry=2, fallback=["plain"])
    )
    result = await orch.execute("outer", {"text": "x"})
    assert log == ["broken", "broken", "plain"]
    assert result.steps["s"].tool == "plain"
    assert result.steps["s"].attempts == 3
    assert result.outputs == {"s": {"loud": "plain:x"}}


@pytest.mark.anyio
async def test_a_nested_failure_names_both_pipelines_and_chains_the_cause() -> None:
    orch = Orchestrator(text_tools([]))
    orch.register_pipeline(Flow("inner", inputs={"text": STR}, outputs={"loud": "b.loud"}).add_tool_node("b", tool="broken"))
    orch.register_pipeline(Flow("outer", inputs={"text": STR}).add_pipeline_node("s", "inner"))
    with pytest.raises(PipelineError) as info:
        await orch.execute("outer", {"text": "x"})
    err = info.value
    assert err.code == "STEP_FAILED" and err.pipeline == "outer" and err.step == "s"
    assert "pipeline 'inner': step 'b'" in err.message
    inner = err.__cause__
    assert isinstance(inner, PipelineError) and inner.pipeline == "inner"
    assert "the summariser is down" in str(inner.__cause__.__cause__ if inner.__cause__ else "")


@pytest.mark.anyio
async def test_bad_inputs_to_a_nested_pipeline_are_not_retried() -> None:
    log: list[str] = []
    orch = Orchestrator(text_tools(log))
    orch.register_pipeline(Flow("inner", inputs={"text": {"type": "string", "minLength": 3}}).add_tool_node("u", tool="shout"))
    orch.register_pipeline(Flow("outer", inputs={"t": STR}).add_pipeline_node("s", "inner", inputs={"text": "input.t"}, retry=5))
    with pytest.raises(PipelineError) as info:
        await orch.execute("outer", {"t": "ab"})
    assert info.value.attempts == 1
    assert isinstance(info.value.__cause__, ToolError) and info.value.__cause__.code == "TOOL_BAD_INPUT"
    assert log == []


@pytest.mark.anyio
async def test_the_node_timeout_cancels_the_nested_steps() -> None:
    cancelled = anyio.Event()
    started = anyio.Event()

    async def stuck(text: str) -> str:
        started.set()
        try:
            await anyio.Event().wait()  # nobody sets it
        finally:
            cancelled.set()
        return text  # pragma: no cover

    registry = ToolRegistry([make_tool("stuck", stuck, {"text": STR}, {"loud": STR})])
    orch = Orchestrator(registry)
    orch.register_pipeline(Flow("inner", inputs={"text": STR}).add_tool_node("x", tool="stuck"))
    orch.register_pipeline(Flow("outer", inputs={"text": STR}).add_pipeline_node("s", "inner", timeout=0.05))
    with pytest.raises(PipelineError) as info:
        await orch.execute("outer", {"text": "x"})
    assert info.value.code == "STEP_TIMEOUT"
    assert started.is_set() and cancelled.is_set()


@pytest.mark.anyio
async def test_the_permit_is_asked_for_tools_inside_the_nested_pipeline() -> None:
    asked: list[str] = []

    async def wipe(text: str) -> str:  # pragma: no cover - denied
        return text

    def permit(request: PermissionRequest) -> bool:
        asked.append(f"{request.tool}:{','.join(request.permissions)}")
        return False

    registry = ToolRegistry([make_tool("wipe", wipe, {"text": STR}, {"loud": STR}, ["fs.write"])])
    orch = Orchestrator(registry, permit=permit)
    orch.register_pipeline(Flow("inner", inputs={"text": STR}).add_tool_node("w", tool="wipe"))
    orch.register_pipeline(Flow("outer", inputs={"text": STR}).add_pipeline_node("s", "inner", retry=3))
    with pytest.raises(PipelineError) as info:
        await orch.execute("outer", {"text": "x"})
    assert asked == ["wipe:fs.write"] * 3  # the nested denial is the nested step's; the node retries it
    assert "TOOL_PERMISSION_DENIED" in repr(info.value.__cause__.__cause__)  # type: ignore[union-attr]


# -- checks ----------------------------------------------------------------------------


def issues_of(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    _found, issues = read_pipelines(path, text_tools([]))
    return [f"{i.path} @{i.line}: {i.message}" for i in issues]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "version: 1\npipelines:\n  a:\n    steps:\n      s: {pipeline: summarise}\n"
            "  summarize:\n    steps:\n      u: {tool: shout}\n",
            "pipelines.a.steps.s.pipeline @5: unknown pipeline 'summarise' (did you mean 'summarize'?)",
            id="unknown-pipeline",
        ),
        pytest.param(
            "version: 1\npipelines:\n  a:\n    steps:\n      s: {pipeline: a}\n",
            "pipelines.a.steps.s.pipeline @5: pipeline 'a' cannot run itself",
            id="itself",
        ),
        pytest.param(
            "version: 1\npipelines:\n  a:\n    steps:\n      s: {pipeline: b.c}\n"
            "  b.c:\n    steps:\n      t: {pipeline: a}\n",
            "pipelines.b.c.steps.t.pipeline @8: pipelines run each other in a cycle: a -> b.c -> a",
            id="cycle",
        ),
        pytest.param(
            "version: 1\npipelines:\n  a:\n    steps:\n      s: {pipeline: b, tool: shout}\n"
            "  b:\n    steps:\n      u: {tool: shout}\n",
            "pipelines.a.steps.s @5: step 's' has `tool` and `pipeline`; pick one",
            id="tool-and-pipeline",
        ),
        pytest.param(
            "version: 1\npipelines:\n  a:\n    steps:\n      s: {pipeline: b, inputs: {text: {value: 3}}}\n"
            "  b:\n    inputs: {text: {type: string}}\n    steps:\n      u: {tool: shout}\n",
            "the literal 3 does not fit",
            id="io-check-through-the-node",
        ),
        pytest.param(
            "version: 1\npipelines:\n  a:\n    steps:\n      s: {pipeline: b}\n      n: {tool: count, inputs: {text: s.nope}}\n"
            "  b:\n    inputs: {text: {type: string}}\n    outputs: {loud: u.loud}\n    steps:\n      u: {tool: shout}\n",
            "reads output 'nope' of step 's', but pipeline 'b' outputs only 'loud'",
            id="unknown-output-of-the-node",
        ),
    ],
)
def test_nesting_errors_name_file_field_and_line(text: str, expected: str, tmp_path: Path) -> None:
    found = issues_of(text, tmp_path)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    ("name", "ok"),
    [("summarize.pipeline", True), ("a.b-c.d_e", True), ("plain", True), ("a..b", False), (".a", False),
     ("a.", False), ("1a", False), ("a b", False), ("a.1", False)],
)
def test_pipeline_names_are_dot_separated_parts(name: str, ok: bool) -> None:
    _plan, issues = compile_pipeline(Flow(name).add_tool_node("u", tool="shout").to_pipeline(), text_tools([]))
    assert (not issues) is ok, issues
    if not ok:
        assert "in parts separated by dots" in issues[0].message


def test_a_pipeline_must_be_registered_before_a_step_runs_it() -> None:
    orch = Orchestrator(text_tools([]))
    with pytest.raises(ManifestError) as info:
        orch.register_pipeline(Flow("outer").add_pipeline_node("s", "inner"))
    assert "unknown pipeline 'inner'; known: none" in str(info.value)
    orch.register_pipeline(Flow("inner", inputs={"text": STR}).add_tool_node("u", tool="shout"))
    orch.register_pipeline(Flow("outer", inputs={"text": STR}).add_pipeline_node("s", "inner"))
    assert orch.names() == ["inner", "outer"]


def test_load_pipelines_runs_against_pipelines_registered_before(tmp_path: Path) -> None:
    orch = Orchestrator(text_tools([]))
    orch.register_pipeline(Flow("base", inputs={"text": STR}, outputs={"loud": "u.loud"}).add_tool_node("u", tool="shout"))
    (tmp_path / "p.yaml").write_text(
        "version: 1\npipelines:\n  top:\n    inputs: {text: {type: string}}\n    steps:\n      s: {pipeline: base}\n"
    )
    assert [p.name for p in orch.load_pipelines(tmp_path / "p.yaml")] == ["top"]
    assert anyio.run(orch.call_pipeline, "top", {"text": "q"}) == {"s": {"loud": "Q"}}
