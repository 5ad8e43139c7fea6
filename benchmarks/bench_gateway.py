"""The gateway against LiteLLM's proxy, on the same loopback provider, in the same run.

Contestants, each in its own process, each in front of one
``modelwire.testing`` replay server (``bench_server.py``, OpenAI format,
short answers):

- ``direct``: the client calls the replay server itself (the floor);
- ``modelwire``: ``modelwire serve`` (one worker, no keys);
- ``litellm``: ``litellm --config`` (LiteLLM's proxy, from ``litellm[proxy]``),
  when the ``litellm`` command is installed; otherwise skipped with the reason.

Figures: the latency each adds per request over ``direct`` (sequential
requests, contestants interleaved round by round, streamed and whole), and
requests per second per core (concurrent requests; requests divided by the
CPU seconds the proxy process used, read from ``/proc``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = "gpt-4.1-mini"
#: the bearer every contestant is sent (LiteLLM's proxy needs a strong master key; the others ignore it)
KEY = "sk-bench-4f9c2e7a1b8d6053e2a9c4b7f1d08e63"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 50}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class Proxy:
    """A proxy process serving the OpenAI API at ``url`` (``/v1``...)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], health: str, port: int) -> None:
        self.name, self.args, self.env, self.health, self.port = name, args, env, health, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> Proxy:
        import httpx

        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180  # LiteLLM's proxy takes seconds to import
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{self.name} exited: {self.log.read()[-1500:].decode(errors='replace')}")
            try:
                if httpx.get(self.url + self.health, timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def modelwire_proxy(provider: str) -> Proxy:
    port = free_port()
    exe = shutil.which("modelwire") or str(Path(sys.executable).parent / "modelwire")
    env = {**os.environ, "OPENAI_BASE_URL": provider, "OPENAI_API_KEY": "sk-bench"}
    return Proxy("modelwire", [exe, "serve", "-m", "builtin:openai", "--port", str(port)], env, "/health", port)


def litellm_proxy(provider: str, tmp: Path) -> Proxy:
    exe = shutil.which("litellm") or str(Path(sys.executable).parent / "litellm")
    if not Path(exe).exists():
        raise FileNotFoundError("the litellm command is not installed (pip install 'litellm[proxy]')")
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {provider}\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  num_retries: 0\n"
    )
    port = free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "LITELLM_MASTER_KEY": KEY,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_DOCS": "True"}
    return Proxy("litellm", [exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "1"], env, "/health/liveliness", port)


async def _one(client: Any, url: str, stream: bool) -> float:
    body = {**BODY, "stream": stream}
    t = time.perf_counter()
    if stream:
        async with client.stream("POST", url, json=body, headers={"authorization": f"Bearer {KEY}"}) as resp:
            if resp.status_code != 200:
                raise RuntimeError(f"{url}: {resp.status_code} {(await resp.aread())[:300]!r}")
            async for _ in resp.aiter_raw():
                pass
    else:
        resp = await client.post(url, json=body, headers={"authorization": f"Bearer {KEY}"})
        if resp.status_code != 200:
            raise RuntimeError(f"{url}: {resp.status_code} {resp.text[:300]}")
    return time.perf_counter() - t


async def latencies(urls: dict[str, str], requests: int, warmup: int, stream: bool) -> dict[str, list[float]]:
    """Sequential requests, contestants interleaved (rotating order) each round."""
    import httpx

    out: dict[str, list[float]] = {k: [] for k in urls}
    names = list(urls)
    async with httpx.AsyncClient(timeout=60) as client:
        for i in range(warmup + requests):
            order = names[i % len(names):] + names[: i % len(names)]
            for name in order:
                took = await _one(client, urls[name], stream)
                if i >= warmup:
                    out[name].append(took)
    return out


async def throughput(url: str, pid: int, requests: int, concurrency: int, stream: bool) -> tuple[float, float]:
    """(requests/s wall, requests per CPU-second of process ``pid``) for ``requests`` at ``concurrency``."""
    import httpx

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(_one(client, url, stream) for _ in range(concurrency)))  # warm the pool
        queue = list(range(requests))

        async def worker() -> None:
            while queue:
                queue.pop()
                await _one(client, url, stream)

        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    return requests / wall, requests / cpu if cpu > 0 else float("nan")
