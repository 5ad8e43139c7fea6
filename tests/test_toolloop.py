"""The model tool-calling loop (modelwire.tools.run_tools) end to end over loopback.

Each provider's wire format is replayed by modelwire.testing: step 1 asks
for two tools at once, step 2 answers; the second request must carry the
assistant's tool calls and the tool results in that provider's own shape.
Bad input from the model, failing and hanging tools, max_steps and a
consumer that stops early are covered under asyncio and trio.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import aclosing
from typing import Any

import anyio
import pytest

import modelwire
from modelwire import Event, TextDelta
from modelwire.testing import Reasoning, ReplayServer, Script, ToolCall
from modelwire.tools import (
    AgentContext,
    Port,
    Tool,
    ToolError,
    ToolLoopDone,
    ToolManifest,
    ToolRegistry,
    ToolResult,
    ToolStarted,
    run_tools,
    run_tools_sync,
)

from core_helpers import PROVIDERS, provider_env

pytestmark = [
    pytest.mark.anyio,
    # A stream abandoned mid-way leaves httpcore's innermost body generator to
    # trio's GC hook too (encode/httpx#3686, as pyproject's filter; that list
    # lacks this one name; plain rt.stream + break + a later call shows it).
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <async_generator object AsyncHTTP11Connection\\._receive_response_body"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

# (format, model, base-URL variable, key variable)
FORMATS = [(p[0], p[1]) for p in PROVIDERS]
IDS = [p[0] for p in PROVIDERS]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=11) as srv:
        yield srv


@pytest.fixture
def env(server: ReplayServer) -> dict[str, str]:
    server.reset()
    return provider_env(server)


def runtime(env: dict[str, str]) -> modelwire.Runtime:
    # policy=raise: no retries, one exchange per step.
    return modelwire.Runtime.from_manifests("builtin:*", env=env, policy="raise")


def city_tool(name: str, output: str, fn: Callable[..., Any]) -> Tool:
    manifest = ToolManifest(
        name,
        f"{name} for a city",
        inputs=[Port("city", {"type": "string"}, description="the city")],
        outputs=[Port(output, {"type": "string"})],
    )
    return Tool(manifest, fn)


async def collect(agen: Any) -> list[Event]:
    async with aclosing(agen) as events:
        return [ev async for ev in events]


def tool_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["role"] == "tool"]


# -- the loop, end to end, in the four formats ---------------------------------


def check_second_request(fmt: str, body: dict[str, Any], forecast: str, clock: str) -> None:
    """The assistant's two tool calls and both results, in this provider's shape."""
    weather = {"forecast": forecast}
    time = {"time": clock}
    if fmt == "openai":
        msgs = body["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool"]
        assert msgs[1]["content"] == "Let me check."
        assert msgs[1]["tool_calls"] == [
            {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_t", "type": "function", "function": {"name": "local_time", "arguments": '{"city":"Rome"}'}},
        ]
        assert [m["tool_call_id"] for m in msgs[2:]] == ["call_w", "call_t"]
        assert [json.loads(m["content"]) for m in msgs[2:]] == [weather, time]
        assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "local_time"]
    elif fmt == "anthropic":
        msgs = body["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
        assert msgs[1]["content"] == [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_w", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_t", "name": "local_time", "input": {"city": "Rome"}},
        ]
        results = msgs[2]["content"]
        assert [(r["type"], r["tool_use_id"]) for r in results] == [("tool_result", "call_w"), ("tool_result", "call_t")]
        assert [json.loads(r["content"]) for r in results] == [weather, time]
        assert [t["name"] for t in body["tools"]] == ["get_weather", "local_time"]
        assert body["tools"][0]["input_schema"]["properties"]["city"]["type"] == "string"
    elif fmt == "gemini":
        contents = body["contents"]
        assert [c["role"] for c in contents] == ["user", "model", "user"]
        assert contents[1]["parts"] == [
            {"text": "Let me check."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "local_time", "args": {"city": "Rome"}}},
        ]
        responses = [p["functionResponse"] for p in contents[2]["parts"]]
        assert [r["name"] for r in responses] == ["get_weather", "local_time"]
        assert [json.loads(r["response"]["content"]) for r in responses] == [weather, time]
        assert [f["name"] for f in body["tools"][0]["functionDeclarations"]] == ["get_weather", "local_time"]
    else:
        msgs = body["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool"]
        assert msgs[1]["tool_calls"] == [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "local_time", "arguments": {"city": "Rome"}}},
        ]
        assert [m["tool_name"] for m in msgs[2:]] == ["get_weather", "local_time"]
        assert [json.loads(m["content"]) for m in msgs[2:]] == [weather, time]
        assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "local_time"]


@pytest.mark.parametrize(("fmt", "model"), FORMATS, ids=IDS)
async def test_parallel_calls_then_answer(server: ReplayServer, env: dict[str, str], fmt: str, model: str) -> None:
    log: list[str] = []
    both_started = anyio.Event()

    async def arrive(what: str) -> None:
        log.append(f"start {what}")
        if sum(e.startswith("start") for e in log) == 2:
            both_started.set()
        # Each call waits for the other to start: run one after the other,
        # they would wait forever (the guard turns that into an error result).
        with anyio.fail_after(10):
            await both_started.wait()
        log.append(f"end {what}")

    async def get_weather(city: str) -> str:
        await arrive("weather")
        return f"sunny in {city}"

    async def local_time(city: str, ctx: Any) -> str:
        await arrive("time")
        assert ctx.tool.name == "local_time"
        return f"12:00 in {city}"

    tools = [city_tool("get_weather", "forecast", get_weather), city_tool("local_time", "time", local_time)]
    server.push(
        Script(
            text="Let me check.",
            tool_calls=[
                ToolCall("call_w", "get_weather", '{"city": "Paris"}'),
                ToolCall("call_t", "local_time", '{"city":"Rome"}'),
            ],
        ),
        Script(text=("Sunny in Paris, ", "noon in Rome.")),
    )
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, model, "Weather in Paris, time in Rome?", tools=tools))

    # Both started before either finished (trio starts tasks in any order).
    assert sorted(log[:2]) == ["start time", "start weather"] and sorted(log[2:]) == ["end time", "end weather"]
    started = [e for e in events if isinstance(e, ToolStarted)]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [(e.name, json.loads(e.arguments)) for e in started] == [("get_weather", {"city": "Paris"}), ("local_time", {"city": "Rome"})]
    assert [(r.name, r.output, r.error, r.step) for r in results] == [
        ("get_weather", {"forecast": "sunny in Paris"}, None, 1),
        ("local_time", {"time": "12:00 in Rome"}, None, 1),
    ]
    assert [r.call_id for r in results] == [s.call_id for s in started]
    if fmt in ("openai", "anthropic"):
        assert [s.call_id for s in started] == ["call_w", "call_t"]
    else:  # Gemini and Ollama send no ids: the loop makes them up
        assert [s.call_id for s in started] == ["call_1_0", "call_1_1"]
    # Model events pass through: step 1's text, then the final answer after the results.
    last_result = events.index(results[-1])
    assert "".join(e.text for e in events[:last_result] if isinstance(e, TextDelta)) == "Let me check."
    assert "".join(e.text for e in events[last_result:] if isinstance(e, TextDelta)) == "Sunny in Paris, noon in Rome."
    done = events[-1]
    assert isinstance(done, ToolLoopDone) and done.steps == 2
    assert done.messages[-1] == {"role": "assistant", "content": "Sunny in Paris, noon in Rome."}
    assert len(tool_messages(done.messages)) == 2
    assert done.to_dict()["type"] == "tool_loop_done"

    assert len(server.requests) == 2
    check_second_request(fmt, server.requests[-1].json, "sunny in Paris", "12:00 in Rome")


async def test_thinking_goes_back_before_the_tool_use(server: ReplayServer, env: dict[str, str]) -> None:
    """Anthropic extended thinking + tools: the next step's assistant turn holds the
    signed thinking block (and a redacted one) before its tool_use, as the API demands."""
    thinking = [Reasoning(["I should ", "look it up."], signature="sig-abc"), Reasoning(redacted="opaque-data")]
    server.push(
        Script(text="", reasoning=thinking, tool_calls=[ToolCall("call_w", "get_weather", '{"city": "Paris"}')]),
        Script(reasoning=[Reasoning("Done.", signature="sig-2")], text="Rain in Paris."),
    )
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, "claude-haiku-4-5", "Paris?", tools=[echo_tool()]))
    assistant = server.requests[1].json["messages"][1]
    assert assistant == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "I should look it up.", "signature": "sig-abc"},
        {"type": "redacted_thinking", "data": "opaque-data"},
        {"type": "tool_use", "id": "call_w", "name": "get_weather", "input": {"city": "Paris"}},
    ]}
    done = events[-1]
    assert isinstance(done, ToolLoopDone)
    assert done.messages[1]["reasoning"] == [
        {"text": "I should look it up.", "signature": "sig-abc"}, {"redacted": "opaque-data"},
    ]
    assert done.messages[-1] == {"role": "assistant", "content": "Rain in Paris.",
                                 "reasoning": [{"text": "Done.", "signature": "sig-2"}]}


# -- bad input from the model ---------------------------------------------------------


def echo_tool(seen: list[dict[str, Any]] | None = None) -> Tool:
    async def get_weather(city: str) -> str:
        if seen is not None:
            seen.append({"city": city})
        return f"rain in {city}"

    return city_tool("get_weather", "forecast", get_weather)


def fed_back(server: ReplayServer) -> list[dict[str, Any]]:
    """The error results of the last request, decoded, whatever the format."""
    body = server.requests[-1].json
    if "contents" in body:  # gemini
        parts = [p for c in body["contents"] for p in c["parts"] if "functionResponse" in p]
        return [json.loads(p["functionResponse"]["response"]["content"]) for p in parts]
    blocks = [b for m in body["messages"] if isinstance(m.get("content"), list) for b in m["content"]]
    if any(b.get("type") == "tool_result" for b in blocks):  # anthropic
        return [json.loads(b["content"]) for b in blocks if b.get("type") == "tool_result"]
    return [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]


async def test_unknown_tool_is_fed_back(server: ReplayServer, env: dict[str, str]) -> None:
    seen: list[dict[str, Any]] = []
    server.push(
        Script(text="", tool_calls=[ToolCall("c1", "get_wether", '{"city": "Oslo"}'), ToolCall("c2", "get_weather", '{"city": "Oslo"}')]),
        Script(text="Rain in Oslo."),
    )
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, "gpt-4.1-mini", "Oslo?", tools=[echo_tool(seen)]))
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [(r.name, r.code) for r in results] == [("get_wether", "TOOL_NOT_FOUND"), ("get_weather", None)]
    assert results[0].error is not None and "get_weather" in results[0].error  # names the tools it has
    assert seen == [{"city": "Oslo"}]
    feedback = fed_back(server)
    assert "no tool named 'get_wether'" in feedback[0]["error"]
    assert feedback[1] == {"forecast": "rain in Oslo"}
    assert isinstance(events[-1], ToolLoopDone)


@pytest.mark.parametrize(("fmt", "model"), FORMATS, ids=IDS)
async def test_arguments_not_json_are_fed_back(server: ReplayServer, env: dict[str, str], fmt: str, model: str) -> None:
    seen: list[dict[str, Any]] = []
    server.push(
        Script(text="", tool_calls=[ToolCall("c1", "get_weather", "city=Paris, please")]),
        Script(text="Sorry."),
    )
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, model, "Paris?", tools=[echo_tool(seen)]))
    (result,) = [e for e in events if isinstance(e, ToolResult)]
    assert result.code == "TOOL_BAD_ARGUMENTS" and result.output is None
    assert seen == []
    # Gemini and Ollama carry arguments as an object: text that is not JSON arrives as a JSON string.
    (feedback,) = fed_back(server)
    assert "arguments" in feedback["error"] and "city=Paris, please" in feedback["error"]
    assert isinstance(events[-1], ToolLoopDone)


async def test_arguments_breaking_the_input_schema_are_fed_back(server: ReplayServer, env: dict[str, str]) -> None:
    server.push(
        Script(text="", tool_calls=[ToolCall("c1", "get_weather", '{"city": 3}'), ToolCall("c2", "get_weather", '{"town": "x"}')]),
        Script(text="ok"),
    )
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, "claude-haiku-4-5", "?", tools=[echo_tool()]))
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.code for r in results] == ["TOOL_BAD_INPUT", "TOOL_BAD_INPUT"]
    assert results[0].error is not None and "'city'" in results[0].error and "string" in results[0].error
    assert results[1].error is not None and "'town'" in results[1].error
    assert all("error" in f for f in fed_back(server))


async def test_raise_mode_raises_a_tool_error_before_running_anything(server: ReplayServer, env: dict[str, str]) -> None:
    seen: list[dict[str, Any]] = []
    server.push(Script(text="", tool_calls=[ToolCall("c1", "get_weather", '{"city": "Oslo"}'), ToolCall("c2", "nope", "{}")]))
    async with runtime(env) as rt:
        with pytest.raises(ToolError) as info:
            await collect(run_tools(rt, "gemini-2.5-flash", "?", tools=[echo_tool(seen)], on_tool_error="raise"))
    assert info.value.code == "TOOL_NOT_FOUND" and info.value.tool == "nope"  # type: ignore[attr-defined]
    assert seen == [] and len(server.requests) == 1

    server.push(Script(text="", tool_calls=[ToolCall("c1", "get_weather", "{oops")]))
    async with runtime(env) as rt:
        with pytest.raises(ToolError) as info:
            await collect(run_tools(rt, "llama3.2", "?", tools=[echo_tool(seen)], on_tool_error="raise"))
    assert info.value.code == "TOOL_BAD_ARGUMENTS"


# -- failing and hanging tools ------------------------------------------------------------


async def test_tool_exception_fed_back_or_raised(server: ReplayServer, env: dict[str, str]) -> None:
    def explode(city: str) -> str:  # a sync tool: runs in a worker thread
        raise ValueError(f"no data for {city}")

    tools = [city_tool("get_weather", "forecast", explode)]
    server.push(Script(text="", tool_calls=[ToolCall("c1", "get_weather", '{"city": "Lima"}')]), Script(text="Sorry."))
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, "gpt-4.1-mini", "Lima?", tools=tools))
    (result,) = [e for e in events if isinstance(e, ToolResult)]
    assert result.code == "TOOL_FAILED"
    assert fed_back(server) == [{"error": "tool 'get_weather' failed: ValueError: no data for Lima"}]

    server.push(Script(text="", tool_calls=[ToolCall("c1", "get_weather", '{"city": "Lima"}')]))
    async with runtime(env) as rt:
        with pytest.raises(ToolError) as info:
            await collect(run_tools(rt, "gpt-4.1-mini", "Lima?", tools=tools, on_tool_error="raise"))
    assert info.value.code == "TOOL_FAILED" and isinstance(info.value.__cause__, ValueError)


async def test_bad_output_is_fed_back(server: ReplayServer, env: dict[str, str]) -> None:
    async def wrong(city: str) -> int:
        return 42

    server.push(Script(text="", tool_calls=[ToolCall("c1", "get_weather", '{"city": "Bern"}')]), Script(text="?"))
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, "gpt-4.1-mini", "?", tools=[city_tool("get_weather", "forecast", wrong)]))
    (result,) = [e for e in events if isinstance(e, ToolResult)]
    assert result.code == "TOOL_BAD_OUTPUT" and result.error is not None and "'forecast'" in result.error


async def test_hanging_tool_times_out_and_is_cancelled(server: ReplayServer, env: dict[str, str]) -> None:
    cancelled: list[str] = []

    async def hang(city: str) -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(city)
            raise
        return "never"

    async def quick(city: str) -> str:
        return "ok"

    tools = [city_tool("slow", "out", hang), city_tool("fast", "out", quick)]
    server.push(
        Script(text="", tool_calls=[ToolCall("c1", "slow", '{"city": "A"}'), ToolCall("c2", "fast", '{"city": "B"}')]),
        Script(text="done"),
    )
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, "gpt-4.1-mini", "?", tools=tools, tool_timeout={"slow": 0.05}))
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [(r.name, r.code) for r in results] == [("slow", "TOOL_TIMEOUT"), ("fast", None)]
    assert cancelled == ["A"]
    assert "did not finish" in fed_back(server)[0]["error"]


async def test_raise_mode_cancels_the_other_running_tools(server: ReplayServer, env: dict[str, str]) -> None:
    cancelled: list[str] = []
    hang_started = anyio.Event()

    async def hang(city: str) -> str:
        hang_started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(city)
            raise
        return "never"

    async def fail(city: str) -> str:
        await hang_started.wait()
        raise RuntimeError("broken")

    tools = [city_tool("slow", "out", hang), city_tool("bad", "out", fail)]
    server.push(Script(text="", tool_calls=[ToolCall("c1", "slow", '{"city": "A"}'), ToolCall("c2", "bad", '{"city": "B"}')]))
    async with runtime(env) as rt:
        with pytest.raises(ToolError) as info:
            await collect(run_tools(rt, "gpt-4.1-mini", "?", tools=tools, on_tool_error="raise"))
    assert info.value.code == "TOOL_FAILED" and info.value.tool == "bad"  # type: ignore[attr-defined]
    assert cancelled == ["A"]


# -- max_steps ---------------------------------------------------------------------------


async def test_max_steps_raises_without_running_the_last_calls(server: ReplayServer, env: dict[str, str]) -> None:
    seen: list[dict[str, Any]] = []
    again = Script(text="", tool_calls=[ToolCall("c1", "get_weather", '{"city": "Nice"}')])
    server.push(again, again, again)
    async with runtime(env) as rt:
        events: list[Event] = []
        with pytest.raises(modelwire.LimitExceededError) as info:
            async with aclosing(run_tools(rt, "claude-haiku-4-5", "?", tools=[echo_tool(seen)], max_steps=2)) as stream:
                async for ev in stream:
                    events.append(ev)
    err = info.value
    assert err.code == "MAX_STEPS" and err.steps == 2  # type: ignore[attr-defined]
    assert seen == [{"city": "Nice"}]  # step 1 ran, step 2's call did not
    assert len(server.requests) == 2
    assert [m["role"] for m in err.messages] == ["user", "assistant", "tool"]  # type: ignore[attr-defined]
    assert [c.name for c in err.tool_calls] == ["get_weather"]  # type: ignore[attr-defined]
    assert sum(isinstance(e, ToolResult) for e in events) == 1


async def test_bad_loop_arguments(env: dict[str, str]) -> None:
    async with runtime(env) as rt:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"max_steps": 0}, "BAD_ARGUMENT"),
            ({"on_tool_error": "ignore"}, "BAD_ARGUMENT"),
            ({"tools": [42]}, "BAD_TOOL"),
            ({"tools": [echo_tool(), echo_tool()]}, "TOOL_DUPLICATE"),
        ]
        for kwargs, code in cases:
            args: dict[str, Any] = {"tools": [echo_tool()], **kwargs}
            with pytest.raises(modelwire.InvalidRequestError) as info:
                await collect(run_tools(rt, "gpt-4.1-mini", "?", **args))
            assert info.value.code == code


# -- a consumer that stops early ---------------------------------------------------------


async def test_cancelling_the_consumer_cancels_running_tools(server: ReplayServer, env: dict[str, str]) -> None:
    running = anyio.Event()
    cancelled: list[str] = []
    finished: list[str] = []

    async def hang(city: str) -> str:
        try:
            if city == "A":
                running.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(city)
            raise
        finally:
            finished.append(city)
        return "never"

    tools = [city_tool("slow", "out", hang)]
    server.push(Script(text="", tool_calls=[ToolCall("c1", "slow", '{"city": "A"}'), ToolCall("c2", "slow", '{"city": "B"}')]))
    seen: list[Event] = []
    async with runtime(env) as rt:
        scope = anyio.CancelScope()

        async def consume() -> None:
            with scope:
                async with aclosing(run_tools(rt, "gpt-4.1-mini", "?", tools=tools)) as events:
                    async for ev in events:
                        seen.append(ev)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await running.wait()
            scope.cancel()
        assert sorted(cancelled) == ["A", "B"] and sorted(finished) == ["A", "B"]
        assert sum(isinstance(e, ToolStarted) for e in seen) == 2
        assert not any(isinstance(e, ToolResult) for e in seen)
        assert len(server.requests) == 1
        # The runtime is still usable: nothing was left half-open.
        server.push(Script(text="still here"))
        assert (await rt.generate("gpt-4.1-mini", "hi")).text == "still here"


@pytest.mark.parametrize("stop_at", [ToolStarted, TextDelta])
async def test_breaking_out_early_runs_no_tools(server: ReplayServer, env: dict[str, str], stop_at: type[Event]) -> None:
    seen: list[dict[str, Any]] = []
    server.push(Script(text="Checking", tool_calls=[ToolCall("c1", "get_weather", '{"city": "Oslo"}')]))
    async with runtime(env) as rt:
        async with aclosing(run_tools(rt, "claude-haiku-4-5", "?", tools=[echo_tool(seen)])) as events:
            async for ev in events:
                if isinstance(ev, stop_at):
                    break
        assert seen == [] and len(server.requests) == 1
        server.push(Script(text="next"))
        assert (await rt.generate("claude-haiku-4-5", "hi")).text == "next"


# -- context, registries, conversation input, the sync twin ------------------------------


async def test_agent_context_registry_and_messages(server: ReplayServer, env: dict[str, str]) -> None:
    async def remember(city: str, ctx: Any) -> str:
        visits = ctx.agent.session().get("visits", 0) + 1
        ctx.agent.session().set("visits", visits)
        return f"{city} #{visits} for {ctx.agent.variables()['user']}"

    registry = ToolRegistry([city_tool("remember", "note", remember)])
    agent = AgentContext("s1", variables={"user": "ada"})
    server.push(
        Script(text="", tool_calls=[ToolCall("c1", "remember", '{"city": "Kyiv"}')]),
        Script(text="", tool_calls=[ToolCall("c2", "remember", '{"city": "Lviv"}')]),
        Script(text="Noted."),
    )
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "yes"}]
    async with runtime(env) as rt:
        events = await collect(
            run_tools(rt, "gpt-4.1-mini", messages=[*history, {"role": "user", "content": "go"}], system="sys",
                         tools=registry, ctx=agent, max_steps=3, parallel=False, temperature=0.5)
        )
    outputs = [e.output for e in events if isinstance(e, ToolResult)]
    assert outputs == [{"note": "Kyiv #1 for ada"}, {"note": "Lviv #2 for ada"}]
    assert agent.session().get("visits") == 2
    done = events[-1]
    assert isinstance(done, ToolLoopDone) and done.steps == 3
    last = server.requests[-1].json
    assert last["temperature"] == 0.5
    assert [m["role"] for m in last["messages"]] == ["system", "user", "assistant", "user", "assistant", "tool", "assistant", "tool"]


def test_sync_runtime_run_tools(server: ReplayServer, env: dict[str, str]) -> None:
    def get_weather(city: str) -> str:
        return f"fog in {city}"

    server.push(
        Script(text="", tool_calls=[ToolCall("c1", "get_weather", '{"city": "London"}')]),
        Script(text="Foggy."),
    )
    with modelwire.SyncRuntime(runtime(env)) as rt:
        events = list(run_tools_sync(rt, "llama3.2", "London?", tools=[city_tool("get_weather", "forecast", get_weather)]))
    assert [e.output for e in events if isinstance(e, ToolResult)] == [{"forecast": "fog in London"}]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Foggy."
    assert isinstance(events[-1], ToolLoopDone)


# -- decorated functions, plain functions, resources --------------------------------------


async def test_decorated_and_plain_functions_and_shared_resources(server: ReplayServer, env: dict[str, str]) -> None:
    connections: list[Any] = []

    @modelwire.tools.tool(resources={"db": {"kind": "sqlite", "path": ":memory:"}})
    def add_note(note: str, ctx: Any) -> int:
        """Store a note and count the notes.

        Args:
            note: the text to keep
        """
        db = ctx.resources["db"]
        connections.append(db)
        db.execute("CREATE TABLE IF NOT EXISTS notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES (?)", (note,))
        return int(db.execute("SELECT count(*) FROM notes").fetchone()[0])

    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    server.push(
        Script(text="", tool_calls=[ToolCall("c1", "add_note", '{"note": "a"}'), ToolCall("c2", "shout", '{"text": "hi"}')]),
        Script(text="", tool_calls=[ToolCall("c3", "add_note", '{"note": "b"}')]),
        Script(text="Two notes."),
    )
    async with runtime(env) as rt:
        events = await collect(run_tools(rt, "gpt-4.1-mini", "?", tools=[add_note, shout]))
    outputs = [(e.name, e.output, e.error) for e in events if isinstance(e, ToolResult)]
    # The pool lives for the whole loop: step 2 sees step 1's row.
    assert outputs == [("add_note", {"result": 1}, None), ("shout", {"result": "HI"}, None), ("add_note", {"result": 2}, None)]
    spec = server.requests[0].json["tools"][0]["function"]
    assert spec["description"] == "Store a note and count the notes."
    assert spec["parameters"]["properties"]["note"]["description"] == "the text to keep"
    # The loop made the registry, so it closed its pools when it ended.
    import sqlite3

    with pytest.raises(sqlite3.ProgrammingError):
        connections[-1].execute("SELECT 1")
