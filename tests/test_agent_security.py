"""The agent server's defences, over real HTTP against a running uvicorn on loopback.

Bearer-token auth, body / session-id / nesting limits, client roles, sessions
tied to their token, connection limits, a clean shutdown with an MCP server,
and the platform client's transport rules.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_server import (
    APP_MODULE,
    DONE,
    Platform,
    TestApp,
    config_text,
    free_port,
    sse_events,
    wait_for,
    wait_port,
)

from modelwire import ManifestError
from modelwire.agent import (
    AgentRuntime,
    create_asgi_app,
    load_agentapp_config,
    resolve_api_keys,
    uvicorn_options,
)
from modelwire.testing import ReplayServer, Script

from core_helpers import CLEAN_PLUGINS, modelwire_script

uvicorn = pytest.importorskip("uvicorn")

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def model() -> Iterator[ReplayServer]:
    with ReplayServer(seed=7, default=Script(text="Hello over SSE", usage=(3, 3))) as srv:
        yield srv


@contextmanager
def serve_app(app: Any, **options: Any) -> Iterator[tuple[str, Any]]:
    """uvicorn in a thread on a free loopback port; yields (base URL, uvicorn.Server)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
        **options,
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 20)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(15)


def make_agent(model: ReplayServer, tmp_path: Path, extra: str = "", app: TestApp | None = None) -> AgentRuntime:
    cfg = tmp_path / "agentapp.yaml"
    cfg.write_text(config_text(model) + extra)
    return AgentRuntime(cfg, env={}, app=app or TestApp(), install=False)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def invoke(c: httpx.Client, body: Any, token: str | None = "k1") -> list[tuple[str | None, Any]]:
    with c.stream("POST", "/invoke", json=body, headers=bearer(token) if token else None) as resp:
        assert resp.status_code == 200, resp.read()
        return list(sse_events(resp.iter_lines()))


@pytest.fixture
def authed(model: ReplayServer, tmp_path: Path) -> Iterator[httpx.Client]:
    extra = "server: {max_body_bytes: 1000, max_json_depth: 8}\n"
    app = create_asgi_app(make_agent(model, tmp_path, extra), api_keys=["k1", "k2"])
    with serve_app(app) as (url, _server), httpx.Client(base_url=url, timeout=20) as c:
        yield c


# -- 1. authentication ---------------------------------------------------------------------


def test_invoke_and_metrics_need_a_valid_bearer_token_and_health_stays_open(authed: httpx.Client) -> None:
    for method, path in (("POST", "/invoke"), ("GET", "/metrics")):
        for headers in ({}, bearer("wrong"), {"authorization": "Basic azE6"}, bearer("k1x")):
            resp = authed.request(method, path, json={"message": "Hi"}, headers=headers)
            assert resp.status_code == 401, (path, headers)
            assert resp.headers["www-authenticate"].startswith("Bearer")
            assert resp.json()["error"]["code"] == "UNAUTHORIZED"
    assert authed.get("/health").status_code == 200
    assert authed.get("/metrics", headers=bearer("k2")).status_code == 200
    events = invoke(authed, {"message": "Hi"}, token="k2")
    assert events[-1] == (None, DONE)


