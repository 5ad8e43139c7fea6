"""Tool manifests (YAML, builder, decorator), their checks, calls and the agent context."""

from __future__ import annotations

import dataclasses
import enum
import re
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypedDict

import anyio
import attrs
import pytest

import modelwire
from modelwire import ManifestError
from modelwire.tools import (
    AgentContext,
    Port,
    ResourceSpec,
    Tool,
    ToolBuilder,
    ToolContext,
    ToolError,
    ToolManifest,
    ToolRegistry,
    ToolTimeout,
    call_tool,
    check_tool_manifest,
    load_tools,
    parse_tools,
    schema_for,
    tool,
    validate_ports,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def messages(exc: ManifestError) -> list[str]:
    return [str(i) for i in exc.issues]


# -- the decorator -------------------------------------------------------------------------


class Units(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


class Forecast(TypedDict):
    """A forecast."""

    temperature: float
    summary: str


@dataclasses.dataclass
class Place:
    city: str
    country: str = "FR"


@attrs.define
class Window:
    days: int
    hourly: bool = False


def test_decorator_derives_ports_from_signature_and_google_docstring() -> None:
    @tool
    def get_weather(city: str, days: int = 1, units: Literal["c", "f"] = "c", tags: list[str] | None = None) -> Forecast:
        """Current weather for a city.

        Uses the national service; the second line stays in the summary.

        Args:
            city: Name of the city,
                in English.
            days (int): How many days ahead.
            units: Temperature units.

        Returns:
            The forecast.
        """
        return {"temperature": 21.5, "summary": city}

    m = get_weather.manifest
    assert isinstance(get_weather, Tool)
    assert m.name == "get_weather"
    assert m.description == "Current weather for a city."
    ports = {p.name: p for p in m.inputs}
    assert ports["city"].schema == {"type": "string"}
    assert ports["city"].description == "Name of the city, in English."
    assert ports["city"].is_required
    assert ports["days"].schema == {"type": "integer", "default": 1}
    assert ports["days"].description == "How many days ahead."
    assert not ports["days"].is_required
    assert ports["units"].schema == {"type": "string", "enum": ["c", "f"], "default": "c"}
    assert ports["tags"].schema == {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}], "default": None}
    assert ports["tags"].type_name == "list[str] | None"
    assert [p.name for p in m.outputs] == ["temperature", "summary"]
    assert m.outputs[0].schema == {"type": "number"}
    assert m.input_schema()["required"] == ["city"]
    assert m.as_model_tool()["parameters"]["properties"]["city"]["description"] == "Name of the city, in English."
    # Still a function.
    assert get_weather("Paris") == {"temperature": 21.5, "summary": "Paris"}
    assert get_weather.__doc__ is not None and get_weather.__name__ == "get_weather"


def test_decorator_numpy_and_sphinx_docstrings() -> None:
    @tool
    def numpy_style(a: int, b: str = "x") -> str:
        """Join things.

        Parameters
        ----------
        a : int
            The first thing,
            continued.
        b : str
            The second.

        Returns
        -------
        str
            The joined text.
        """
        return f"{a}{b}"

    @tool
    def sphinx_style(a: int) -> int:
        """Double.

        :param a: the number
        :returns: twice a
        """
        return 2 * a

    assert numpy_style.manifest.description == "Join things."
    assert [p.description for p in numpy_style.manifest.inputs] == ["The first thing, continued.", "The second."]
    assert numpy_style.manifest.outputs[0].description == "The joined text."
    assert sphinx_style.manifest.inputs[0].description == "the number"
    assert sphinx_style.manifest.outputs[0].description == "twice a"


