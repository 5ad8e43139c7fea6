"""``modelwire run`` / the ASGI app, through real HTTP against a running uvicorn.

The server runs in a thread (uvicorn on a free loopback port) or, for the
CLI, in a subprocess; the model behind the app is a ``ReplayServer``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from modelwire.agent import AgentApp, AgentRuntime, Msg, SessionContext, create_asgi_app
from modelwire.testing import ReplayServer, Script

from core_helpers import CLEAN_PLUGINS, modelwire_script

uvicorn = pytest.importorskip("uvicorn")

DONE = {"metadata": {"done": True}}
#: Every wait in this file is a safety net, far above the expected time (well
#: under a second each), so a loaded machine slows the tests but never fails them.
TIMEOUT = 60.0


class TestApp(AgentApp):
    """Answers by mode: the model's text, an error after one message, or slowly."""

    __test__ = False

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.started = threading.Event()

    async def __call__(self, msg: Msg, ctx: SessionContext) -> AsyncIterator[Msg | str]:
        mode = ctx.metadata.get("mode", "model")
        if mode == "model":
            async for piece in self.runtime.models.main.respond(msg.content):
                yield Msg(piece)
            ctx.state["n"] = ctx.state.get("n", 0) + 1
            yield Msg({"turn": ctx.state["n"]}, role="system")
        elif mode == "boom":
            yield "partial"
            raise RuntimeError("the app broke")
        elif mode == "model-error":
            await self.runtime.models.main.generate(msg.content)
            yield "unreachable"
        elif mode == "slow":
            self.started.set()
            try:
                for i in range(int(ctx.metadata.get("steps", 100))):
                    yield f"tick {i}"
                    await anyio.sleep(float(ctx.metadata.get("delay", 0.2)))
            except BaseException:
                self.cancelled.set()
                raise


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(srv: ReplayServer) -> str:
    return textwrap.dedent(f"""\
        app: test_server_app:App
        name: test-agent
        models:
          main: {{provider: openai, model: gpt-4.1-mini, api_key: sk-test, base_url: "{srv.url_for("openai")}"}}
        """)


