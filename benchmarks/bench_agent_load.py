"""Load held by ``modelwire run`` with auth on: N concurrent /invoke streams.

``python benchmarks/bench_agent_load.py [--streams 200]``: starts a
ReplayServer (the model), then ``modelwire run`` in a subprocess on loopback
with ``MODELWIRE_API_KEYS`` set, fires N concurrent authenticated streaming
POST /invoke requests with one ``httpx.AsyncClient``, and prints completed
count, errors, p50/p99 latency (request to done marker) and the server's
peak RSS (VmHWM). Not a timed test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

from modelwire.testing import ReplayServer, Script

APP = '''
from modelwire.agent import AgentApp, Msg, get_agent_runtime

class App(AgentApp):
    async def __call__(self, msg, ctx):
        async for piece in get_agent_runtime().models.main.respond(msg.content):
            yield Msg(piece)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one(client: httpx.AsyncClient, i: int) -> float:
    t0 = time.perf_counter()
    async with client.stream("POST", "/invoke", json={"message": f"hi {i}", "session_id": f"s{i}"}) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}")
        last = ""
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                last = line
        if json.loads(last[5:]) != {"metadata": {"done": True}}:
            raise RuntimeError("no done marker")
    return time.perf_counter() - t0


async def load(url: str, n: int, token: str) -> tuple[list[float], list[str], float]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits,
                                 headers={"authorization": f"Bearer {token}"}) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(client, i) for i in range(n)), return_exceptions=True)
        wall = time.perf_counter() - t0
    times = [r for r in results if isinstance(r, float)]
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return times, errors, wall


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    token = "bench-token"
    script = Script(text=[f"piece {i} " for i in range(20)], usage=(3, 20))
    with ReplayServer(seed=1, default=script) as model, tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "bench_app.py").write_text(APP)
        (project / "agentapp.yaml").write_text(textwrap.dedent(f"""\
            app: bench_app:App
            name: bench
            models:
              main: {{provider: openai, model: gpt-4.1-mini, api_key: sk-test, base_url: "{model.url_for("openai")}"}}
            """))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
        env["MODELWIRE_API_KEYS"] = token
        exe = Path(sys.executable).parent / "modelwire"
        proc = subprocess.Popen([str(exe), "run", str(project), "--port", str(port), "--no-platform",
                                 "--log-level", "warning"], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("modelwire run did not come up")
                time.sleep(0.05)
            assert httpx.post(f"{url}/invoke", json={"message": "x"}).status_code == 401
            for r in range(args.rounds):
                times, errors, wall = asyncio.run(load(url, args.streams, token))
                print(json.dumps({
                    "round": r + 1, "streams": args.streams, "completed": len(times), "errors": len(errors),
                    "first_error": errors[0] if errors else None,
                    "p50_ms": round(pct(times, 50) * 1e3, 1), "p99_ms": round(pct(times, 99) * 1e3, 1),
                    "wall_s": round(wall, 2), "server_peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
                }))
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