def test_decorator_with_options_and_async_function() -> None:
    @tool(name="lookup", capabilities=["network"], permissions=["net:example.org"],
          resources={"db": {"kind": "sqlite", "path": "x.db"}, "cache": "file_cache"}, output="answer")
    async def find(query: Annotated[str, "what to look up"], ctx: ToolContext) -> str:
        return query

    m = find.manifest
    assert m.name == "lookup"
    assert m.capabilities == ["network"] and m.permissions == ["net:example.org"]
    assert m.resources == [ResourceSpec("db", "sqlite", {"path": "x.db"}), ResourceSpec("cache", "file_cache")]
    assert [p.name for p in m.inputs] == ["query"]  # ctx is not a port
    assert m.inputs[0].description == "what to look up"
    assert [p.name for p in m.outputs] == ["answer"]
    assert find.is_async


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        pytest.param(str, {"type": "string"}, id="str"),
        pytest.param(float, {"type": "number"}, id="float"),
        pytest.param(bool, {"type": "boolean"}, id="bool"),
        pytest.param(Any, {}, id="any"),
        pytest.param(Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}, id="optional"),  # noqa: UP045
        pytest.param(int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}, id="union"),
        pytest.param(Sequence[float], {"type": "array", "items": {"type": "number"}}, id="sequence"),
        pytest.param(set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}, id="set"),
        pytest.param(tuple[int, ...], {"type": "array", "items": {"type": "integer"}}, id="tuple-var"),
        pytest.param(
            tuple[int, str],
            {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2},
            id="tuple-fixed",
        ),
        pytest.param(dict, {"type": "object"}, id="dict"),
        pytest.param(Mapping[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}, id="mapping"),
        pytest.param(Literal[1, 2], {"type": "integer", "enum": [1, 2]}, id="literal"),
        pytest.param(Units, {"type": "string", "enum": ["celsius", "fahrenheit"]}, id="enum"),
        pytest.param(Annotated[int, {"minimum": 0}], {"type": "integer", "minimum": 0}, id="annotated"),
        pytest.param(
            Forecast,
            {
                "type": "object", "description": "A forecast.",
                "properties": {"temperature": {"type": "number"}, "summary": {"type": "string"}},
                "required": ["temperature", "summary"], "additionalProperties": False,
            },
            id="typeddict",
        ),
        pytest.param(
            Place,
            {
                "type": "object",
                "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                "required": ["city"], "additionalProperties": False,
            },
            id="dataclass",
        ),
        pytest.param(
            Window,
            {
                "type": "object",
                "properties": {"days": {"type": "integer"}, "hourly": {"type": "boolean"}},
                "required": ["days"], "additionalProperties": False,
            },
            id="attrs",
        ),
    ],
)
def test_schema_for(annotation: Any, schema: dict[str, Any]) -> None:
    assert schema_for(annotation) == schema


@pytest.mark.parametrize(
    ("annotation", "fragment"),
    [
        pytest.param(complex, "cannot derive a JSON Schema from complex", id="complex"),
        pytest.param(dict[int, str], "JSON object keys are strings", id="int-keys"),
        pytest.param(list[bytes], "bytes is only supported as a whole port", id="nested-bytes"),
    ],
)
def test_schema_for_unsupported(annotation: Any, fragment: str) -> None:
    with pytest.raises(TypeError, match=fragment):
        schema_for(annotation)


def test_decorator_unsupported_parameter_names_tool_and_parameter() -> None:
    with pytest.raises(ToolError) as info:

        @tool
        def bad(when: complex) -> None:
            """Bad."""

    assert info.value.code == "TOOL_SIGNATURE"
    assert info.value.tool == "bad" and info.value.port == "when"
    assert "parameter 'when'" in info.value.message and "test_tools.py" in info.value.message


def test_decorator_rejects_positional_only_and_misnamed_context() -> None:
    with pytest.raises(ToolError, match="positional-only"):

        @tool
        def f(a: int, /) -> None: ...

    with pytest.raises(ToolError, match="name it 'ctx'"):

        @tool
        def g(context: ToolContext) -> None: ...


def test_decorator_outputs_none_and_binary() -> None:
    @tool
    def nothing(x: int) -> None:
        """Does nothing."""

    @tool
    def thumbnail(image: bytes, size: int = 64) -> bytes:
        """A thumbnail."""
        return image[:size]

    assert nothing.manifest.outputs == []
    assert thumbnail.manifest.inputs[0].format == "binary"
    assert thumbnail.manifest.outputs[0].format == "binary"


async def test_decorator_structures_and_unstructures_values() -> None:
    @tool
    def plan(place: Place, window: Window, units: Units = Units.C, pair: tuple[int, int] = (1, 2)) -> Place:
        """Echo a place."""
        assert isinstance(place, Place) and isinstance(window, Window)
        assert isinstance(units, Units) and isinstance(pair, tuple)
        return Place(city=place.city.upper(), country=units.value)

    assert plan.manifest.inputs[2].schema["default"] == "celsius"
    out = await call_tool(plan, {"place": {"city": "lyon"}, "window": {"days": 2}})
    assert out == {"result": {"city": "LYON", "country": "celsius"}}


async def test_decorator_single_output_is_always_wrapped() -> None:
    @tool
    def as_dict() -> dict[str, int]:
        """A dict whose key looks like the port."""
        return {"result": 1}

    assert await call_tool(as_dict, {}) == {"result": {"result": 1}}


