"""Pipelines: the DSL (YAML, Flow, classes), the load-time checks and the build-time
IO check, and the orchestrator (sequence, parallel all / first, timeout -> fallback,
retry, fallback lists, conditions, cancellation, structured errors) on asyncio and trio.

No timed assertions: tools synchronise on events; the only clocks are the step
timeouts under test (0.05 s against a tool that sleeps forever).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from modelwire._errors import InvalidRequestError, ManifestError, NotFoundError
from modelwire.pipelines import (
    Branch,
    FallbackTool,
    Flow,
    Pipeline,
    PipelineError,
    RetryPolicy,
    Step,
    compile_pipeline,
    load_pipelines,
    parse_pipelines,
    read_pipelines,
)
from modelwire.pipelines._iocheck import schema_problems
from modelwire.pipelines._orchestrator import Orchestrator, PipelineResult
from modelwire.tools import (
    AgentContext,
    Port,
    ResourceSpec,
    Tool,
    ToolError,
    ToolManifest,
    ToolRegistry,
)
from modelwire.tools._resources import ResourceManager, ResourcePool

ROOT = Path(__file__).resolve().parents[1]
INT = {"type": "integer"}
STR = {"type": "string"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_tool(
    name: str,
    fn: Callable[..., Any],
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    *,
    formats: dict[str, str] | None = None,
    resources: tuple[ResourceSpec, ...] = (),
) -> Tool:
    formats = formats or {}
    manifest = ToolManifest(
        name,
        inputs=[Port(n, s, format=formats.get(n, "json")) for n, s in (inputs or {}).items()],  # type: ignore[arg-type]
        outputs=[Port(n, s, format=formats.get(n, "json")) for n, s in (outputs or {}).items()],  # type: ignore[arg-type]
        resources=list(resources),
    )
    return Tool(manifest, fn)


class Calls:
    """Records tool calls, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def count(self, name: str) -> int:
        return self.log.count(name)


def arithmetic(calls: Calls) -> ToolRegistry:
    async def double(n: int) -> int:
        calls.log.append("double")
        return n * 2

    def inc(n: int) -> int:  # a sync tool: runs in a worker thread
        calls.log.append("inc")
        return n + 1

    async def fmt(n: int, prefix: str = "n=") -> str:
        calls.log.append("fmt")
        return f"{prefix}{n}"

    return ToolRegistry(
        [
            make_tool("double", double, {"n": INT}, {"n": INT}),
            make_tool("inc", inc, {"n": INT}, {"n": INT}),
            make_tool("fmt", fmt, {"n": INT, "prefix": {"type": "string", "default": "n="}}, {"text": STR}),
        ]
    )


async def run(orch: Orchestrator, pipeline: Pipeline | Flow, inputs: dict[str, Any] | None = None) -> PipelineResult:
    orch.register_pipeline(pipeline)
    name = pipeline.name
    return await orch.execute(name, inputs or {})


class ProbePool(ResourcePool):
    """A resource that logs what the manager does with it."""

    kind = "probe"

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def acquire(self) -> Any:
        self.log.append("acquire")
        return "conn"

    async def release(self, obj: Any, outcome: str) -> None:
        self.log.append(f"release {outcome}")

    async def aclose(self) -> None:
        self.log.append("close")


def probe_registry(log: list[str], tools: list[Tool]) -> ToolRegistry:
    manager = ResourceManager()
    manager.register_kind("probe", lambda options: ProbePool(log))
    return ToolRegistry(tools, resources=manager)


def issue_text(exc: ManifestError) -> str:
    return "\n".join(str(i) for i in exc.issues)


# -- running: sequence, mappings, outputs ---------------------------------------------


@pytest.mark.anyio
async def test_sequential_steps_feed_each_other() -> None:
    calls = Calls()
    orch = Orchestrator(arithmetic(calls))
    flow = (
        Flow("seq", inputs={"n": INT}, outputs={"text": "c.text", "doubled": "a.n"})
        .add_tool_node("a", tool="double")  # n <- input.n by name
        .add_tool_node("b", tool="inc")
        .add_tool_node("c", tool="fmt", inputs={"prefix": {"value": "result: "}})
        .connect("a", "b")
        .connect("b", "c")
    )
    result = await run(orch, flow, {"n": 4})
    assert result.outputs == {"text": "result: 9", "doubled": 8}
    assert calls.log == ["double", "inc", "fmt"]
    assert [(s.name, s.status, s.tool, s.attempts) for s in result.steps.values()] == [
        ("a", "ok", "double", 1), ("b", "ok", "inc", 1), ("c", "ok", "fmt", 1),
    ]
    assert await orch.call_pipeline("seq", {"n": 1}) == {"text": "result: 3", "doubled": 2}


@pytest.mark.anyio
async def test_expressions_literals_and_default_outputs() -> None:
    calls = Calls()
    orch = Orchestrator(arithmetic(calls))
    pipeline = Pipeline(
        "expr",
        steps=[
            Step("a", tool="double", inputs={"n": 5}),
            Step("b", tool="inc", inputs={"n": "a.n"}),
            # null leaves the port out, so its default applies
            Step("c", tool="fmt", inputs={"n": "sum([a.n, b.n])", "prefix": "input.missing"}),
        ],
    )
    result = await run(orch, pipeline)
    assert result.outputs == {"a": {"n": 10}, "b": {"n": 11}, "c": {"text": "n=21"}}