@contextmanager
def serve(agent: AgentRuntime, graceful: float = TIMEOUT) -> Iterator[tuple[str, Any]]:
    """Run uvicorn in a thread; yields (base URL, uvicorn.Server)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_asgi_app(agent), host="127.0.0.1", port=port, log_level="warning", lifespan="on",
        timeout_graceful_shutdown=graceful,
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # a safety net: starting takes well under a second
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str | None, Any]]:
    """(event name, decoded data) per SSE event."""
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def invoke(client: httpx.Client, body: Any) -> list[tuple[str | None, Any]]:
    with client.stream("POST", "/invoke", json=body) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(resp.iter_lines()))


@pytest.fixture(scope="module")
def model() -> Iterator[ReplayServer]:
    with ReplayServer(seed=5, default=Script(text="Hello over SSE", usage=(3, 3))) as srv:
        yield srv


@pytest.fixture(scope="module")
def running(model: ReplayServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TestApp]]:
    cfg = tmp_path_factory.mktemp("agent") / "agentapp.yaml"
    cfg.write_text(config_text(model))
    app = TestApp()
    with serve(AgentRuntime(cfg, env={}, app=app, install=False)) as (url, _server):
        yield url, app


@pytest.fixture
def client(running: tuple[str, TestApp]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running[0], timeout=TIMEOUT) as c:
        yield c


# -- /invoke ----------------------------------------------------------------------------


def test_invoke_streams_messages_then_the_done_marker(client: httpx.Client, model: ReplayServer) -> None:
    events = invoke(client, {"message": "Hi", "session_id": "s1"})
    assert events[-1] == (None, DONE)
    msgs = [data for _, data in events[:-1]]
    assert "".join(m["content"] for m in msgs[:-1]) == "Hello over SSE"
    assert all(m["role"] == "assistant" and len(m["id"]) == 32 for m in msgs[:-1])
    assert msgs[-1]["content"] == {"turn": 1} and msgs[-1]["role"] == "system"
    assert model.requests[-1].json["messages"][-1]["content"] == "Hi"
    # the session remembers; another session starts over
    again = invoke(client, {"message": {"role": "user", "content": "again"}, "session_id": "s1"})
    assert again[-2][1]["content"] == {"turn": 2}
    other = invoke(client, {"message": "x", "session_id": "s2", "metadata": {"mode": "model"}})
    assert other[-2][1]["content"] == {"turn": 1}


def test_an_error_mid_stream_is_an_error_event_then_done(client: httpx.Client) -> None:
    events = invoke(client, {"message": "Hi", "metadata": {"mode": "boom"}})
    assert events == [
        (None, events[0][1]),
        ("error", {"error": {"kind": "internal", "code": "APP_ERROR", "message": "RuntimeError: the app broke"}}),
        (None, DONE),
    ]
    assert events[0][1]["content"] == "partial"


def test_a_model_error_keeps_its_kind_and_code(client: httpx.Client, model: ReplayServer) -> None:
    model.push(Script(status=401))
    events = invoke(client, {"message": "Hi", "metadata": {"mode": "model-error"}})
    name, data = events[0]
    assert name == "error" and data["error"]["kind"] == "auth"
    assert "sk-test" not in json.dumps(data)  # the key never reaches the client
    assert events[-1] == (None, DONE) and len(events) == 2


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param([1], None, "the body must be a JSON object", id="not-object"),
        pytest.param({}, "message", "message: required field is missing", id="missing"),
        pytest.param({"message": 3}, "message", "message: expected a string or an object", id="message-type"),
        pytest.param({"message": {"role": "user"}}, "message.content", "message.content: required field is missing", id="no-content"),
        pytest.param({"message": {"content": 1}}, "message.content", "message.content: expected a string or a list of content parts", id="content-type"),
        pytest.param({"message": {"content": "x", "role": 1}}, "message.role", "message.role: expected a string", id="role"),
        pytest.param({"message": {"content": "x", "colour": 1}}, "message.colour", "message.colour: unknown field; allowed: role, content, name, metadata", id="msg-extra"),
        pytest.param({"message": "x", "session_id": ""}, "session_id", "session_id: expected a non-empty string", id="session"),
        pytest.param({"message": "x", "metadata": []}, "metadata", "metadata: expected an object", id="metadata"),
        pytest.param({"message": "x", "sesion_id": "a"}, "sesion_id", "sesion_id: unknown field; allowed: message, session_id, metadata", id="extra"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client: httpx.Client, body: Any, field: str | None, message: str) -> None:
    resp = client.post("/invoke", json=body)
    assert resp.status_code == 400
    assert resp.json() == {"error": {"code": "BAD_BODY", "field": field, "message": message}}


def test_a_body_that_is_not_json_is_400(client: httpx.Client) -> None:
    resp = client.post("/invoke", content=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "BAD_JSON"


def test_wrong_method_and_path(client: httpx.Client) -> None:
    assert client.get("/invoke").status_code == 405
    assert client.get("/nope").status_code == 404


def test_a_client_that_disconnects_cancels_the_apps_work(client: httpx.Client, running: tuple[str, TestApp]) -> None:
    app = running[1]
    app.cancelled.clear()
    with client.stream("POST", "/invoke", json={"message": "x", "metadata": {"mode": "slow", "delay": 0.1}}) as resp:
        lines = resp.iter_lines()
        first = next(sse_events(lines))
        assert first[1]["content"] == "tick 0"
    # the response is closed mid-stream: the app's generator is cancelled
    assert app.cancelled.wait(TIMEOUT)
    assert client.get("/health").json()["in_flight"] == 0


# -- /health, /metrics --------------------------------------------------------------------


def test_health(client: httpx.Client) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "app": "test-agent", "models": ["main"], "tools": [], "in_flight": 0}


def test_metrics_are_prometheus_text(client: httpx.Client) -> None:
    invoke(client, {"message": "Hi"})
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'modelwire_agent_requests_total{outcome="ok"}' in text
    assert "modelwire_agent_streams_in_flight 0.0" in text
    assert 'modelwire_calls_total{model="@main",operator="generate",provider="openai@main"}' in text
    assert "gen_ai_client_operation_duration_seconds_bucket" in text


# -- lifecycle through the server ------------------------------------------------------------


def test_graceful_shutdown_lets_a_stream_in_flight_finish(model: ReplayServer, tmp_path: Path) -> None:
    cfg = tmp_path / "agentapp.yaml"
    cfg.write_text(config_text(model))
    app = TestApp()
    agent = AgentRuntime(cfg, env={}, app=app, install=False)
    with serve(agent) as (url, server), httpx.Client(base_url=url, timeout=TIMEOUT) as c:
        body = {"message": "x", "metadata": {"mode": "slow", "steps": 4, "delay": 0.2}}
        with c.stream("POST", "/invoke", json=body) as resp:
            events = sse_events(resp.iter_lines())
            got = [next(events)]
            server.should_exit = True  # what SIGTERM does
            got.extend(events)
    assert [d.get("content") for _, d in got[:-1]] == [f"tick {i}" for i in range(4)]
    assert got[-1] == (None, DONE)
    assert not app.cancelled.is_set()


def test_invoke_overhead_over_the_runtime(model: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A benchmark figure (printed, not asserted): /invoke vs the same model call in-process."""
    cfg = tmp_path / "agentapp.yaml"
    cfg.write_text(config_text(model))
    agent = AgentRuntime(cfg, env={}, app=TestApp(), install=False)
    # The in-process path gets a runtime of its own, started and closed in the
    # portal's event loop: sharing the served one would leave connections of
    # the portal's loop in its pool, closed after that loop ended (an
    # intermittent "unclosed socket" ResourceWarning in a later test).
    own = AgentRuntime(cfg, env={}, app=TestApp(), install=False)
    rounds = 200
    with serve(agent) as (url, _server), httpx.Client(base_url=url, timeout=TIMEOUT) as c:
        portal_cm = anyio.from_thread.start_blocking_portal()
        with portal_cm as portal, portal.wrap_async_context_manager(own):

            async def direct() -> None:
                async for _ in own.models.main.respond("Hi"):
                    pass

            for _ in range(20):  # warm both paths
                portal.call(direct)
                invoke(c, {"message": "Hi"})
            direct_times, invoke_times = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                portal.call(direct)
                direct_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                assert invoke(c, {"message": "Hi"})[-1] == (None, DONE)
                invoke_times.append(time.perf_counter() - t0)
    t_direct, t_invoke = statistics.median(direct_times), statistics.median(invoke_times)
    with capsys.disabled():
        print(
            f"\n[bench] direct model stream {t_direct * 1e3:.2f} ms, /invoke {t_invoke * 1e3:.2f} ms, "
            f"added {(t_invoke - t_direct) * 1e3:.2f} ms per request (medians of {rounds})"
        )