# -- the builder ----------------------------------------------------------------------------


async def test_builder_builds_and_calls() -> None:
    def impl(city: str, days: int = 1) -> dict[str, Any]:
        return {"celsius": 20.0 + days, "city": city}

    weather = (
        ToolBuilder("get_weather")
        .describe("Weather for a city.")
        .input("city", {"type": "string"}, description="City name", examples=["Paris"])
        .input("days", int, required=False)
        .output("celsius", {"type": "number"})
        .output("city", str)
        .capability("network", "weather")
        .permission("net:weather.example")
        .resource("cache", "file_cache", dir="/tmp/x")
        .build(impl)
    )
    m = weather.manifest
    assert m.inputs[1] == Port("days", {"type": "integer"}, type_name="int", required=False)
    assert m.capabilities == ["network", "weather"]
    assert m.resources == [ResourceSpec("cache", "file_cache", {"dir": "/tmp/x"})]
    assert m.input_schema()["required"] == ["city"]
    weather_no_resources = ToolBuilder("w2").input("city", str).output("celsius", float).output("city", str).build(impl)
    assert await call_tool(weather_no_resources, {"city": "Oslo"}) == {"celsius": 21.0, "city": "Oslo"}


def test_builder_reports_every_problem_at_once() -> None:
    builder = (
        ToolBuilder("bad name")
        .input("a", {"type": "strin"})
        .input("a", {"type": "string"})
        .input("b", {"type": "integer", "default": "x"})
        .input("c", {"type": "integer"}, examples=[1, "two"])
        .input("ctx", {})
        .output("o", {}, format="text", examples=[3])
        .capability("")
    )
    with pytest.raises(ManifestError) as info:
        builder.manifest()
    assert info.value.code == "TOOL_MANIFEST_INVALID"
    text = "\n".join(messages(info.value))
    for fragment in (
        "tools.bad name.name: tool name 'bad name' is not usable by providers",
        "tools.bad name.inputs.a.schema.type: not a valid JSON Schema: 'strin' is not valid",
        "duplicate input port 'a' (ports 0 and 1)",
        "tools.bad name.inputs.b.schema.default: default does not fit the schema at $: 'x' is not of type 'integer'",
        "tools.bad name.inputs.c.examples[1]: example does not fit the schema at $: 'two' is not of type 'integer'",
        "tools.bad name.inputs.ctx: 'ctx' is reserved",
        "tools.bad name.outputs.o.examples[0]: example does not fit the schema at $: expected text",
        "tools.bad name.capabilities[0]: expected a non-empty string",
    ):
        assert fragment in text, (fragment, text)


def test_builder_checks_the_function_signature() -> None:
    def impl(town: str) -> str:
        return town

    with pytest.raises(ManifestError) as info:
        ToolBuilder("t").input("city", str).output("x", str).build(impl)
    text = "\n".join(messages(info.value))
    assert "takes no parameter 'city'" in text
    assert "parameter 'town' has no default and no input port fills it" in text
    assert "test_tools.py" in text  # where the function is


# -- registration ----------------------------------------------------------------------------


def test_registry_checks_duplicate_ports_and_unknown_resource_kinds() -> None:
    manifest = ToolManifest(
        "dup",
        inputs=[Port("x", {"type": "string"}), Port("x", {"type": "integer"})],
        outputs=[Port("y")],
        resources=[ResourceSpec("db", "postgres"), ResourceSpec("lite", "sqlite", {"pth": "a"})],
    )
    with pytest.raises(ManifestError) as info:
        ToolRegistry().register(Tool(manifest, lambda x: x))
    assert info.value.tool == "dup"
    text = "\n".join(messages(info.value))
    assert "duplicate input port 'x'" in text
    assert "tools.dup.resources.db.kind: tool 'dup': resource 'db' has unknown kind 'postgres'; known: file_cache, http_client, sqlite" in text
    assert "tools.dup.resources.lite.options: sqlite needs option 'path'" in text
    assert "tools.dup.resources.lite.options.pth: unknown option 'pth' for sqlite; allowed: path, size, timeout" in text


def test_registry_basics() -> None:
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    registry = ToolRegistry()
    registered = registry.register(add)  # a plain function is decorated
    assert registered.name == "add" and "add" in registry and len(registry) == 1
    with pytest.raises(modelwire.InvalidRequestError, match="registered twice"):
        registry.register(add)
    with pytest.raises(modelwire.NotFoundError, match="registered: add") as info:
        registry.get("sub")
    assert info.value.code == "TOOL_NOT_FOUND"
    registry.register(tool(name="sub", capabilities=["math"])(lambda a, b: a - b))
    with pytest.raises(ManifestError, match="tool name '<lambda>' is not usable"):
        tool(lambda: None)
    assert [t.name for t in registry.with_capability("math")] == ["sub"]
    assert registry.names() == ["add", "sub"]