@pytest.mark.anyio
async def test_agent_context_is_shared_by_the_steps_of_one_run() -> None:
    async def put(value: str, ctx: Any) -> str:
        ctx.agent.session().set("seen", value)
        return value

    async def get(value: str, ctx: Any) -> str:
        return f"{ctx.agent.session().get('seen')}+{ctx.agent.variables()['suffix']}"

    registry = ToolRegistry([
        make_tool("put", put, {"value": STR}, {"value": STR}),
        make_tool("get", get, {"value": STR}, {"value": STR}),
    ])
    orch = Orchestrator(registry)
    orch.register_pipeline(Flow("ctx").add_tool_node("a", tool="put").add_tool_node("b", tool="get").connect("a", "b"))
    ctx = AgentContext("s1", variables={"suffix": "v"})
    assert await orch.call_pipeline("ctx", {"value": "x"}, ctx) == {"a": {"value": "x"}, "b": {"value": "x+v"}}
    assert ctx.session().get("seen") == "x"


# -- parallel -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_parallel_all_success_collects_every_branch() -> None:
    calls = Calls()
    orch = Orchestrator(arithmetic(calls))
    flow = (
        Flow("par", inputs={"n": INT}, outputs={"sum": "sum([both.d.n, both.i.n])"})
        .add_parallel_node("both", {"d": "double", "i": "inc"}, mode="all", inputs={"n": "input.n"})
    )
    result = await run(orch, flow, {"n": 10})
    assert result.outputs == {"sum": 31}
    assert result.steps["both"].outputs == {"d": {"n": 20}, "i": {"n": 11}}
    assert result.steps["both"].attempts == 2
    assert sorted(calls.log) == ["double", "inc"]


@pytest.mark.anyio
async def test_parallel_all_a_failing_branch_cancels_the_others() -> None:
    started = anyio.Event()
    seen: list[str] = []

    async def hang(q: str) -> str:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        return q

    async def boom(q: str) -> str:
        await started.wait()
        raise ValueError("no luck")

    orch = Orchestrator(ToolRegistry([make_tool("hang", hang, {"q": STR}, {"r": STR}), make_tool("boom", boom, {"q": STR}, {"r": STR})]))
    flow = Flow("par").add_parallel_node("s", {"slow": "hang", "bad": "boom"}, mode="all", inputs={"q": "input.q"})
    with pytest.raises(PipelineError) as info:
        await run(orch, flow, {"q": "x"})
    assert seen == ["cancelled"]
    err = info.value
    assert (err.code, err.step, err.branch, err.tool, err.attempts) == ("STEP_FAILED", "s", "bad", "boom", 1)
    assert isinstance(err.__cause__, ToolError) and isinstance(err.__cause__.__cause__, ValueError)


@pytest.mark.anyio
async def test_parallel_first_success_wins_and_cancels_the_losers() -> None:
    loser_started = anyio.Event()
    seen: list[str] = []

    async def slow(q: str) -> str:
        loser_started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("slow cancelled")
            raise
        return "slow"

    async def fast(q: str) -> str:
        await loser_started.wait()
        return f"fast:{q}"

    async def broken(q: str) -> str:
        raise RuntimeError("down")

    registry = ToolRegistry([
        make_tool("slow", slow, {"q": STR}, {"answer": STR}),
        make_tool("fast", fast, {"q": STR}, {"answer": STR}),
        make_tool("broken", broken, {"q": STR}, {"answer": STR}),
    ])
    orch = Orchestrator(registry)
    flow = (
        Flow("race", outputs={"answer": "search.answer"})
        .add_parallel_node("search", {"a": "broken", "b": "slow", "c": "fast"}, mode="first", inputs={"q": "input.q"})
    )
    result = await run(orch, flow, {"q": "x"})
    assert result.outputs == {"answer": "fast:x"}
    assert (result.steps["search"].branch, result.steps["search"].tool) == ("c", "fast")
    assert seen == ["slow cancelled"]


@pytest.mark.anyio
async def test_parallel_first_every_branch_failing_is_one_error() -> None:
    async def broken(q: str) -> str:
        raise RuntimeError(f"down {q}")

    registry = ToolRegistry([make_tool(n, broken, {"q": STR}, {"answer": STR}) for n in ("x", "y")])
    orch = Orchestrator(registry)
    flow = Flow("race").add_parallel_node("s", {"a": "x", "b": "y"}, mode="first", inputs={"q": "input.q"}, retry=2)
    with pytest.raises(PipelineError) as info:
        await run(orch, flow, {"q": "now"})
    err = info.value
    assert (err.code, err.step, err.attempts) == ("BRANCHES_FAILED", "s", 4)
    assert sorted(f.branch for f in err.failures) == ["a", "b"]
    assert all(f.code == "STEP_FAILED" for f in err.failures)
    assert err.__cause__ in err.failures


# -- timeouts, retries, fallbacks ---------------------------------------------------------


def hanging(seen: list[str], name: str) -> Callable[..., Any]:
    async def fn(q: str) -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append(f"{name} cancelled")
            raise
        return q

    return fn


@pytest.mark.anyio
async def test_a_step_timeout_leads_to_the_fallback_step() -> None:
    seen: list[str] = []

    async def cached(q: str) -> str:
        return f"cached:{q}"

    registry = ToolRegistry([
        make_tool("live", hanging(seen, "live"), {"q": STR}, {"answer": STR}),
        make_tool("cache", cached, {"q": STR}, {"answer": STR}),
    ])
    orch = Orchestrator(registry)
    flow = Flow("t").add_tool_node("get", tool="live", inputs={"q": "input.q"}, timeout=0.05, fallback=["cache"])
    result = await run(orch, flow, {"q": "k"})
    assert result.outputs == {"get": {"answer": "cached:k"}}
    assert (result.steps["get"].tool, result.steps["get"].attempts) == ("cache", 2)
    assert seen == ["live cancelled"]


