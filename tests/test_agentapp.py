"""The agent runtime: agentapp.yaml, the model registry, lifecycle, sessions (no HTTP server here).

Models are served by ``modelwire.testing.ReplayServer``; MCP clients are
stubs with the ``_mcp.MCPClient`` API (connect / list_tools / aclose), injected
through ``mcp_client_factory`` (the real client is tested in test_mcp.py).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import modelwire
from modelwire import ManifestError
from modelwire.agent import (
    AgentApp,
    AgentRuntime,
    AgentStartupError,
    InMemorySessionStore,
    Msg,
    SessionContext,
    load_agentapp_config,
)
from modelwire.testing import ReplayServer, Script
from modelwire.tools import Tool

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=3) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh(server: ReplayServer) -> None:
    server.reset()
    server.default = Script(text="Hello from the replay", usage=(4, 3))


APP_MODULE = '''
from modelwire.agent import AgentApp, Msg

EVENTS = []

class EchoApp(AgentApp):
    async def on_startup(self):
        EVENTS.append("on_startup")

    async def on_shutdown(self):
        EVENTS.append("on_shutdown")

    async def __call__(self, msg, ctx):
        ctx.state["turns"] = ctx.state.get("turns", 0) + 1
        async for piece in self.runtime.models.main.respond(msg.content):
            yield Msg(piece)
        yield Msg({"turns": ctx.state["turns"]}, role="system")
'''


def write_project(tmp_path: Path, body: str, module: str = APP_MODULE, name: str = "agentapp.yaml") -> Path:
    (tmp_path / "echo_app.py").write_text(textwrap.dedent(module))
    cfg = tmp_path / name
    cfg.write_text(textwrap.dedent(body))
    return cfg


def basic_config(srv: ReplayServer, extra: str = "") -> str:
    return f"""\
        app: echo_app:EchoApp
        name: echo
        models:
          main:
            provider: openai
            model: gpt-4.1-mini
            api_key: ${{TEST_KEY:-sk-test-1234}}
            base_url: {srv.url_for("openai")}
            generate_kwargs: {{max_tokens: 50, temperature: 0.5, top_p: 0.9}}
          second:
            provider: anthropic
            model: claude-sonnet-4-5
            api_key: ak-test
            base_url: {srv.url_for("anthropic")}
{textwrap.indent(textwrap.dedent(extra), " " * 8)}"""


@pytest.fixture(autouse=True)
def _unload_app_module() -> Iterator[None]:
    yield
    sys.modules.pop("echo_app", None)


# -- config --------------------------------------------------------------------------


def test_config_loads_and_expands_env(tmp_path: Path, server: ReplayServer) -> None:
    cfg = write_project(tmp_path, basic_config(server, """\
        mcp_servers:
          tools: {url: "http://127.0.0.1:1/mcp"}
          legacy: {url: "${MCP_URL}", transport: sse, headers: {x-token: t}}
        session: {ttl: 60, max_sessions: 5}
        """))
    config = load_agentapp_config(cfg, env={"TEST_KEY": "sk-from-env", "MCP_URL": "http://h/sse"})
    assert config.app == "echo_app:EchoApp"
    assert config.models["main"].api_key == "sk-from-env"
    assert config.models["main"].generate_kwargs == {"max_tokens": 50, "temperature": 0.5, "top_p": 0.9}
    tools, legacy = config.mcp_servers["tools"], config.mcp_servers["legacy"]
    assert (tools.transport, tools.timeout, tools.sse_read_timeout) == ("streamable_http", 30.0, 300.0)
    assert (legacy.url, legacy.transport, legacy.headers) == ("http://h/sse", "sse", {"x-token": "t"})
    assert (config.session.ttl, config.session.max_sessions, config.session.store) == (60, 5, "memory")
    assert config.file == str(cfg)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("app: x:Y\nmodels: {m: {provider: openai, model: g, api_key: '${NOPE}'}}\n",
                     ["agentapp.yaml:2: models.m.api_key: environment variable NOPE is not set"], id="unset-var"),
        pytest.param("app: x:Y\nmodles: {}\n", ["agentapp.yaml:2: modles: unknown field 'modles' (did you mean 'models'?)"], id="unknown-field"),
        pytest.param("app: nocolon\n", ["agentapp.yaml:1: app: expected `module:Class`, got 'nocolon'"], id="bad-app"),
        pytest.param("models: {}\n", ["agentapp.yaml:1: app: required field is missing"], id="missing-app"),
        pytest.param("app: x:Y\nmcp_servers:\n  a: {url: u, transport: websocket, timeout: soon}\n",
                     ["agentapp.yaml:3: mcp_servers.a.transport: expected one of 'streamable_http', 'sse', got 'websocket'",
                      "agentapp.yaml:3: mcp_servers.a.timeout: expected a number, got 'soon'"], id="mcp-fields"),
        pytest.param("app: x:Y\nmodels:\n  m: {provider: openai, model: g, client_kwargs: {proxy: p}}\n",
                     ["agentapp.yaml:3: models.m.client_kwargs.proxy: unknown client option 'proxy'; allowed: timeout, headers"],
                     id="client-kwargs"),
        pytest.param("app: x:Y\nsession: {store: redis}\n",
                     ["agentapp.yaml:2: session.store: expected `memory` or `module:factory`, got 'redis'"], id="store"),
        pytest.param("- a\n", ["agentapp.yaml:1: the config must be a mapping, got a list"], id="not-a-mapping"),
    ],
)
def test_config_errors_name_file_and_field(tmp_path: Path, body: str, expected: list[str]) -> None:
    cfg = tmp_path / "agentapp.yaml"
    cfg.write_text(body)
    with pytest.raises(ManifestError) as info:
        load_agentapp_config(cfg, env={})
    got = [str(i).replace(str(tmp_path) + "/", "") for i in info.value.issues]
    assert got == expected


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read config"):
        load_agentapp_config(tmp_path / "nope.yaml")


# -- models ----------------------------------------------------------------------------


async def test_model_registry(tmp_path: Path, server: ReplayServer) -> None:
    cfg = write_project(tmp_path, basic_config(server))
    async with AgentRuntime(cfg, env={}) as agent:
        models = agent.models
        assert models.main is models["main"]
        assert models.keys() == ["main", "second"]
        assert list(models) == ["main", "second"] and len(models) == 2
        assert "main" in models and "third" not in models
        with pytest.raises(AttributeError, match="no model named 'third'; configured: main, second"):
            models.third  # noqa: B018
        with pytest.raises(KeyError, match="no model named 'third'; configured: main, second"):
            models["third"]
        with pytest.raises(AttributeError):
            models._handles_copy  # noqa: B018
        with pytest.raises(AttributeError):
            models.main = None  # type: ignore[misc]

        resp = await models.main.generate("Hi")
        assert resp.text == "Hello from the replay"
        sent = server.requests[-1]
        assert sent.headers["authorization"] == "Bearer sk-test-1234"
        assert sent.json["model"] == "gpt-4.1-mini"
        assert sent.json["max_tokens"] == 50 and sent.json["temperature"] == 0.5
        assert sent.json["top_p"] == 0.9  # not a call keyword: into the body
        # a call's own keywords win over the config's
        await models.main.generate("Hi", max_tokens=7)
        assert server.requests[-1].json["max_tokens"] == 7

        events = [type(e).__name__ async for e in models.second.stream("Hi")]
        assert events[0] == "TextDelta" and "Usage" in events
        assert server.requests[-1].headers["x-api-key"] == "ak-test"
        assert server.requests[-1].path.endswith("/v1/messages")


async def test_two_entries_on_one_provider_keep_their_own_url_and_key(tmp_path: Path) -> None:
    with ReplayServer(seed=1) as a, ReplayServer(seed=2) as b:
        cfg = write_project(tmp_path, f"""\
            app: echo_app:EchoApp
            models:
              a: {{provider: openai, model: m1, api_key: key-aaaa, base_url: "{a.url_for("openai")}"}}
              b: {{provider: openai, model: m2, api_key: key-bbbb, base_url: "{b.url_for("openai")}",
                  client_kwargs: {{headers: {{x-team: blue}}, timeout: 5}}}}
            """)
        async with AgentRuntime(cfg, env={}) as agent:
            await agent.models.a.generate("x")
            await agent.models.b.generate("y")
        assert [r.headers["authorization"] for r in a.requests] == ["Bearer key-aaaa"]
        assert [(r.headers["authorization"], r.headers["x-team"]) for r in b.requests] == [("Bearer key-bbbb", "blue")]


async def test_dashscope_maps_to_the_openai_compatible_provider(tmp_path: Path, server: ReplayServer) -> None:
    cfg = write_project(tmp_path, f"""\
        app: echo_app:EchoApp
        models:
          qwen: {{provider: dashscope, model: qwen-plus}}
          local: {{provider: dashscope, model: qwen-max, base_url: "{server.url_for("openai")}"}}
        """)
    async with AgentRuntime(cfg, env={"DASHSCOPE_API_KEY": "ds-key-1234"}) as agent:
        provider = agent.runtime.catalog.providers["openai-compatible@qwen"]
        assert provider.base_url == "https://dashscope.aliyuncs.com/compatible-mode/v1"
        assert provider.auth.env == "DASHSCOPE_API_KEY"
        await agent.models.local.generate("Hi")
    assert server.requests[-1].headers["authorization"] == "Bearer ds-key-1234"
    assert server.requests[-1].json["model"] == "qwen-max"


async def test_unknown_provider_fails_at_create_models(tmp_path: Path) -> None:
    cfg = write_project(tmp_path, "app: echo_app:EchoApp\nmodels:\n  m: {provider: nosuch, model: x}\n")
    with pytest.raises(AgentStartupError) as info:
        await AgentRuntime(cfg, env={}).start()
    err = info.value
    assert err.step == "create models"  # type: ignore[attr-defined]
    assert "agentapp.yaml:3: models.m.provider: unknown provider 'nosuch'; known: anthropic, " in err.message
    assert "dashscope" in err.message.split("known: ", 1)[1]
    assert isinstance(err.__cause__, ManifestError)


async def test_a_manifest_provider_is_usable_by_name(tmp_path: Path, server: ReplayServer) -> None:
    (tmp_path / "mine.yaml").write_text(textwrap.dedent("""\
        version: 1
        providers:
          acme:
            base_url: http://unused.invalid
            auth: {type: bearer, env: ACME_KEY}
            operators:
              generate:
                path: /chat/completions
                parser: sse
                request: "{model: model, messages: messages, stream: `true`}"
                events:
                  - {data: "[DONE]", stop: true}
                  - {each: "choices[].delta.content", emit: {type: text, text: "@"}}
        """))
    cfg = write_project(tmp_path, f"""\
        app: echo_app:EchoApp
        manifests: [mine.yaml]
        models:
          main: {{provider: acme, model: acme-1, api_key: acme-secret, base_url: "{server.url_for("openai")}"}}
        """)
    async with AgentRuntime(cfg, env={}) as agent:
        assert (await agent.models.main.generate("Hi")).text == "Hello from the replay"
    assert server.requests[-1].headers["authorization"] == "Bearer acme-secret"


# -- lifecycle ---------------------------------------------------------------------------


class StubMCP:
    """The ``_mcp.MCPClient`` API, recording calls into ``log``."""

    def __init__(self, config: Any, log: list[str], fail_connect: bool = False) -> None:
        self.config, self.log, self.fail_connect = config, log, fail_connect

    async def connect(self) -> None:
        if self.fail_connect:
            raise ConnectionError(f"{self.config.name} refused")
        self.log.append(f"connect {self.config.name}")

    async def list_tools(self) -> list[Tool]:
        name = self.config.name

        async def fn(x: int) -> int:
            return x * 2

        fn.__name__ = f"{name}_double"
        fn.__doc__ = "Double x.\n\nArgs:\n    x: a number."
        return [modelwire.tools.tool(fn)]

    async def aclose(self) -> None:
        self.log.append(f"close {self.config.name}")


MCP_SERVERS = """\
    mcp_servers:
      first: {url: "http://127.0.0.1:1/mcp"}
      second: {url: "http://127.0.0.1:2/sse", transport: sse, timeout: 5}
    """


async def test_lifecycle_order_mcp_tools_and_accessor(tmp_path: Path, server: ReplayServer) -> None:
    cfg = write_project(tmp_path, basic_config(server, MCP_SERVERS))
    log: list[str] = []
    configs: list[Any] = []

    def factory(config: Any) -> StubMCP:
        configs.append(config)
        return StubMCP(config, log)

    agent = AgentRuntime(cfg, env={}, mcp_client_factory=factory)
    with pytest.raises(modelwire.InternalError, match="not started"):
        agent.models  # noqa: B018
    with pytest.raises(modelwire.InternalError, match="no agent runtime is running"):
        modelwire.agent.get_agent_runtime()
    async with agent:
        assert modelwire.agent.get_agent_runtime() is agent
        assert log == ["connect first", "connect second"]
        assert agent.tools.names() == ["first_double", "second_double"]
        assert await agent.tools.call("second_double", {"x": 4}) == {"result": 8}
        assert (configs[1].transport, configs[1].timeout, configs[1].sse_read_timeout) == ("sse", 5.0, 300.0)
        events = sys.modules["echo_app"].EVENTS
        assert events == ["on_startup"]
    assert events == ["on_startup", "on_shutdown"]
    assert log == ["connect first", "connect second", "close second", "close first"]
    with pytest.raises(modelwire.InternalError):
        modelwire.agent.get_agent_runtime()
    assert not agent.started


FAILING_APP = APP_MODULE + '''
class Failing(EchoApp):
    async def on_startup(self):
        raise RuntimeError("database down")
'''


@pytest.mark.parametrize(
    ("app", "fail_mcp", "step", "detail"),
    [
        pytest.param("echo_app:Failing", None, "on_startup", "RuntimeError: database down", id="on-startup"),
        pytest.param("echo_app:Missing", None, "load app", "module 'echo_app' has no 'Missing'", id="load-app"),
        pytest.param("nosuchmod:App", None, "load app", "cannot import app module 'nosuchmod'", id="import"),
        pytest.param("echo_app:EchoApp", "second", "connect MCP clients", "ConnectionError: second refused", id="mcp"),
    ],
)
async def test_a_failing_step_is_named_and_started_parts_shut_down(
    tmp_path: Path, server: ReplayServer, app: str, fail_mcp: str | None, step: str, detail: str
) -> None:
    body = basic_config(server, MCP_SERVERS).replace("echo_app:EchoApp", app)
    cfg = write_project(tmp_path, body, FAILING_APP)
    log: list[str] = []
    agent = AgentRuntime(
        cfg, env={}, mcp_client_factory=lambda c: StubMCP(c, log, fail_connect=c.name == fail_mcp)
    )
    with pytest.raises(AgentStartupError) as info:
        await agent.start()
    assert info.value.step == step  # type: ignore[attr-defined]
    assert info.value.message.startswith(f"agent startup failed at step {step!r}: {detail}")
    assert info.value.code == "AGENT_STARTUP_FAILED"
    # whatever was connected is closed again, in reverse order (a half-open client first)
    connected = [e.split()[1] for e in log if e.startswith("connect")]
    half_open = [f"close {fail_mcp}"] if fail_mcp else []
    assert [e for e in log if e.startswith("close")] == half_open + [f"close {n}" for n in reversed(connected)]
    assert not agent.started and agent._runtime is None
    if step == "on_startup":  # on_startup failed: on_shutdown is not called
        assert sys.modules["echo_app"].EVENTS == []
    with pytest.raises(modelwire.InternalError):
        modelwire.agent.get_agent_runtime()


async def test_mcp_without_the_mcp_module_or_factory(tmp_path: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelwire.tools._mcp", None)  # as if not installed
    monkeypatch.delattr(modelwire, "_mcp", raising=False)
    cfg = write_project(tmp_path, basic_config(server, MCP_SERVERS))
    with pytest.raises(AgentStartupError, match="'connect MCP clients': MCP support is not available"):
        await AgentRuntime(cfg, env={}).start()


# -- app and sessions -------------------------------------------------------------------


async def test_invoke_runs_the_app_and_keeps_session_state(tmp_path: Path, server: ReplayServer) -> None:
    cfg = write_project(tmp_path, basic_config(server))
    async with AgentRuntime(cfg, env={}) as agent:
        out = [m async for m in agent.invoke("Hi", session_id="s1")]
        assert "".join(m.content for m in out[:-1]) == "Hello from the replay"
        assert out[-1].content == {"turns": 1} and out[-1].role == "system"
        out = [m async for m in agent.invoke(Msg("again", role="user"), session_id="s1")]
        assert out[-1].content == {"turns": 2}
        out = [m async for m in agent.invoke("other", session_id="s2")]
        assert out[-1].content == {"turns": 1}
        assert await agent.sessions.count() == 2
        assert server.requests[-1].json["messages"][-1]["content"] == "other"


async def test_explicit_app_and_store_objects(tmp_path: Path, server: ReplayServer) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    class Inline(AgentApp):
        async def __call__(self, msg: Msg, ctx: SessionContext) -> AsyncIterator[Msg | str]:
            seen.append((ctx.session_id, ctx.metadata))
            yield "plain text"
            yield {"content": [1, 2], "role": "tool", "name": "calc"}

    store = InMemorySessionStore(ttl=None, max_sessions=None)
    cfg = write_project(tmp_path, basic_config(server))
    async with AgentRuntime(cfg, env={}, app=Inline(), session_store=store) as agent:
        assert agent.sessions is store
        out = [m async for m in agent.invoke("x", metadata={"user": "ann"})]
    assert [(m.role, m.content, m.name) for m in out] == [("assistant", "plain text", None), ("tool", [1, 2], "calc")]
    assert seen[0][1] == {"user": "ann"} and len(seen[0][0]) == 32  # a fresh session id


async def test_in_memory_store_expiry_and_lru() -> None:
    store = InMemorySessionStore(ttl=None, max_sessions=2)
    await store.save("a", {"n": 1})
    await store.save("b", {"n": 2})
    assert await store.load("a") == {"n": 1}  # a is now the most recent
    await store.save("c", {"n": 3})  # evicts b
    assert await store.count() == 2 and await store.load("b") == {}
    timed = InMemorySessionStore(ttl=0.0)
    await timed.save("x", {"n": 1})
    assert await timed.count() == 0
    state = await store.load("c")
    state["n"] = 99  # a copy: saved only by save()
    assert (await store.load("c"))["n"] == 3
    await store.delete("c")
    assert await store.load("c") == {}


def test_agent_app_is_abstract() -> None:
    with pytest.raises(TypeError):
        AgentApp()  # type: ignore[abstract]


def test_session_context_gives_tools_an_agent_context() -> None:
    ctx = SessionContext("s9", {"user": "bo"}, {"k": 1})
    agent_ctx = ctx.agent_context()
    assert agent_ctx.session_id == "s9" and agent_ctx.variables() == {"user": "bo"}
    agent_ctx.session().set("k", 2)
    assert ctx.state == {"k": 2}