def test_check_tool_manifest_names_origin() -> None:
    issues = check_tool_manifest(ToolManifest("x", inputs=[Port("a", {"type": 3})]), origin="app/tools.py:12")
    assert [str(i) for i in issues] == [
        "app/tools.py:12: tools.x.inputs.a.schema.type: not a valid JSON Schema: 3 is not valid under any of the given schemas"
    ]


def test_schema_draft_from_dollar_schema() -> None:
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "array", "items": [{"type": "string"}]}
    assert check_tool_manifest(ToolManifest("x", inputs=[Port("a", draft7)])) == []


# -- validation at call time --------------------------------------------------------------------

NESTED = ToolManifest(
    "order",
    inputs=[
        Port("items", {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}}}),
        Port("note", {"type": "string"}, format="text", required=False),
        Port("blob", format="binary", required=False),
    ],
    outputs=[Port("total", {"type": "number"}), Port("lines", {"type": "object", "additionalProperties": {"type": "string"}})],
)


@pytest.mark.parametrize(
    ("values", "direction", "code", "port", "path", "fragment"),
    [
        pytest.param({"items": [{"qty": 1}, {"qty": 0}]}, "input", "TOOL_BAD_INPUT", "items", "$[1].qty",
                     "0 is less than the minimum of 1", id="nested-path"),
        pytest.param({}, "input", "TOOL_BAD_INPUT", "items", None, "input port 'items' is missing", id="missing"),
        pytest.param({"items": [], "nope": 1}, "input", "TOOL_BAD_INPUT", "nope", None, "has no input port 'nope'", id="unknown"),
        pytest.param({"items": [], "note": 3}, "input", "TOOL_BAD_INPUT", "note", "$", "expected text", id="text-format"),
        pytest.param({"items": [], "blob": "abc"}, "input", "TOOL_BAD_INPUT", "blob", "$", "expected binary", id="binary-format"),
        pytest.param({"total": 1, "lines": {"a b": 3}}, "output", "TOOL_BAD_OUTPUT", "lines", "$['a b']",
                     "3 is not of type 'string'", id="output-path"),
        pytest.param({"total": 1}, "output", "TOOL_BAD_OUTPUT", "lines", None, "output port 'lines' is missing", id="output-missing"),
    ],
)
def test_validate_ports(values: dict[str, Any], direction: Any, code: str, port: str, path: str | None, fragment: str) -> None:
    with pytest.raises(ToolError) as info:
        validate_ports(NESTED, values, direction)
    err = info.value
    assert (err.code, err.tool, err.port, err.path) == (code, "order", port, path)
    assert fragment in err.message
    assert "tool=order" in str(err)


def test_validate_ports_accepts_good_values() -> None:
    validate_ports(NESTED, {"items": [{"qty": 2}], "note": "hi", "blob": b"\x00"}, "input")
    validate_ports(NESTED, {"total": 2.5, "lines": {"a": "b"}}, "output")


# -- call_tool: bad tools --------------------------------------------------------------------------


async def test_call_tool_wraps_a_raising_tool() -> None:
    @tool
    def boom(x: int) -> int:
        raise ValueError(f"no {x}")

    with pytest.raises(ToolError) as info:
        await call_tool(boom, {"x": 1})
    assert info.value.code == "TOOL_FAILED" and info.value.tool == "boom"
    assert isinstance(info.value.__cause__, ValueError)
    assert "ValueError: no 1" in info.value.message


async def test_call_tool_lets_a_tool_error_through_with_the_tool_named() -> None:
    @tool
    async def picky(x: int) -> int:
        raise ToolError("x is odd", code="ODD")

    with pytest.raises(ToolError) as info:
        await call_tool(picky, {"x": 1})
    assert (info.value.code, info.value.tool) == ("ODD", "picky")


async def test_call_tool_times_out_a_hanging_async_tool() -> None:
    cancelled = []

    @tool
    async def hang() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(True)

    with pytest.raises(ToolTimeout) as info:
        await call_tool(hang, {}, timeout=0.05)
    assert info.value.code == "TOOL_TIMEOUT" and info.value.kind == "timeout"
    assert isinstance(info.value, ToolError) and info.value.tool == "hang"
    assert cancelled == [True]