@pytest.mark.anyio
async def test_a_timeout_without_fallback_is_step_timeout() -> None:
    seen: list[str] = []
    orch = Orchestrator(ToolRegistry([make_tool("live", hanging(seen, "live"), {"q": STR}, {"answer": STR})]))
    flow = Flow("t").add_tool_node("get", tool="live", inputs={"q": "input.q"}, timeout=0.05, retry=2)
    with pytest.raises(PipelineError) as info:
        await run(orch, flow, {"q": "k"})
    err = info.value
    assert (err.code, err.step, err.tool, err.attempts, err.pipeline) == ("STEP_TIMEOUT", "get", "live", 2, "t")
    assert isinstance(err.__cause__, ToolError) and err.__cause__.code == "TOOL_TIMEOUT"
    assert seen == ["live cancelled", "live cancelled"]


def flaky(calls: Calls, name: str, failures: int, exc: type[Exception] = ConnectionError) -> Callable[..., Any]:
    async def fn(q: str) -> str:
        calls.log.append(name)
        if calls.count(name) <= failures:
            raise exc(f"{name} failure {calls.count(name)}")
        return f"{name}:{q}"

    return fn


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("attempts", "failures", "ok", "calls_made"),
    [
        pytest.param(1, 0, True, 1, id="no-retry-needed"),
        pytest.param(3, 2, True, 3, id="succeeds-on-the-last-try"),
        pytest.param(3, 3, False, 3, id="every-try-fails"),
        pytest.param(5, 1, True, 2, id="stops-after-the-first-success"),
        pytest.param(1, 1, False, 1, id="one-try-only"),
    ],
)
async def test_retry_counts(attempts: int, failures: int, ok: bool, calls_made: int) -> None:
    calls = Calls()
    orch = Orchestrator(ToolRegistry([make_tool("svc", flaky(calls, "svc", failures), {"q": STR}, {"a": STR})]))
    retry = RetryPolicy(attempts=attempts, backoff="fixed", delay=0.001)
    flow = Flow("r").add_tool_node("s", tool="svc", inputs={"q": "input.q"}, retry=retry)
    if ok:
        result = await run(orch, flow, {"q": "x"})
        assert result.steps["s"].attempts == calls_made
    else:
        with pytest.raises(PipelineError) as info:
            await run(orch, flow, {"q": "x"})
        assert (info.value.code, info.value.attempts) == ("STEP_FAILED", attempts)
        cause = info.value.__cause__
        assert isinstance(cause, ToolError) and cause.code == "TOOL_FAILED"
        assert isinstance(cause.__cause__, ConnectionError)
    assert calls.count("svc") == calls_made


@pytest.mark.parametrize(
    ("policy", "waits"),
    [
        pytest.param(RetryPolicy(5, "fixed", delay=0.5), [0.5, 0.5, 0.5, 0.5], id="fixed"),
        pytest.param(RetryPolicy(5, "exponential", delay=0.1, factor=2), [0.1, 0.2, 0.4, 0.8], id="exponential"),
        pytest.param(RetryPolicy(5, "exponential", delay=1, factor=3, max_delay=5), [1, 3, 5, 5], id="capped"),
        pytest.param(RetryPolicy(3), [0.0, 0.0], id="no-delay"),
    ],
)
def test_backoff_waits(policy: RetryPolicy, waits: list[float]) -> None:
    assert [policy.wait_before(n) for n in range(2, policy.attempts + 1)] == pytest.approx(waits)


@pytest.mark.anyio
async def test_bad_inputs_are_not_retried_bad_outputs_are() -> None:
    calls = Calls()

    async def lies(q: str) -> Any:
        calls.log.append("lies")
        return 42  # the manifest promises a string

    orch = Orchestrator(arithmetic(calls))
    orch.registry.register(make_tool("lies", lies, {"q": STR}, {"a": STR}))
    # undeclared pipeline inputs: nothing to check at registration, so it fails at the call
    orch.register_pipeline(Flow("bad_in").add_tool_node("s", tool="double", retry=3))
    with pytest.raises(PipelineError) as info:
        await orch.execute("bad_in", {"n": "three"})
    cause = info.value.__cause__
    assert isinstance(cause, ToolError)
    assert (cause.code, cause.port, cause.attempts, info.value.attempts) == ("TOOL_BAD_INPUT", "n", 1, 1)
    assert calls.log == []

    orch.register_pipeline(Flow("bad_out").add_tool_node("s", tool="lies", retry=2))
    with pytest.raises(PipelineError) as info:
        await orch.execute("bad_out", {"q": "x"})
    cause = info.value.__cause__
    assert isinstance(cause, ToolError)
    assert (cause.code, cause.port, cause.step, info.value.attempts) == ("TOOL_BAD_OUTPUT", "a", "s", 2)
    assert calls.log == ["lies", "lies"]


