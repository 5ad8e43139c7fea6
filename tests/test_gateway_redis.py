"""Replicas sharing Redis: two ``modelwire serve`` processes behind the example's round-robin proxy.

A real ``redis-server`` (tests/servers/redis_server.py), two gateway
processes with ``--redis``, and ``examples/gateway/proxy.py`` in front: the
key's rpm and budget hold exactly across both replicas.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

import modelwire
from modelwire.gateway import hash_key
from modelwire.testing import ReplayServer, Script

from core_helpers import ROOT, modelwire_script
from servers.redis_server import free_port, redis_server

openai = pytest.importorskip("openai")
pytest.importorskip("redis")
pytest.importorskip("uvicorn")

USAGE = (10, 20)
#: safety net for startup and shutdown, far above the expected time (about a second)
TIMEOUT = 60.0
PROXY = ROOT / "examples" / "gateway" / "proxy.py"


def price_of(model: str) -> Decimal:
    spec = modelwire.Runtime.from_manifests("builtin:openai").catalog.models[model]
    assert spec.pricing is not None
    return (Decimal(USAGE[0]) * Decimal(str(spec.pricing.input_per_mtok))
            + Decimal(USAGE[1]) * Decimal(str(spec.pricing.output_per_mtok))) / 1_000_000


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(TIMEOUT)


@contextmanager
def replica(config: Path, redis_url: str, env: dict[str, str]) -> Iterator[int]:
    """One ``modelwire serve`` process; yields its port once /health answers."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")} | env
    proc = subprocess.Popen(
        [modelwire_script(), "serve", "--config", str(config), "--port", str(port), "--redis", redis_url],
        env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # readiness: the server answers /health (a safety-net deadline, not a timing)
            if proc.poll() is not None:
                raise RuntimeError(f"replica exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("replica did not start")
            time.sleep(0.05)
        yield port
    finally:
        _stop(proc)
        if proc.stderr:
            proc.stderr.close()


@contextmanager
def proxy(ports: list[int]) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(PROXY), "--port", "0", *(f"127.0.0.1:{p}" for p in ports)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()  # printed once it accepts connections
        assert line.startswith("listening on "), line
        yield "http://" + line.split()[-1]
    finally:
        _stop(proc)
        if proc.stdout:
            proc.stdout.close()


def test_two_replicas_admit_exactly_the_rpm_and_stop_exactly_at_the_budget(tmp_path: Path) -> None:
    budget = 3 * price_of("gpt-4.1-mini")
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""\
        manifests: ["builtin:openai"]
        keys:
          admin: {{hash: "{hash_key('sk-admin')}", admin: true}}
          limited: {{hash: "{hash_key('sk-limited')}", rpm: 5}}
          payer:
            hash: "{hash_key('sk-payer')}"
            budget: {{amount: "{budget}", currency: USD, period: month}}
        """))
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server())
        srv = stack.enter_context(ReplayServer(default=Script(text="ok", usage=USAGE)))
        env = {"OPENAI_BASE_URL": srv.url_for("openai"), "OPENAI_API_KEY": "sk-provider"}
        ports = [stack.enter_context(replica(config, redis.url, env)) for _ in range(2)]
        url = stack.enter_context(proxy(ports))
        # a new connection per request: the proxy alternates replicas
        http = stack.enter_context(httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)))
        assert len({http.get(url + "/health").json()["pid"] for _ in range(4)}) == 2

        def outcomes(key: str, n: int) -> list[str]:
            client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, http_client=http)
            out = []
            for _ in range(n):
                try:
                    resp = client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
                    out.append(str(resp.choices[0].message.content))
                except openai.RateLimitError as exc:
                    out.append(str(exc.body["code"]))
            return out

        assert outcomes("sk-limited", 12) == ["ok"] * 5 + ["key_rpm_limit"] * 7
        assert outcomes("sk-payer", 6) == ["ok"] * 3 + ["budget_exceeded"] * 3
        assert len(srv.requests) == 8  # refused requests never reached the provider
        reports = [httpx.get(f"http://127.0.0.1:{p}/v1/usage", headers={"authorization": "Bearer sk-admin"}).json()
                   for p in ports]
        assert reports[0] == reports[1]  # one shared ledger
        payer = reports[0]["keys"]["payer"]
        assert Decimal(payer["spent"]) == budget
        assert payer["models"]["gpt-4.1-mini"]["requests"] == 3


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker processes from /proc")
def test_workers_serve_from_separate_processes_sharing_redis(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f'manifests: ["builtin:openai"]\nkeys: {{k: {{hash: "{hash_key("sk-k")}", rpm: 4}}}}\n')
    with redis_server() as redis, ReplayServer(default=Script(text="ok")) as srv:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
        env |= {"OPENAI_BASE_URL": srv.url_for("openai"), "OPENAI_API_KEY": "sk-provider"}
        proc = subprocess.Popen(
            [modelwire_script(), "serve", "--config", str(config), "--port", str(port), "--redis", redis.url,
             "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        workers: set[int] = set()
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + TIMEOUT
            while True:  # readiness (a safety-net deadline)
                assert proc.poll() is None, "serve exited"
                try:
                    if httpx.get(url + "/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
            while len(_children(proc.pid)) < 2:  # uvicorn spawns the workers one after the other
                assert time.monotonic() < deadline, "serve did not start its workers"
                time.sleep(0.05)
            pids = {httpx.get(url + "/health").json()["pid"] for _ in range(4)}
            workers = _children(proc.pid)
            assert pids <= workers and len(workers) >= 2
            client = openai.OpenAI(base_url=url + "/v1", api_key="sk-k", max_retries=0,
                                   http_client=httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)))
            got = []
            for _ in range(6):
                try:
                    got.append(client.chat.completions.create(
                        model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}]).choices[0].message.content)
                except openai.RateLimitError:
                    got.append("429")
            assert got == ["ok"] * 4 + ["429"] * 2  # whichever worker answered, one shared count
        finally:
            _stop(proc)
            for pid in workers:  # uvicorn stops its workers; make sure
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass


def test_keys_stored_in_redis_are_accepted_by_every_replica() -> None:
    import json

    import redis as redis_py

    from modelwire.gateway import GatewayConfig

    from gateway_helpers import running_gateway

    with redis_server() as redis, ReplayServer(default=Script(text="ok", usage=USAGE)) as srv:
        store = redis_py.Redis.from_url(redis.url)
        digest = hash_key("sk-from-redis").split(":")[1]
        store.hset("modelwire:gw:keys", digest, json.dumps({"name": "stored", "rpm": 2, "models": ["gpt-*"]}))
        store.hset("modelwire:gw:keys", hash_key("sk-broken").split(":")[1], "{not json")
        admin = hash_key("sk-admin")
        config = GatewayConfig(keys={"admin": modelwire.gateway.VirtualKey(hash=admin, admin=True)}, redis_keys=True)
        with running_gateway(srv, config, redis=redis.url) as (url, _a), running_gateway(srv, config, redis=redis.url) as (url2, _b):
            def ask(base: str, key: str) -> int:
                return httpx.post(base + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                  json={"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "x"}]}).status_code
            assert [ask(url, "sk-from-redis"), ask(url2, "sk-from-redis"), ask(url, "sk-from-redis")] == [200, 200, 429]
            assert ask(url, "sk-broken") == 401 and ask(url2, "sk-unknown") == 401
            report = httpx.get(url2 + "/v1/usage", headers={"authorization": "Bearer sk-admin"}).json()
            assert report["keys"]["stored"]["models"]["gpt-4.1-mini"]["requests"] == 2
        store.close()