async def test_call_tool_times_out_a_hanging_sync_tool() -> None:
    release = threading.Event()

    @tool
    def block() -> None:
        release.wait(10)

    try:
        with anyio.fail_after(5):  # the caller is not held up by the thread
            with pytest.raises(ToolTimeout):
                await call_tool(block, {}, timeout=0.05)
    finally:
        release.set()


async def test_call_tool_rejects_output_that_breaks_the_schema() -> None:
    @tool
    def liar() -> Forecast:
        return {"temperature": "warm", "summary": "x"}  # type: ignore[typeddict-item]

    with pytest.raises(ToolError) as info:
        await call_tool(liar, {})
    err = info.value
    assert (err.code, err.port, err.path) == ("TOOL_BAD_OUTPUT", "temperature", "$")
    assert "'warm' is not of type 'number'" in err.message


async def test_call_tool_rejects_a_non_mapping_for_several_outputs() -> None:
    @tool
    def half() -> Forecast:
        return 3  # type: ignore[return-value]

    with pytest.raises(ToolError, match=re.escape("returned int, expected a mapping of its outputs (temperature, summary)")) as info:
        await call_tool(half, {})
    assert info.value.code == "TOOL_BAD_OUTPUT"


async def test_call_tool_checks_inputs_before_calling() -> None:
    calls = []

    @tool
    def count(n: int) -> int:
        calls.append(n)
        return n

    with pytest.raises(ToolError) as info:
        await call_tool(count, {"n": "3"})
    assert (info.value.code, info.value.port) == ("TOOL_BAD_INPUT", "n")
    assert calls == []


async def test_call_tool_fills_schema_defaults() -> None:
    seen = []
    t = ToolBuilder("d").input("n", {"type": "integer", "default": 7}).build(lambda n: seen.append(n))
    assert await call_tool(t, {}) == {}
    assert seen == [7]


async def test_cancellation_is_not_wrapped() -> None:
    @tool
    async def slow() -> None:
        await anyio.sleep_forever()

    with anyio.move_on_after(0.05) as scope:
        await call_tool(slow, {})
    assert scope.cancelled_caught


# -- context ------------------------------------------------------------------------------------------


@tool
def remember(key: str, value: str, ctx: ToolContext) -> dict[str, Any]:
    """Store a value in the session, return what was there and the user."""
    session = ctx.agent.session()
    previous = session.get(key)
    session.set(key, value)
    return {"previous": previous, "user": ctx.variables().get("user")}


async def test_agent_context_is_visible_to_tools_and_per_session() -> None:
    alice = AgentContext("alice", variables={"user": "alice"})
    bob = AgentContext("bob", variables={"user": "bob"})
    assert (await call_tool(remember, {"key": "k", "value": "a1"}, alice))["result"] == {"previous": None, "user": "alice"}
    assert (await call_tool(remember, {"key": "k", "value": "b1"}, bob))["result"] == {"previous": None, "user": "bob"}
    assert (await call_tool(remember, {"key": "k", "value": "a2"}, alice))["result"] == {"previous": "a1", "user": "alice"}
    assert alice.session().as_dict() == {"k": "a2"} and bob.session().as_dict() == {"k": "b1"}
    # A ToolContext passes its agent through.
    ctx = ToolContext(remember.manifest, agent=bob)
    assert (await call_tool(remember, {"key": "k", "value": "b2"}, ctx))["result"]["previous"] == "b1"


async def test_sessions_do_not_share_state_under_concurrency() -> None:
    contexts = [AgentContext(f"s{i}", variables={"user": f"u{i}"}) for i in range(20)]
    results: dict[str, Any] = {}

    async def run(ctx: AgentContext) -> None:
        for n in range(3):
            out = await call_tool(remember, {"key": "k", "value": f"{ctx.session_id}-{n}"}, ctx)
            results.setdefault(ctx.session_id, []).append(out["result"])

    async with anyio.create_task_group() as tg:
        for c in contexts:
            tg.start_soon(run, c)
    for i, c in enumerate(contexts):
        assert [r["previous"] for r in results[c.session_id]] == [None, f"s{i}-0", f"s{i}-1"]
        assert {r["user"] for r in results[c.session_id]} == {f"u{i}"}