@pytest.mark.anyio
async def test_fallback_list_is_tried_in_order() -> None:
    calls = Calls()
    registry = ToolRegistry([
        make_tool("p", flaky(calls, "p", 9), {"q": STR}, {"a": STR}),
        make_tool("f1", flaky(calls, "f1", 9), {"q": STR}, {"a": STR}),
        make_tool("f2", flaky(calls, "f2", 0), {"q": STR}, {"a": STR}),
        make_tool("f3", flaky(calls, "f3", 0), {"q": STR}, {"a": STR}),
    ])
    orch = Orchestrator(registry)
    flow = Flow("fb").add_tool_node(
        "s", tool="p", inputs={"q": "input.q"}, retry=2,
        fallback=[FallbackTool("f1", retry=1), "f2", "f3"],
    )
    result = await run(orch, flow, {"q": "x"})
    assert calls.log == ["p", "p", "f1", "f2"]
    assert result.outputs == {"s": {"a": "f2:x"}}
    assert (result.steps["s"].tool, result.steps["s"].attempts) == ("f2", 4)


@pytest.mark.anyio
async def test_every_fallback_failing_names_them_all() -> None:
    calls = Calls()
    registry = ToolRegistry([
        make_tool("p", flaky(calls, "p", 9), {"q": STR}, {"a": STR}),
        make_tool("f1", flaky(calls, "f1", 9, KeyError), {"q": STR}, {"a": STR}),
    ])
    orch = Orchestrator(registry)
    flow = Flow("fb").add_tool_node("s", tool="p", inputs={"q": "input.q"}, fallback=["f1"])
    with pytest.raises(PipelineError) as info:
        await run(orch, flow, {"q": "x"})
    err = info.value
    assert (err.code, err.step, err.tool, err.attempts) == ("STEP_FAILED", "s", "f1", 2)
    assert [(f.tool, f.code) for f in err.failures] == [("p", "TOOL_FAILED"), ("f1", "TOOL_FAILED")]
    assert isinstance(err.__cause__, ToolError) and isinstance(err.__cause__.__cause__, KeyError)
    assert "pipeline=fb" in str(err) and "step=s" in str(err) and "tried p, f1" in str(err)
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), copy.code, copy.step, copy.attempts, str(copy)) == (PipelineError, err.code, "s", 2, str(err))


@pytest.mark.anyio
async def test_a_fallback_with_its_own_inputs() -> None:
    async def by_id(item_id: int) -> str:
        raise LookupError(item_id)

    async def by_name(name: str) -> str:
        return name.upper()

    registry = ToolRegistry([
        make_tool("by_id", by_id, {"item_id": INT}, {"label": STR}),
        make_tool("by_name", by_name, {"name": STR}, {"label": STR}),
    ])
    orch = Orchestrator(registry)
    flow = Flow("fb", inputs={"item_id": INT, "name": STR}).add_tool_node(
        "s", tool="by_id", fallback=[FallbackTool("by_name", inputs={"name": "input.name"})]
    )
    assert (await run(orch, flow, {"item_id": 3, "name": "bolt"})).outputs == {"s": {"label": "BOLT"}}


# -- conditions --------------------------------------------------------------------------------


CONDITIONAL = """
version: 1
pipelines:
  cond:
    inputs:
      n: {type: integer}
    outputs:
      text: "c.text"
    steps:
      big:
        tool: double
        when: "input.n > `10`"
      small:
        tool: inc
        when: "input.n <= `10`"
      after_big:
        tool: inc
        inputs: {n: big.n}
      c:
        tool: fmt
        on_skipped: run
        inputs: {n: "big.n || small.n"}
"""


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("n", "ran", "text"),
    [
        pytest.param(50, {"big", "after_big", "c"}, "n=100", id="big"),
        pytest.param(3, {"small", "c"}, "n=4", id="small"),
    ],
)
async def test_conditions_skip_steps_and_their_dependants(write: Any, n: int, ran: set[str], text: str) -> None:
    calls = Calls()
    registry = arithmetic(calls)
    orch = Orchestrator(registry)
    orch.load_pipelines(write("cond.yaml", CONDITIONAL))
    result = await orch.execute("cond", {"n": n})
    assert result.outputs == {"text": text}
    assert {s.name for s in result.steps.values() if s.status == "ok"} == ran
    skipped = {s.name for s in result.steps.values() if s.status == "skipped"}
    assert skipped == {"big", "small", "after_big", "c"} - ran


@pytest.mark.anyio
async def test_a_failing_expression_is_a_structured_error() -> None:
    orch = Orchestrator(arithmetic(Calls()))
    orch.register_pipeline(Pipeline("x", steps=[Step("a", tool="double", inputs={"n": "from_json(input.raw)"})]))
    with pytest.raises(PipelineError) as info:
        await orch.execute("x", {"raw": "{not json"})
    assert (info.value.code, info.value.step) == ("EXPRESSION_FAILED", "a")
    assert info.value.__cause__ is not None


# -- cancellation ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancelling_the_pipeline_cancels_its_steps() -> None:
    started = anyio.Event()
    seen: list[str] = []

    async def hang(q: str) -> str:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        return q

    log: list[str] = []
    tool = make_tool("hang", hang, {"q": STR}, {"a": STR}, resources=(ResourceSpec("db", "probe"),))
    orch = Orchestrator(probe_registry(log, [tool]))
    orch.register_pipeline(
        Flow("c").add_parallel_node("s", {"one": "hang", "two": "hang"}, inputs={"q": "input.q"})
    )
    finished: list[str] = []

    async def execute() -> None:
        await orch.execute("c", {"q": "x"})
        finished.append("yes")

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(execute)
            await started.wait()
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
    assert scope.cancelled_caught
    assert seen == ["cancelled", "cancelled"]
    assert log == ["acquire", "acquire", "release cancelled", "release cancelled"]
    assert finished == []