# -- `modelwire run` ------------------------------------------------------------------------


APP_MODULE = '''
import anyio
from modelwire.agent import AgentApp, Msg, get_agent_runtime

class App(AgentApp):
    async def __call__(self, msg, ctx):
        if ctx.metadata.get("slow"):
            for i in range(3):
                yield f"tick {i}"
                await anyio.sleep(0.3)
            return
        async for piece in get_agent_runtime().models.main.respond(msg.content):
            yield Msg(piece)
'''


def test_modelwire_run_serves_and_stops_gracefully_on_sigterm(model: ReplayServer, tmp_path: Path) -> None:
    (tmp_path / "test_server_app.py").write_text(APP_MODULE)
    (tmp_path / "agentapp.yaml").write_text(config_text(model))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    env["MODELWIRE_LOAD_PLUGINS"] = ",".join(CLEAN_PLUGINS)
    proc = subprocess.Popen(
        [modelwire_script(), "run", str(tmp_path), "--port", str(port), "--no-platform", "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=TIMEOUT).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "modelwire run did not come up"
            time.sleep(0.05)
        with httpx.Client(base_url=url, timeout=TIMEOUT) as c:
            events = invoke(c, {"message": "Hi"})
            assert "".join(d["content"] for _, d in events[:-1]) == "Hello over SSE"
            with c.stream("POST", "/invoke", json={"message": "x", "metadata": {"slow": True}}) as resp:
                it = sse_events(resp.iter_lines())
                got = [next(it)]
                proc.send_signal(signal.SIGTERM)
                got.extend(it)
        assert [d.get("content") for _, d in got] == ["tick 0", "tick 1", "tick 2", None]
        assert got[-1] == (None, DONE)
        # uvicorn re-raises the signal it caught once it has shut down
        assert proc.wait(TIMEOUT) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_modelwire_run_reports_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "agentapp.yaml").write_text("app: nocolon\nmodels: {m: {provider: openai}}\n")
    proc = subprocess.run(
        [modelwire_script(), "run", str(tmp_path), "--no-platform"], capture_output=True, text=True, timeout=2 * TIMEOUT,
    )
    assert proc.returncode == 1
    assert "agentapp.yaml:1: app: expected `module:Class`, got 'nocolon'" in proc.stderr
    assert "agentapp.yaml:2: models.m.model: required field is missing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_modelwire_run_reports_a_failing_startup_step(tmp_path: Path) -> None:
    (tmp_path / "agentapp.yaml").write_text("app: missing_module:App\n")
    proc = subprocess.run(
        [modelwire_script(), "run", str(tmp_path), "--port", str(free_port()), "--no-platform"],
        capture_output=True, text=True, timeout=2 * TIMEOUT,
    )
    assert proc.returncode == 1
    assert "agent startup failed at step 'load app': cannot import app module 'missing_module'" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- the example (examples/agent_app) -------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_app"


class ClockStub:
    """Stands in for ``_mcp.MCPClient`` on the example's clock server."""

    def __init__(self, config: Any) -> None:
        self.config = config

    async def connect(self) -> None:
        pass

    async def list_tools(self) -> list[Any]:
        import modelwire

        def current_time(timezone: str = "UTC") -> str:
            """The current time, ISO 8601."""
            return "2026-01-01T12:00:00+00:00"

        return [modelwire.tools.tool(current_time)]

    async def aclose(self) -> None:
        pass


@pytest.fixture
def _example_module() -> Iterator[None]:
    import sys

    yield
    sys.modules.pop("app", None)


@pytest.mark.usefixtures("_example_module")
def test_example_app_with_a_stub_mcp_client(model: ReplayServer) -> None:
    # the stub client never connects; the URL only has to be set
    env = {"MODEL_BASE_URL": model.url_for("openai"), "CLOCK_MCP_URL": "http://127.0.0.1:9/mcp"}
    agent = AgentRuntime(EXAMPLE / "agentapp.yaml", env=env, mcp_client_factory=ClockStub, install=False)
    with serve(agent) as (url, _server), httpx.Client(base_url=url, timeout=TIMEOUT) as c:
        assert c.get("/health").json()["tools"] == ["current_time"]
        events = invoke(c, {"message": "What time is it?", "session_id": "demo"})
    msgs = [d for _, d in events[:-1]]
    assert msgs[0]["role"] == "tool" and msgs[0]["content"]["result"] == "2026-01-01T12:00:00+00:00"
    assert "".join(m["content"] for m in msgs[1:-1]) == "Hello over SSE"
    assert msgs[-1]["content"] == {"turn": 1} and events[-1] == (None, DONE)
    sent = model.requests[-1].json
    assert "It is 2026-01-01T12:00:00+00:00" in sent["messages"][-1]["content"]
    assert sent["max_tokens"] == 200


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
                return
        except OSError:
            pass
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)