def test_contexts_start_empty_and_copy_variables() -> None:
    shared = {"user": "x"}
    a, b = AgentContext("a", shared), AgentContext("b", shared)
    a.variables()["user"] = "changed"
    assert b.variables() == {"user": "x"} and shared == {"user": "x"}
    a.session().set("k", 1)
    assert "k" in a.session() and "k" not in b.session()
    assert ToolContext(remember.manifest).agent is not ToolContext(remember.manifest).agent
    a.session().delete("k")
    assert a.session().get("k", "gone") == "gone"


# -- YAML -------------------------------------------------------------------------------------------------


@pytest.fixture
def impl_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module with tool functions; yields its name."""
    name = f"tools_impl_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def weather(city, days=1):
                return {"celsius": 20.5, "city": city}

            async def echo(text, ctx):
                return {"text": ctx.variables().get("prefix", "") + text}
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def tools_yaml(module: str) -> str:
    return textwrap.dedent(
        f"""\
        version: 1
        tools:
          weather:
            description: Weather for a city.
            impl: {module}:weather
            inputs:
              city:
                schema: {{type: string, minLength: 1}}
                description: City name
                examples: [Paris]
              days:
                schema: {{type: integer, minimum: 1, default: 1}}
            outputs:
              celsius: number
              city: {{schema: {{type: string}}, type_name: City}}
            capabilities: [network]
            permissions: [net:weather.example]
            resources:
              cache: {{kind: file_cache, options: {{dir: "${{CACHE_DIR}}"}}}}
          echo:
            impl: {module}:echo
            inputs: {{text: {{schema: {{type: string}}, format: text}}}}
            outputs: {{text: string}}
        """
    )


async def test_load_tools_from_yaml_and_call(impl_module: str, write: Any, tmp_path: Path) -> None:
    path = write("tools.yaml", tools_yaml(impl_module))
    registry = load_tools(path, env={"CACHE_DIR": str(tmp_path / "cache")})
    assert registry.names() == ["echo", "weather"]
    weather = registry.get("weather")
    m = weather.manifest
    assert m.description == "Weather for a city."
    assert m.inputs[0] == Port("city", {"type": "string", "minLength": 1}, description="City name", examples=["Paris"])
    assert m.outputs == [Port("celsius", {"type": "number"}, type_name="number"), Port("city", {"type": "string"}, type_name="City")]
    assert m.resources == [ResourceSpec("cache", "file_cache", {"dir": str(tmp_path / "cache")})]
    assert weather.origin == f"{path}:5"
    async with registry:
        assert await registry.call("weather", {"city": "Oslo"}) == {"celsius": 20.5, "city": "Oslo"}
        out = await registry.call("echo", {"text": "hi"}, AgentContext(variables={"prefix": "> "}))
        assert out == {"text": "> hi"}


async def test_yaml_impl_resolved_lazily_with_a_clear_error(write: Any) -> None:
    path = write("tools.yaml", "version: 1\ntools:\n  t:\n    impl: no_such_module_xyz.sub:fn\n")
    registry = load_tools(path)  # no import yet
    with pytest.raises(ToolError) as info:
        await registry.call("t", {})
    err = info.value
    assert err.code == "TOOL_IMPL_NOT_FOUND" and err.tool == "t"
    assert f"tool 't': cannot import 'no_such_module_xyz.sub' for impl 'no_such_module_xyz.sub:fn' ({path}:4)" in err.message
    with pytest.raises(ManifestError) as info2:
        load_tools(path, resolve=True)
    assert f"{path}:4: tools.t.impl: tool 't': cannot import" in messages(info2.value)[0]


def test_yaml_impl_missing_attribute(impl_module: str, write: Any) -> None:
    path = write("tools.yaml", f"version: 1\ntools:\n  t:\n    impl: {impl_module}:nope\n")
    with pytest.raises(ManifestError) as info:
        load_tools(path, resolve=True)
    assert "has no attribute 'nope'" in messages(info.value)[0]


BAD_TOOLS = """\
version: 1
tools:
  get weather:
    impl: nope
    inputs:
      city:
        schema: {type: strin}
      days:
        schema: {type: integer}
        fromat: json
      units: str
    outputs:
      r: {schema: {type: string}, examples: [1, ok]}
    capabilities: [net, net]
    resources:
      db: {kind: postgres}
      c: {kind: sqlite, options: {pth: x}}
  other:
    impl: a.b:c
    description: ${UNSET_VAR_FOR_TEST}
    permissions: nope