@pytest.mark.anyio
async def test_a_failing_step_cancels_its_running_siblings() -> None:
    seen: list[str] = []
    started = anyio.Event()

    async def hang(q: str) -> str:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        return q

    async def boom(q: str) -> str:
        await started.wait()
        raise ValueError("x")

    registry = ToolRegistry([make_tool("hang", hang, {"q": STR}, {"a": STR}), make_tool("boom", boom, {"q": STR}, {"a": STR})])
    orch = Orchestrator(registry)
    flow = Flow("f").add_tool_node("h", tool="hang").add_tool_node("b", tool="boom").add_tool_node("after", tool="hang", inputs={"q": "h.a"})
    with pytest.raises(PipelineError) as info:
        await run(orch, flow, {"q": "x"})
    assert info.value.step == "b"
    assert seen == ["cancelled"]


@pytest.mark.anyio
async def test_resources_are_acquired_per_call_and_released_on_failure() -> None:
    log: list[str] = []

    async def reads(key: str, ctx: Any) -> str:
        log.append(f"call {ctx.resources['db']}")
        if key == "bad":
            raise KeyError(key)
        return key

    tool = make_tool("reads", reads, {"key": STR}, {"v": STR}, resources=(ResourceSpec("db", "probe"),))
    registry = probe_registry(log, [tool])
    orch = Orchestrator(registry)
    orch.register_pipeline(Flow("r").add_tool_node("s", tool="reads", retry=2))
    assert await orch.call_pipeline("r", {"key": "k"}) == {"s": {"v": "k"}}
    with pytest.raises(PipelineError):
        await orch.call_pipeline("r", {"key": "bad"})
    await registry.resources.aclose()
    assert log == ["acquire", "call conn", "release ok"] + ["acquire", "call conn", "release failed"] * 2 + ["close"]


@pytest.mark.anyio
async def test_a_real_file_cache_shared_by_two_steps(tmp_path: Path) -> None:
    cache = ResourceSpec("cache", "file_cache", {"dir": str(tmp_path / "cache")})

    async def store(key: str, value: str, ctx: Any) -> str:
        await ctx.resources["cache"].aset(key, value)
        return key

    async def load(key: str, ctx: Any) -> str:
        return str(await ctx.resources["cache"].aget(key))

    registry = ToolRegistry([
        make_tool("store", store, {"key": STR, "value": STR}, {"key": STR}, resources=(cache,)),
        make_tool("load", load, {"key": STR}, {"value": STR}, resources=(cache,)),
    ])
    async with registry:
        orch = Orchestrator(registry)
        orch.register_pipeline(Flow("c", outputs={"v": "b.value"}).add_tool_node("a", tool="store").add_tool_node("b", tool="load").connect("a", "b"))
        assert await orch.call_pipeline("c", {"key": "k", "value": "hello"}) == {"v": "hello"}


# -- pipeline inputs and lookups -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("inputs", "code", "port"),
    [
        pytest.param({}, "PIPELINE_BAD_INPUT", "n", id="missing"),
        pytest.param({"n": "4"}, "PIPELINE_BAD_INPUT", "n", id="wrong-type"),
        pytest.param({"n": 4, "extra": 1}, "PIPELINE_BAD_INPUT", "extra", id="undeclared"),
    ],
)
async def test_pipeline_inputs_are_validated(inputs: dict[str, Any], code: str, port: str) -> None:
    orch = Orchestrator(arithmetic(Calls()))
    orch.register_pipeline(Flow("p", inputs={"n": INT}).add_tool_node("a", tool="double"))
    with pytest.raises(PipelineError) as info:
        await orch.execute("p", inputs)
    assert (info.value.code, info.value.port, info.value.pipeline) == (code, port, "p")


@pytest.mark.anyio
async def test_input_defaults_unknown_and_duplicate_pipelines() -> None:
    orch = Orchestrator(arithmetic(Calls()))
    orch.register_pipeline(Flow("p", inputs={"n": {"type": "integer", "default": 2}}).add_tool_node("a", tool="double"))
    assert await orch.call_pipeline("p") == {"a": {"n": 4}}
    with pytest.raises(NotFoundError) as info:
        await orch.execute("nope")
    assert info.value.code == "PIPELINE_NOT_FOUND"
    with pytest.raises(InvalidRequestError) as dup:
        orch.register_pipeline(Flow("p").add_tool_node("a", tool="double"))
    assert dup.value.code == "PIPELINE_DUPLICATE"
    assert "p" in orch and orch.names() == ["p"] and orch.get_pipeline("p").name == "p"


# -- build-time IO check -------------------------------------------------------------------------


def obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


NUM = {"type": "number"}