def test_example_as_the_readme_runs_it() -> None:
    """offline_backends.py, then `modelwire run examples/agent_app`, then a streaming POST /invoke."""
    import importlib.util
    import sys

    if importlib.util.find_spec("modelwire.tools._mcp") is None:
        pytest.skip("modelwire.tools._mcp (the MCP client) is not in this tree yet")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    env["MODELWIRE_LOAD_PLUGINS"] = ",".join(CLEAN_PLUGINS)
    # the backends pick free ports and run the server with MODEL_BASE_URL / CLOCK_MCP_URL set
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "offline_backends.py"), "--",
         modelwire_script(), "run", str(EXAMPLE), "--port", str(port), "--no-platform", "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_port(port, server)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as c:
            events = invoke(c, {"message": "What time is it?"})
        msgs = [d for _, d in events[:-1]]
        assert msgs[0]["name"] == "current_time" and msgs[0]["content"]["result"].endswith("+00:00")
        assert "Right now it is" in "".join(m["content"] for m in msgs[1:-1])
        assert events[-1] == (None, DONE)
    finally:
        server.terminate()  # passed on to `modelwire run`; then the backends stop
        try:
            server.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
    assert server.returncode == 0, server.returncode


# -- the platform client -----------------------------------------------------------------------


class Platform:
    """A loopback management platform: records heartbeats, serves /config."""

    def __init__(self) -> None:
        import http.server

        self.heartbeats: list[dict[str, Any]] = []
        self.polls: list[str] = []
        self.config: dict[str, Any] | None = None
        self.heartbeat_reply: dict[str, Any] | None = None  # sent once, then cleared
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                owner.heartbeats.append({**json.loads(body), "_auth": self.headers.get("authorization")})
                reply, owner.heartbeat_reply = owner.heartbeat_reply, None
                if reply is None:
                    self.send_response(204)
                    self.end_headers()
                    return
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                owner.polls.append(self.path)
                if owner.config is None:
                    self.send_response(204)
                    self.end_headers()
                    return
                data = json.dumps(owner.config).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(cond: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def platform_config(srv: ReplayServer, url: str, model_id: str = "gpt-4.1-mini") -> str:
    return config_text(srv).replace("gpt-4.1-mini", model_id) + textwrap.dedent(f"""\
        platform: {{url: "{url}", heartbeat_interval: 0.05, poll_interval: 0.05, max_backoff: 0.2,
                   headers: {{authorization: Bearer platform-token}}}}
        """)


def test_platform_heartbeats_and_a_config_update_restarts_gracefully(model: ReplayServer, tmp_path: Path) -> None:
    import sys

    import yaml

    platform = Platform()
    (tmp_path / "test_server_app.py").write_text(APP_MODULE)  # both runtimes import the app
    try:
        cfg = tmp_path / "agentapp.yaml"
        cfg.write_text(platform_config(model, platform.url))
        agent = AgentRuntime(cfg, env={})
        with serve(agent) as (url, server), httpx.Client(base_url=url, timeout=TIMEOUT) as c:
            invoke(c, {"message": "Hi", "session_id": "a"})
            wait_for(lambda: any(h["total_requests"] >= 1 for h in platform.heartbeats))
            beat = platform.heartbeats[-1]
            assert beat["app"] == "test-agent" and beat["active_sessions"] == 1
            assert beat["memory_usage_mb"] > 1 and beat["_auth"] == "Bearer platform-token"
            assert platform.polls and platform.polls[0].startswith("/config?app=test-agent")
            # a stream in flight on the old runtime...
            with c.stream("POST", "/invoke", json={"message": "x", "metadata": {"slow": True}}) as resp:
                events = sse_events(resp.iter_lines())
                got = [next(events)]
                # ...while the platform sends a new config (another model id, another name)
                new = yaml.safe_load(platform_config(model, platform.url, "gpt-4.1-nano"))
                new["name"] = "test-agent-v2"
                platform.config = {"version": "v2", "config": new}
                # the new runtime takes new requests while this stream is still running on the old one
                with httpx.Client(base_url=url, timeout=TIMEOUT) as other:
                    wait_for(lambda: other.get("/health").json()["app"] == "test-agent-v2")
                got.extend(events)
            assert [d.get("content") for _, d in got[:-1]] == ["tick 0", "tick 1", "tick 2"]
            assert got[-1] == (None, DONE)
            wait_for(lambda: c.get("/health").json()["app"] == "test-agent-v2")
            invoke(c, {"message": "Hi"})
            assert model.requests[-1].json["model"] == "gpt-4.1-nano"
            client = server.config.app.platform["platform"]
            assert client.applied == ["v2"] and client.version == "v2"
            wait_for(lambda: platform.heartbeats[-1]["config_version"] == "v2")
            # a bad config is refused, and the running one stays
            platform.config = {"version": "v3", "config": {"app": "nocolon"}}
            wait_for(lambda: "v3" in client.rejected)
            assert "app: expected `module:Class`" in client.rejected["v3"]
            assert c.get("/health").json()["app"] == "test-agent-v2"
    finally:
        platform.close()
        sys.modules.pop("test_server_app", None)


@pytest.mark.parametrize("where", ["heartbeat", "config"])
def test_a_platform_restart_action_swaps_in_a_fresh_runtime(model: ReplayServer, tmp_path: Path, where: str) -> None:
    import sys

    platform = Platform()
    (tmp_path / "test_server_app.py").write_text(APP_MODULE)
    try:
        cfg = tmp_path / "agentapp.yaml"
        cfg.write_text(platform_config(model, platform.url))
        agent = AgentRuntime(cfg, env={})
        with serve(agent) as (url, server), httpx.Client(base_url=url, timeout=TIMEOUT) as c:
            client = server.config.app.platform["platform"]
            wait_for(lambda: client.heartbeats >= 1)
            before = client.serving.agent
            if where == "heartbeat":
                platform.heartbeat_reply = {"action": "restart"}
            else:
                platform.config = {"action": "restart"}
            wait_for(lambda: client.restarts >= 1)
            platform.config = None
            assert client.serving.agent is not before and client.serving.agent.config is before.config
            invoke(c, {"message": "Hi"})  # the fresh runtime serves
            assert client.applied == [] and client.version is None  # same configuration, no new version
            # an action it does not know is ignored and the app keeps serving
            platform.heartbeat_reply = {"action": "self-destruct"}
            wait_for(lambda: platform.heartbeat_reply is None)
            invoke(c, {"message": "Hi again"})
    finally:
        platform.close()
        sys.modules.pop("test_server_app", None)


def test_platform_down_the_app_keeps_serving_and_the_client_backs_off(model: ReplayServer, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = tmp_path / "agentapp.yaml"
    cfg.write_text(platform_config(model, dead))
    agent = AgentRuntime(cfg, env={}, app=TestApp(), install=False)
    with serve(agent) as (url, server), httpx.Client(base_url=url, timeout=TIMEOUT) as c:
        client = server.config.app.platform["platform"]
        wait_for(lambda: client.failures >= 3)
        assert client.backoff == 0.2  # doubled from 0.05 up to max_backoff
        events = invoke(c, {"message": "Hi"})
        assert events[-1] == (None, DONE) and client.heartbeats == 0


def test_no_platform_flag_turns_the_client_off(model: ReplayServer, tmp_path: Path) -> None:
    cfg = tmp_path / "agentapp.yaml"
    cfg.write_text(platform_config(model, f"http://127.0.0.1:{free_port()}"))
    agent = AgentRuntime(cfg, env={}, app=TestApp(), install=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_asgi_app(agent, platform=False), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        assert server.config.app.platform["platform"] is None
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