"""


def test_yaml_reports_every_issue_with_file_path_and_line(write: Any) -> None:
    path = write("bad.yaml", BAD_TOOLS)
    with pytest.raises(ManifestError) as info:
        load_tools(path, env={})
    assert messages(info.value) == [
        f"{path}:3: tools.get weather: tool name 'get weather' is not usable by providers: use letters, digits, _ and -, starting with a letter or _, at most 64 characters",
        f"{path}:4: tools.get weather.impl: impl 'nope' must look like package.module:function",
        f"{path}:7: tools.get weather.inputs.city.schema.type: not a valid JSON Schema: 'strin' is not valid under any of the given schemas",
        f"{path}:10: tools.get weather.inputs.days.fromat: unknown field 'fromat' (did you mean 'format'?)",
        f"{path}:11: tools.get weather.inputs.units: expected a port mapping or a JSON type (string, integer, number, boolean, array, object, null), got 'str'",
        f"{path}:13: tools.get weather.outputs.r.examples[0]: example does not fit the schema at $: 1 is not of type 'string'",
        f"{path}:14: tools.get weather.capabilities[1]: 'net' is listed twice",
        f"{path}:16: tools.get weather.resources.db.kind: tool 'get weather': resource 'db' has unknown kind 'postgres'; known: file_cache, http_client, sqlite",
        f"{path}:17: tools.get weather.resources.c.options: sqlite needs option 'path'",
        f"{path}:17: tools.get weather.resources.c.options.pth: unknown option 'pth' for sqlite; allowed: path, size, timeout",
        f"{path}:20: tools.other.description: environment variable UNSET_VAR_FOR_TEST is not set",
        f"{path}:21: tools.other.permissions: expected a list, got 'nope'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("tools: {}\n", ["1: field 'version' is required (use `version: 1`)"], id="no-version"),
        pytest.param("version: 2\ntools: {}\n", ["1: version: unsupported manifest version 2; this modelwire reads 1"], id="version"),
        pytest.param("version: 1\n", ["1: a tool manifest needs a `tools:` mapping"], id="no-tools"),
        pytest.param("- 1\n", ["1: a tool manifest must be a mapping, got a list"], id="list"),
        pytest.param("version: 1\ntools:\n  t: {impl: 'a:b'}\n  t: {impl: 'a:c'}\n",
                     ["4: invalid YAML: duplicate key 't' (first on line 3)"], id="duplicate-tool"),
        pytest.param("version: 1\ntools:\n  t:\n    impl: 'a:b'\n    inputs:\n      x: string\n      x: integer\n",
                     ["7: invalid YAML: duplicate key 'x' (first on line 6)"], id="duplicate-port"),
        pytest.param("version: 1\ntools:\n  t: {description: x}\n", ["3: tools.t.impl: required field is missing"], id="no-impl"),
        pytest.param("version: 1\ntools:\n  t: {impl: 'a:b', inputs: {x: {format: xml}}}\n",
                     ["3: tools.t.inputs.x.format: expected one of 'json', 'text', 'binary', got 'xml'"], id="format"),
        pytest.param("version: 1\ntools:\n  t: {impl: 'a:b', resources: {r: sqlite}}\n",
                     ["3: tools.t.resources.r: expected a mapping, got 'sqlite'"], id="resource-shape"),
        pytest.param("version: 1\ntools:\n  t: {impl: 'a:b', extra: 1}\n",
                     ["3: tools.t.extra: unknown field 'extra'; allowed: impl, description, inputs, outputs, capabilities, permissions, resources"],
                     id="unknown-field"),
    ],
)
def test_yaml_document_errors(text: str, expected: list[str]) -> None:
    tools, _doc, issues = parse_tools(text, "t.yaml", env={})
    assert tools == []
    assert [str(i).replace("t.yaml:", "", 1) for i in issues] == expected


def test_yaml_tool_defined_twice_names_both_files(write: Any) -> None:
    a = write("a.yaml", "version: 1\ntools:\n  t: {impl: 'm:f'}\n")
    b = write("b.yaml", "version: 1\ntools:\n  t: {impl: 'm:g'}\n")
    with pytest.raises(ManifestError, match=f"tool 't' is defined twice: in {a} and in {b}"):
        load_tools(a, b)


def test_yaml_directory_and_shared_pipelines_key(write: Any, tmp_path: Path) -> None:
    write("dir/a.yaml", "version: 1\ntools:\n  a: {impl: 'm:f'}\n")
    write("dir/b.yml", "version: 1\ntools:\n  b: {impl: 'm:f'}\npipelines: {}\n")
    assert load_tools(tmp_path / "dir").names() == ["a", "b"]


def test_load_tools_into_an_existing_registry_registers_nothing_on_error(write: Any) -> None:
    registry = ToolRegistry()
    registry.register(ToolBuilder("a").build(lambda: None))
    good = write("good.yaml", "version: 1\ntools:\n  b: {impl: 'm:f'}\n")
    clash = write("clash.yaml", "version: 1\ntools:\n  a: {impl: 'm:f'}\n  c: {impl: 'm:f'}\n")
    with pytest.raises(ManifestError, match=re.escape("tool 'a' is defined twice: in (already registered)")):
        load_tools(good, clash, registry=registry)
    assert registry.names() == ["a"]
    load_tools(good, registry=registry)
    assert registry.names() == ["a", "b"]


def test_unreadable_source_is_an_issue(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read tool manifest"):
        load_tools(tmp_path / "missing.yaml")


# -- the CLI ----------------------------------------------------------------------------------------------


def test_cli_check_tools_ok(cli: Any, write: Any, impl_module: str) -> None:
    path = write("tools.yaml", tools_yaml(impl_module).replace("${CACHE_DIR}", "/tmp/c"))
    result = cli("check", "--tools", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ok: {path}: 2 tools\n"


def test_cli_check_tools_prints_every_error(cli: Any, write: Any) -> None:
    bad = write("bad.yaml", BAD_TOOLS)
    broken = write("broken.yaml", "version: 1\ntools: [\n")
    result = cli("check", "--tools", str(bad), str(broken))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len([line for line in lines if line.startswith(f"error: {bad}:")]) == 12
    assert any(line.startswith(f"error: {broken}:") and "invalid YAML" in line for line in lines)
    assert result.stdout == ""


def test_cli_check_tools_resolve_impl(cli: Any, write: Any) -> None:
    path = write("t.yaml", "version: 1\ntools:\n  t: {impl: 'json:nope'}\n")
    assert cli("check", "--tools", str(path)).returncode == 0
    result = cli("check", "--tools", str(path), "--resolve-impl")
    assert result.returncode == 1
    assert f"error: {path}:3: tools.t.impl: tool 't': impl 'json:nope'" in result.stderr


def test_cli_check_needs_something_to_check(cli: Any) -> None:
    result = cli("check")
    assert result.returncode == 2
    assert "--tools" in result.stderr


def test_cli_check_manifests_and_tools_together(cli: Any, write: Any) -> None:
    tools = write("t.yaml", "version: 1\ntools:\n  t: {impl: 'json:dumps', inputs: {obj: {}}}\n")
    result = cli("check", "builtin:openai", "--tools", str(tools))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"ok: {tools}: 1 tool"


TOOLS_AND_PIPELINE = """\
version: 1
tools:
  upper:
    impl: json:dumps
    inputs: {obj: string}
    outputs: {result: string}