IO_CASES = [
    pytest.param(STR, INT, "string is not integer", id="string-to-integer"),
    pytest.param(INT, NUM, None, id="integer-to-number"),
    pytest.param(NUM, INT, "number is not integer", id="number-to-integer"),
    pytest.param({"type": ["string", "null"]}, STR, "null is not string", id="nullable-to-required"),
    pytest.param({"enum": ["a", "b"]}, {"type": "string", "enum": ["a", "b", "c"]}, None, id="enum-subset"),
    pytest.param({"enum": ["a", "z"]}, {"enum": ["a", "b"]}, "'z' not among the input's values", id="enum-not-subset"),
    pytest.param({"const": 1}, {"enum": [1, 2]}, None, id="const-in-enum"),
    pytest.param({"enum": [True]}, {"enum": [1]}, "True not among the input's values", id="true-is-not-1"),
    pytest.param(STR, {"type": "string", "enum": ["a"]}, None, id="free-string-to-enum-left-to-call-time"),
    pytest.param(obj(["lat", "lon"], lat=NUM, lon=NUM), obj(["lat"], lat=NUM), None, id="object-fits"),
    pytest.param(obj(["lat"], lat=NUM), obj(["lat", "lon"], lat=NUM, lon=NUM),
                 "property 'lon' is required by the input but missing from the output", id="required-missing"),
    pytest.param(obj(["lat"], lat=NUM, lon=NUM), obj(["lat", "lon"]),
                 "property 'lon' is required by the input but optional in the output", id="required-optional"),
    pytest.param(obj(["lat"], lat=STR), obj(["lat"], lat=NUM), "at $.lat: string is not number", id="nested-type"),
    pytest.param(obj([], a=STR, b=STR), {**obj([], a=STR), "additionalProperties": False},
                 "property 'b' is not allowed", id="closed-object"),
    pytest.param({"type": "array", "items": STR}, {"type": "array", "items": INT}, "at $[*]: string is not integer", id="array-items"),
    pytest.param({}, INT, None, id="unknown-source-passes"),
    pytest.param(STR, {}, None, id="any-target"),
    pytest.param({"anyOf": [STR, INT]}, STR, "integer is not string", id="anyof-source"),
    pytest.param(INT, {"anyOf": [STR, NUM]}, None, id="anyof-target"),
    pytest.param({"type": "boolean"}, {"oneOf": [STR, NUM]}, "fits none of the input's oneOf alternatives", id="oneof-target-none"),
]


@pytest.mark.parametrize(("source", "target", "problem"), IO_CASES)
def test_schema_problems(source: Any, target: Any, problem: str | None) -> None:
    found = schema_problems(source, target)
    if problem is None:
        assert found == []
    else:
        assert any(problem in p for p in found), found


@pytest.mark.parametrize(("source", "target", "problem"), IO_CASES)
def test_io_check_at_registration_names_both_steps_and_ports(source: Any, target: Any, problem: str | None) -> None:
    registry = ToolRegistry([
        make_tool("producer", lambda: None, {}, {"out": source}),
        make_tool("consumer", lambda inp: None, {"inp": target}, {}),
    ])
    flow = Flow("io").add_tool_node("a", tool="producer").add_tool_node("b", tool="consumer", inputs={"inp": "a.out"})
    orch = Orchestrator(registry)
    if problem is None:
        orch.register_pipeline(flow)
        return
    with pytest.raises(ManifestError) as info:
        orch.register_pipeline(flow)
    assert info.value.code == "PIPELINE_INVALID"
    (issue,) = info.value.issues
    assert issue.path == "pipelines.io.steps.b.inputs.inp"
    assert "step 'b' input 'inp' (tool 'consumer') is fed by step 'a' output 'out' (tool 'producer')" in issue.message
    assert problem in issue.message


def registry_for_checks() -> ToolRegistry:
    def fn(**kw: Any) -> None:
        return None

    return ToolRegistry([
        make_tool("geo", fn, {"city": STR}, {"lat": NUM, "lon": NUM}),
        make_tool("geo2", fn, {"city": STR}, {"lat": STR}),
        make_tool("temp", fn, {"lat": NUM, "lon": NUM}, {"c": NUM}),
        make_tool("blob", fn, {}, {"data": {}}, formats={"data": "binary"}),
        make_tool("text", fn, {"data": {}}, {}, formats={"data": "text"}),
        make_tool("count", fn, {"n": INT}, {}),
        make_tool("many", fn, {"n": INT, "lat": NUM}, {}),
    ])