def test_tokens_come_from_modelwire_api_keys_and_the_configured_variable(
    model: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "agentapp.yaml"
    cfg.write_text(config_text(model) + "server: {api_keys_env: MY_KEYS}\n")
    config = load_agentapp_config(cfg, env={})
    assert resolve_api_keys(config, {"MODELWIRE_API_KEYS": "a, b,", "MY_KEYS": "c,a"}) == ["a", "b", "c"]
    assert resolve_api_keys(config, {}) == []
    monkeypatch.setenv("MODELWIRE_API_KEYS", "from-env")
    monkeypatch.setenv("MY_KEYS", "from-config")
    agent = AgentRuntime(cfg, env={}, app=TestApp(), install=False)
    with serve_app(create_asgi_app(agent)) as (url, _server), httpx.Client(base_url=url, timeout=20) as c:
        assert c.post("/invoke", json={"message": "Hi"}).status_code == 401
        assert invoke(c, {"message": "Hi"}, token="from-env")[-1] == (None, DONE)
        assert invoke(c, {"message": "Hi"}, token="from-config")[-1] == (None, DONE)


def test_tokens_are_never_logged(authed: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        authed.post("/invoke", json={"message": "Hi"}, headers=bearer("wrong-secret-token"))
        invoke(authed, {"message": "Hi", "metadata": {"mode": "boom"}}, token="k1")
    assert "wrong-secret-token" not in caplog.text and "Bearer k1" not in caplog.text


def test_modelwire_run_refuses_a_public_host_without_tokens(tmp_path: Path) -> None:
    (tmp_path / "agentapp.yaml").write_text("app: x:App\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    proc = subprocess.run(
        [modelwire_script(), "run", str(tmp_path), "--host", "0.0.0.0", "--port", str(free_port()), "--no-platform"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 1
    assert "refusing to serve 0.0.0.0 without API tokens" in proc.stderr and "--insecure" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- 2. request limits, roles, sessions ------------------------------------------------------


def raw_request(url: str, head: bytes, body: bytes) -> bytes:
    """Send a request head and part of a body on a socket; the response, as far as the server sends it."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head + body)
        out = b""
        while b"\r\n\r\n" not in out or not out.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_a_body_over_the_limit_is_413_without_reading_the_rest(authed: httpx.Client) -> None:
    url = str(authed.base_url).rstrip("/")
    # a declared length over the limit: answered before any of the body is sent
    head = (b"POST /invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 268435456\r\n\r\n")
    out = raw_request(url, head, b"")
    assert out.startswith(b"HTTP/1.1 413") and b"BODY_TOO_LARGE" in out
    # chunked: 2000 bytes sent, the rest never is
    head = (b"POST /invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    out = raw_request(url, head, b"7d0\r\n" + b" " * 2000 + b"\r\n")
    assert out.startswith(b"HTTP/1.1 413")
    # under the limit still works
    assert invoke(authed, {"message": "x" * 500})[-1] == (None, DONE)


@pytest.mark.parametrize("sid", ["s" * 129, "../etc", "a b", "é"])
def test_a_bad_session_id_is_400(authed: httpx.Client, sid: str) -> None:
    resp = authed.post("/invoke", json={"message": "Hi", "session_id": sid}, headers=bearer("k1"))
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "session_id"


def test_a_session_belongs_to_the_token_that_created_it(authed: httpx.Client) -> None:
    assert invoke(authed, {"message": "Hi", "session_id": "s" * 128}, token="k1")[-2][1]["content"] == {"turn": 1}
    resp = authed.post("/invoke", json={"message": "Hi", "session_id": "s" * 128}, headers=bearer("k2"))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "SESSION_NOT_FOUND"
    assert invoke(authed, {"message": "Hi", "session_id": "s" * 128}, token="k1")[-2][1]["content"] == {"turn": 2}


@pytest.mark.parametrize("role", ["system", "tool", "assistant"])
def test_clients_send_user_turns_only(authed: httpx.Client, role: str) -> None:
    resp = authed.post("/invoke", json={"message": {"role": role, "content": "x"}}, headers=bearer("k1"))
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["field"] == "message.role" and "allowed: user" in err["message"]


def test_the_config_may_allow_more_client_roles(model: ReplayServer, tmp_path: Path) -> None:
    agent = make_agent(model, tmp_path, "server: {client_roles: [user, system]}\n")
    with serve_app(create_asgi_app(agent, api_keys=[])) as (url, _s), httpx.Client(base_url=url, timeout=20) as c:
        assert invoke(c, {"message": {"role": "system", "content": "x"}}, token=None)[-1] == (None, DONE)
        assert c.post("/invoke", json={"message": {"role": "tool", "content": "x"}}).status_code == 400


@pytest.mark.parametrize("body", [b"[" * 200_000, b'{"message": "x", "metadata": ' + b'{"a": ' * 20 + b"1" + b"}" * 21])
def test_deep_nesting_is_400_not_a_recursion_error(authed: httpx.Client, body: bytes) -> None:
    body = body[:999]  # under the body limit
    resp = authed.post("/invoke", content=body, headers={**bearer("k1"), "content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "BAD_JSON"


def test_deep_nesting_under_a_large_body_limit_is_400(model: ReplayServer, tmp_path: Path) -> None:
    agent = make_agent(model, tmp_path, "server: {max_body_bytes: 10000000}\n")
    with serve_app(create_asgi_app(agent, api_keys=[])) as (url, _s), httpx.Client(base_url=url, timeout=20) as c:
        for body in (b"[" * 1_000_000 + b"]" * 1_000_000, b'{"message": "x", "metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
            resp = c.post("/invoke", content=body, headers={"content-type": "application/json"})
            assert resp.status_code == 400 and "nests deeper" in resp.json()["error"]["message"]
        assert c.get("/health").status_code == 200


# -- 3. connection limits ----------------------------------------------------------------------


def test_the_request_over_limit_concurrency_gets_503_quickly(model: ReplayServer, tmp_path: Path) -> None:
    agent = make_agent(model, tmp_path, "server: {limit_concurrency: 2, timeout_keep_alive: 2}\n")
    config = load_agentapp_config(tmp_path / "agentapp.yaml", env={})
    options = uvicorn_options(config.server)
    assert options["timeout_keep_alive"] == 2 and options["h11_max_incomplete_event_size"] == 16384
    body = {"message": "x", "metadata": {"mode": "slow", "steps": 200, "delay": 0.05}}
    with serve_app(create_asgi_app(agent, api_keys=[]), **options) as (url, _s), ExitStack() as stack:
        streams = []  # kept referenced: a dropped line iterator closes its response
        for _ in range(2):  # two streams running
            c = stack.enter_context(httpx.Client(base_url=url, timeout=20))
            resp = stack.enter_context(c.stream("POST", "/invoke", json=body))
            assert resp.status_code == 200
            streams.append(sse_events(resp.iter_lines()))
            assert next(streams[-1])[1]["content"] == "tick 0"
        t0 = time.monotonic()
        third = httpx.get(f"{url}/health", timeout=20)
        assert third.status_code == 503 and time.monotonic() - t0 < 5
    with serve_app(create_asgi_app(make_agent(model, tmp_path), api_keys=[]), **options) as (url, _s):
        assert httpx.get(f"{url}/health", timeout=20).status_code == 200


def test_oversized_request_headers_are_refused(model: ReplayServer, tmp_path: Path) -> None:
    agent = make_agent(model, tmp_path, "server: {h11_max_incomplete_event_size: 4096}\n")
    options = uvicorn_options(load_agentapp_config(tmp_path / "agentapp.yaml", env={}).server)
    assert options["h11_max_incomplete_event_size"] == 4096
    with serve_app(create_asgi_app(agent, api_keys=[]), **options) as (url, _s):
        # an unfinished request head over the limit is refused, not buffered on
        port = int(url.rsplit(":", 1)[1])
        # 120 s: a safety net far above the expected milliseconds (it failed at 20 s on a loaded machine)
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400") or answer == b""
        assert httpx.get(f"{url}/health", timeout=120).status_code == 200


# -- 4. clean shutdown with an MCP server --------------------------------------------------------

SHUTDOWN_APP = '''
import os
from modelwire.agent import AgentApp

class App(AgentApp):
    async def __call__(self, msg, ctx):
        yield ", ".join(self.runtime.tools.names())

    async def on_shutdown(self):
        with open(os.environ["SHUTDOWN_MARK"], "a") as fh:
            fh.write("on_shutdown\\n")
'''


@pytest.fixture
def mcp_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "servers" / "mcp_server.py"), "streamable-http", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def _mcp_project(tmp_path: Path, mcp_url: str) -> dict[str, str]:
    (tmp_path / "shutdown_app.py").write_text(SHUTDOWN_APP)
    (tmp_path / "agentapp.yaml").write_text(f'app: shutdown_app:App\nmcp_servers:\n  t: {{url: "{mcp_url}"}}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    env.update({"MODELWIRE_LOAD_PLUGINS": ",".join(CLEAN_PLUGINS), "SHUTDOWN_MARK": str(tmp_path / "mark"),
                "MODELWIRE_API_KEYS": "tok"})
    return env


def test_modelwire_run_with_an_mcp_server_shuts_down_cleanly(tmp_path: Path, mcp_server: str) -> None:
    env = _mcp_project(tmp_path, mcp_server)
    port = free_port()
    proc = subprocess.Popen([modelwire_script(), "run", str(tmp_path), "--port", str(port), "--no-platform"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc)  # uvicorn binds after the lifespan startup: MCP is connected
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as c:
            assert "add" in c.get("/health").json()["tools"]
            assert "greet" in "".join(d.get("content", "") for _, d in invoke(c, {"message": "Hi"}, token="tok")[:-1])
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "cancel scope" not in err and "shutdown failed" not in err
    assert "Application shutdown complete" in err
    assert (tmp_path / "mark").read_text() == "on_shutdown\n"


def test_modelwire_run_on_a_taken_port_shuts_down_cleanly(tmp_path: Path, mcp_server: str) -> None:
    env = _mcp_project(tmp_path, mcp_server)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([modelwire_script(), "run", str(tmp_path), "--port", str(port), "--no-platform"],
                              env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr and "cancel scope" not in proc.stderr
    assert "Application shutdown complete" in proc.stderr
    assert (tmp_path / "mark").read_text() == "on_shutdown\n"


# -- 5. the platform client ----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "ok"), [
    ("http://platform.example.com", False), ("ftp://127.0.0.1", False), ("https://platform.example.com", True),
    ("http://127.0.0.1:9", True), ("http://localhost:9", True), ("http://[::1]:9", True),
])
def test_the_platform_url_must_be_https_unless_loopback(tmp_path: Path, url: str, ok: bool) -> None:
    cfg = tmp_path / "agentapp.yaml"
    cfg.write_text(f'app: m:App\nplatform: {{url: "{url}"}}\n')
    if ok:
        assert load_agentapp_config(cfg, env={}).platform is not None
    else:
        with pytest.raises(ManifestError, match="must be https://"):
            load_agentapp_config(cfg, env={})


def test_a_pushed_config_over_plain_http_is_refused(model: ReplayServer, tmp_path: Path) -> None:
    import yaml

    platform = Platform()
    (tmp_path / "test_server_app.py").write_text(APP_MODULE)
    try:
        cfg = tmp_path / "agentapp.yaml"
        cfg.write_text(config_text(model) + f'platform: {{url: "{platform.url}", heartbeat_interval: 0.05, poll_interval: 0.05}}\n')
        with serve_app(create_asgi_app(AgentRuntime(cfg, env={}), api_keys=[])) as (_url, server):
            client = server.config.app.platform["platform"]
            new = yaml.safe_load(config_text(model))
            new["platform"] = {"url": "http://attacker.example.com", "headers": {"x-leak": "${HOME}"}}
            platform.config = {"version": "v2", "config": new}
            wait_for(lambda: "v2" in client.rejected, 20)
            assert "must be https://" in client.rejected["v2"]
            assert client.settings.url == platform.url
    finally:
        platform.close()
        sys.modules.pop("test_server_app", None)


def test_pushed_platform_headers_and_url_apply(model: ReplayServer, tmp_path: Path) -> None:
    import yaml

    first, second = Platform(), Platform()
    (tmp_path / "test_server_app.py").write_text(APP_MODULE)
    try:
        cfg = tmp_path / "agentapp.yaml"
        section = '{{url: "{}", heartbeat_interval: 0.05, poll_interval: 0.05, headers: {{authorization: {}}}}}'
        cfg.write_text(config_text(model) + "platform: " + section.format(first.url, "Bearer one") + "\n")
        with serve_app(create_asgi_app(AgentRuntime(cfg, env={}), api_keys=[])) as (_url, server):
            client = server.config.app.platform["platform"]
            wait_for(lambda: first.heartbeats, 20)
            assert first.heartbeats[-1]["_auth"] == "Bearer one"
            new = yaml.safe_load(config_text(model) + "platform: " + section.format(second.url, "Bearer two") + "\n")
            first.config = {"version": "v2", "config": new}
            wait_for(lambda: second.heartbeats, 20)
            assert second.heartbeats[-1]["_auth"] == "Bearer two" and second.heartbeats[-1]["config_version"] == "v2"
            assert client.settings.url == second.url
    finally:
        first.close()
        second.close()
        sys.modules.pop("test_server_app", None)


def test_a_pushed_config_reads_only_allowed_variables(model: ReplayServer, tmp_path: Path) -> None:
    """A platform push is a config from elsewhere: ``${VAR}`` may not pull a secret out of the environment."""
    import yaml

    platform = Platform()
    (tmp_path / "test_server_app.py").write_text(APP_MODULE)
    try:
        cfg = tmp_path / "agentapp.yaml"
        section = '{{url: "{}", heartbeat_interval: 0.05, poll_interval: 0.05, headers: {{x-leak: "{}"}}}}'
        cfg.write_text(config_text(model) + "platform: " + section.format(platform.url, "none") + "\n")
        env = {"SECRET_VAR": "s3cret-value-123"}
        with serve_app(create_asgi_app(AgentRuntime(cfg, env=env), api_keys=[])) as (_url, server):
            client = server.config.app.platform["platform"]
            wait_for(lambda: platform.heartbeats, 20)
            new = yaml.safe_load(
                config_text(model) + "platform: " + section.format(platform.url, "${SECRET_VAR}") + "\n"
            )
            platform.config = {"version": "v2", "config": new}
            wait_for(lambda: "v2" in client.rejected, 20)
            assert "SECRET_VAR" in client.rejected["v2"]
            assert all(h.get("x-leak") != "s3cret-value-123" for h in platform.heartbeats)
    finally:
        platform.close()
        sys.modules.pop("test_server_app", None)