pipelines:
  shout:
    steps:
      a: {tool: upper, inputs: {obj: input.text}}
      b: {tool: TOOL_B, inputs: {obj: a.result}}
"""


def test_cli_check_tools_and_pipelines_in_one_file(cli: Any, write: Any) -> None:
    good = write("good.yaml", TOOLS_AND_PIPELINE.replace("TOOL_B", "upper"))
    result = cli("check", "--tools", str(good))
    assert (result.returncode, result.stdout) == (0, f"ok: {good}: 1 tool, 1 pipeline\n"), result.stderr
    bad = write("bad.yaml", TOOLS_AND_PIPELINE.replace("TOOL_B", "lower"))
    result = cli("check", "--tools", str(bad))
    assert result.returncode == 1
    assert f"error: {bad}:11: pipelines.shout.steps.b.tool: unknown tool 'lower'" in result.stderr


class Partial(TypedDict, total=False):
    found: bool
    value: str


async def test_optional_typeddict_outputs_may_be_left_out() -> None:
    @tool
    def lookup(key: str) -> Partial:
        """Find a key."""
        return {"found": False}

    assert [p.required for p in lookup.manifest.outputs] == [False, False]
    assert await call_tool(lookup, {"key": "k"}) == {"found": False}


async def test_bound_methods_work_and_unbound_methods_are_refused() -> None:
    class Store:
        def __init__(self) -> None:
            self.data = {"a": 1}

        def get(self, key: str) -> int:
            """Read a key."""
            return self.data[key]

    fetch = tool(name="fetch")(Store().get)
    assert [p.name for p in fetch.manifest.inputs] == ["key"]
    assert await call_tool(fetch, {"key": "a"}) == {"result": 1}
    with pytest.raises(ToolError, match="looks like a method's"):
        tool(Store.get)