CHECK_CASES = [
    pytest.param(
        Flow("p").add_tool_node("g", tool="geo", inputs={"city": "input.city"}).add_tool_node("t", tool="temp", inputs={"lat": "g.lat", "lon": "g.lon"}),
        None, id="ok-explicit",
    ),
    pytest.param(Flow("p").add_tool_node("g", tool="geo").add_tool_node("t", tool="temp").connect("g", "t"), None, id="ok-wired-by-name"),
    pytest.param(
        Flow("p").add_tool_node("g", tool="geo", fallback=["geo2"]).add_tool_node("t", tool="temp").connect("g", "t"),
        "is fed by step 'g' output 'lat' (fallback tool 'geo2'): string is not number", id="fallback-output-checked",
    ),
    pytest.param(
        Flow("p").add_tool_node("g", tool="geo2").add_tool_node("t", tool="temp").connect("g", "t"),
        "step 't' input 'lat' (tool 'temp') is fed by step 'g' output 'lat' (tool 'geo2')", id="wired-by-name-type",
    ),
    pytest.param(
        Flow("p", inputs={"city": STR}).add_tool_node("t", tool="temp", inputs={"lat": "input.city", "lon": 1}),
        "step 't' input 'lat' (tool 'temp') is fed by pipeline input 'city': string is not number", id="pipeline-input-type",
    ),
    pytest.param(
        Flow("p", inputs={}).add_tool_node("g", tool="geo"),
        "input 'city' of tool 'geo' is not mapped", id="unmapped-port",
    ),
    pytest.param(
        Flow("p").add_tool_node("t", tool="temp", inputs={"lat": "`1`", "lon": {"value": "far"}}),
        "the literal 'far' does not fit", id="literal-type",
    ),
    pytest.param(
        Flow("p").add_tool_node("g", tool="geo").add_tool_node("t", tool="temp", inputs={"lat": "g.latitude", "lon": "g.lon"}),
        "reads output 'latitude' of step 'g', but tool 'geo' outputs only 'lat', 'lon'", id="unknown-output-port",
    ),
    pytest.param(
        Flow("p").add_tool_node("g", tool="geo", inputs={"town": "input.city"}),
        "tool 'geo' has no input 'town'", id="unknown-input-port",
    ),
    pytest.param(
        Flow("p").add_tool_node("b", tool="blob").add_tool_node("t", tool="text").connect("b", "t"),
        "format binary does not fit format text", id="binary-to-text",
    ),
    pytest.param(
        Flow("p").add_tool_node("a", tool="geo").add_tool_node("b", tool="geo").add_tool_node("m", tool="many", inputs={"n": 1}).connect("a", "m").connect("b", "m"),
        "input 'lat' of tool 'many' could come from steps 'a', 'b'", id="ambiguous-wiring",
    ),
    pytest.param(
        Flow("p").add_tool_node("g", tool="geo").add_parallel_node("w", {"x": "temp", "y": "temp"}, mode="all", inputs={"lat": "g.lat", "lon": "g.lon"}).add_tool_node("c", tool="count", inputs={"n": "w.x.c"}),
        "is fed by step 'w' output 'x.c' (branches of step 'w'): number is not integer", id="parallel-all-nested",
    ),
    pytest.param(
        Flow("p").add_tool_node("g", tool="geo").add_parallel_node("w", {"x": "geo", "y": "geo2"}, mode="first").add_tool_node("t", tool="temp", inputs={"lat": "w.lat", "lon": 0}),
        "(branch 'y' tool 'geo2'): string is not number", id="parallel-first-each-branch",
    ),
    pytest.param(Flow("p").add_tool_node("g", tool="gee"), "unknown tool 'gee' (did you mean 'geo'?)", id="unknown-tool"),
    pytest.param(Flow("p").add_tool_node("g", tool="geo", depends_on="nope"), "depends on unknown step 'nope'", id="unknown-dependency"),
    pytest.param(Flow("p").add_tool_node("g", tool="geo", inputs={"city": "gg.city"}), "refers to unknown step 'gg' (did you mean 'g'?)", id="unknown-reference"),
    pytest.param(Flow("p").add_tool_node("g", tool="geo", when="g.lat > `1`"), "has a cycle: g -> g", id="self-cycle"),
    pytest.param(Flow("p").add_tool_node("input", tool="geo"), "must be an identifier other than 'input'", id="reserved-name"),
    pytest.param(Flow("p").add_tool_node("g", tool="geo", timeout=0, retry=RetryPolicy(attempts=0)), "timeout must be a positive", id="bad-timing"),
    pytest.param(Flow("p").add_tool_node("g", tool="geo", when="g.lat >"), "invalid expression 'g.lat >'", id="bad-expression"),
    pytest.param(Flow("p").add_tool_node("g", tool="geo", inputs={"city": {"a": 1}}), "must be {value: ...}", id="bad-mapping"),
    pytest.param(Flow("p", outputs={"x": "nope.y"}).add_tool_node("g", tool="geo"), "refers to unknown step 'nope'", id="bad-output"),
]


@pytest.mark.parametrize(("flow", "problem"), CHECK_CASES)
def test_registration_checks(flow: Flow, problem: str | None) -> None:
    orch = Orchestrator(registry_for_checks())
    if problem is None:
        orch.register_pipeline(flow)
        return
    with pytest.raises(ManifestError) as info:
        orch.register_pipeline(flow)
    assert problem in issue_text(info.value)


def test_a_cycle_is_named_in_data_flow_order() -> None:
    flow = (
        Flow("p").add_tool_node("a", tool="geo").add_tool_node("b", tool="geo").add_tool_node("c", tool="geo")
        .connect("a", "b").connect("b", "c").connect("c", "a")
    )
    with pytest.raises(ManifestError) as info:
        flow.build()
    assert "has a cycle: a -> b -> c -> a" in issue_text(info.value)


def test_flow_chains_and_reports_bad_nodes() -> None:
    flow = Flow("p")
    assert flow.add_tool_node("a", tool="geo") is flow
    assert flow.connect("a", "b") is flow
    with pytest.raises(ManifestError) as info:
        flow.build()
    assert "connect('a', 'b'): no node named 'b'" in issue_text(info.value)
    with pytest.raises(InvalidRequestError) as dup:
        flow.add_tool_node("a", tool="geo")
    assert dup.value.code == "PIPELINE_INVALID"
    # without a registry, build checks the structure only; with one, the tools too
    ok = Flow("q").add_tool_node("a", tool="whatever")
    assert ok.build().steps[0].tool == "whatever"
    with pytest.raises(ManifestError):
        ok.build(registry_for_checks())
    plan, issues = compile_pipeline(ok.to_pipeline(), None)
    assert (plan, issues) == (None, [])


# -- YAML ----------------------------------------------------------------------------------------

GOOD = """\
version: 1
pipelines:
  weather:
    description: where and how warm
    inputs:
      city: {type: string}
    outputs:
      c: temps.c
    steps:
      where:
        tool: geo
        inputs: {city: input.city}
        timeout: 2.5
        retry: {attempts: 3, backoff: fixed, delay: 0.1}
        fallback: [geo, {tool: geo, timeout: 1}]
      temps:
        parallel:
          a: temp
          b: {tool: temp, fallback: [temp]}
        mode: first
        depends_on: where
"""


def test_yaml_pipelines_load_into_the_classes(write: Any) -> None:
    (pipeline,) = load_pipelines(write("p.yaml", GOOD), registry_for_checks())
    where = pipeline.step("where")
    assert where.retry == RetryPolicy(attempts=3, backoff="fixed", delay=0.1)
    assert where.fallback == (FallbackTool("geo"), FallbackTool("geo", timeout=1))
    temps = pipeline.step("temps")
    assert (temps.mode, temps.depends_on) == ("first", ("where",))
    assert temps.branches == (Branch("a", "temp"), Branch("b", "temp", fallback=(FallbackTool("temp"),)))
    assert pipeline.outputs == {"c": "temps.c"} and pipeline.inputs == {"city": STR}


def test_yaml_directories_and_duplicates(write: Any, tmp_path: Path) -> None:
    write("d/one.yaml", GOOD)
    write("d/two.yml", GOOD.replace("weather:", "other:"))
    names = sorted(p.name for p in load_pipelines(tmp_path / "d", registry_for_checks()))
    assert names == ["other", "weather"]
    write("d/three.yaml", GOOD)
    with pytest.raises(ManifestError) as info:
        load_pipelines([tmp_path / "d"], registry_for_checks())
    assert "pipeline 'weather' is defined twice" in issue_text(info.value)


YAML_ERRORS = [
    pytest.param(
        """\
version: 1
pipelines:
  p:
    steps:
      a:
        tool: geo
        depends_on: [b]
      b:
        tool: geo
        depends_on: [a]
""", 5, "pipelines.p.steps.a", "has a cycle: a -> b -> a", id="cycle",
    ),
    pytest.param(
        """\
version: 1
pipelines:
  p:
    steps:
      a:
        tool: geo
        depends_on: [a_step_that_is_not_there]
""", 7, "pipelines.p.steps.a.depends_on[0]", "depends on unknown step 'a_step_that_is_not_there'", id="missing-dependency",
    ),
    pytest.param(
        """\
version: 1
pipelines:
  p:
    steps:
      a:
        tool: geo
        inputs:
          city: ghost.name
""", 8, "pipelines.p.steps.a.inputs.city", "'ghost.name' refers to unknown step 'ghost'", id="missing-reference",
    ),
    pytest.param(
        """\
version: 1
pipelines:
  p:
    steps:
      a:
        tool: goe
""", 6, "pipelines.p.steps.a.tool", "unknown tool 'goe' (did you mean 'geo'?)", id="unknown-tool",
    ),
    pytest.param(
        """\
version: 1
pipelines:
  p:
    steps:
      a:
        parallel:
          x: geo
          y: {tool: geo, fallback: [nothing]}
""", 8, "pipelines.p.steps.a.parallel.y.fallback[0]", "unknown tool 'nothing'", id="unknown-fallback-tool",
    ),
    pytest.param(
        """\
version: 1
pipelines:
  p:
    steps:
      a:
        tool: geo
        when: "input.x =="
""", 7, "pipelines.p.steps.a.when", "invalid expression", id="bad-condition",
    ),
    pytest.param(
        """\
version: 1
pipelines:
  p:
    steps:
      a:
        tool: geo
        retries: 3
""", 7, "pipelines.p.steps.a.retries", "unknown field 'retries' (did you mean 'retry'?)", id="unknown-field",
    ),
    pytest.param(
        """\
version: 1
pipelines:
  p:
    steps:
      a:
        tool: geo
        timeout: soon
""", 7, "pipelines.p.steps.a.timeout", "expected a number", id="bad-timeout",
    ),
    pytest.param(
        """\
pipelines:
  p:
    steps:
      a: {tool: geo}
""", 1, None, "field 'version' is required", id="no-version",
    ),
    pytest.param("version: 1\npipelines: [\n", 3, None, "invalid YAML", id="bad-yaml"),
]


@pytest.mark.parametrize(("text", "line", "path", "message"), YAML_ERRORS)
def test_yaml_errors_name_file_field_and_line(write: Any, text: str, line: int, path: str | None, message: str) -> None:
    file = write("bad.yaml", text)
    with pytest.raises(ManifestError) as info:
        load_pipelines(file, registry_for_checks())
    assert info.value.code == "PIPELINE_INVALID"
    matching = [i for i in info.value.issues if message in i.message]
    assert matching, issue_text(info.value)
    issue = matching[0]
    assert (issue.file, issue.line, issue.path) == (str(file), line, path)


def test_read_pipelines_collects_every_issue_and_env_expands(write: Any) -> None:
    text = GOOD.replace("tool: geo\n        inputs", "tool: ${GEO_TOOL}\n        inputs")
    assert text != GOOD
    file = write("p.yaml", text)
    (pipeline,), issues = read_pipelines(file, registry_for_checks(), env={"GEO_TOOL": "geo"})
    assert issues == [] and pipeline.step("where").tool == "geo"
    _pipelines, issues = read_pipelines(file, registry_for_checks(), env={})
    assert [(i.path, i.line, i.message) for i in issues] == [
        ("pipelines.weather.steps.where.tool", 11, "environment variable GEO_TOOL is not set")
    ]
    _pipelines, issues = read_pipelines(file, registry_for_checks(), env={"GEO_TOOL": "nope"})
    assert [(i.path, i.line) for i in issues] == [("pipelines.weather.steps.where.tool", 11)]
    parsed, issues = parse_pipelines("version: 2\npipelines: {}\n", "v.yaml")
    assert parsed == [] and "unsupported manifest version 2" in issues[0].message
    assert parse_pipelines("version: 1\ntools: {}\n") == ([], [])  # a tool manifest
    assert "needs a `pipelines:` mapping" in parse_pipelines("version: 1\n")[1][0].message


# -- the example ------------------------------------------------------------------------------------


def test_the_example_runs_offline() -> None:
    script = ROOT / "examples" / "tool_pipeline" / "run.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "report" in proc.stdout
