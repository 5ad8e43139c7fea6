"""End to end over loopback: modelwire against raw httpx (the floor) and the openai SDK.

The server runs in a separate process (``bench_server.py``) so that
``time.process_time()`` here counts the client's CPU only. Each client is
created once, outside any timing (an httpx client costs ~0.4 s to create),
and warmed up with one request (connections opened, manifests compiled).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_corpora import text_pieces

__all__ = ["CLIENTS", "ServerProcess", "make_client"]

HERE = Path(__file__).resolve().parent
MODEL = "gpt-4.1"
PROMPT = "Write a long story."
API_KEY = "sk-bench-0000"
#: Keep-alive connections: modelwire's and the openai SDK's default.
POOL = 100


class ServerProcess:
    """``bench_server.py`` in a child process: ``urls[name]`` is each server's base URL."""

    def __init__(self, **streams: int) -> None:
        self.streams = streams
        self.urls: dict[str, str] = {}
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        args = [f"{name}={count}" for name, count in self.streams.items()]
        self._proc = subprocess.Popen(
            [sys.executable, str(HERE / "bench_server.py"), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=30)
            raise RuntimeError(f"bench_server.py exited with {self._proc.returncode}")
        self.urls = json.loads(line)
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- clients -------------------------------------------------------------------------------


class ModelwireClient:
    """``Runtime.stream`` from the bundled OpenAI manifest, every event consumed."""

    label = "modelwire Runtime.stream"

    def __init__(self, base_url: str, pool: int = POOL) -> None:
        import modelwire

        env = {"OPENAI_BASE_URL": base_url + "/openai/v1", "OPENAI_API_KEY": API_KEY}
        self.own_client = None
        if pool > POOL:
            import httpx

            # modelwire's own client, but keeping `pool` connections alive.
            self.own_client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=pool),
                follow_redirects=False,
            )
        self.rt = modelwire.Runtime.from_manifests("builtin:openai", env=env, http_client=self.own_client)
        self.rt._http()  # create the pooled httpx client now, not in the first timing

    async def stream(self) -> tuple[int, str]:
        from modelwire import TextDelta

        n = 0
        text: list[str] = []
        async for ev in self.rt.stream(MODEL, PROMPT):
            n += 1
            if type(ev) is TextDelta:
                text.append(ev.text)
        return n, "".join(text)

    async def aclose(self) -> None:
        await self.rt.aclose()
        if self.own_client is not None:
            await self.own_client.aclose()


class HttpxClient:
    """The floor: raw httpx streaming, ``aiter_lines`` and json.loads of each data line."""

    label = "raw httpx + json.loads (floor)"

    def __init__(self, base_url: str, pool: int = POOL) -> None:
        import httpx

        self.url = base_url + "/openai/v1/chat/completions"
        # The same pool limits as modelwire's own client.
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max(pool, POOL))
        )
        self.headers = {"authorization": f"Bearer {API_KEY}"}
        self.body = {
            "model": MODEL, "messages": [{"role": "user", "content": PROMPT}],
            "stream": True, "stream_options": {"include_usage": True},
        }

    async def stream(self) -> tuple[int, str]:
        loads = json.loads
        n = 0
        text: list[str] = []
        async with self.client.stream("POST", self.url, json=self.body, headers=self.headers) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    data = line[6:]
                    n += 1
                    if data != "[DONE]":
                        chunk = loads(data)
                        for choice in chunk["choices"]:
                            content = choice["delta"].get("content")
                            if content:
                                text.append(content)
        return n, "".join(text)

    async def aclose(self) -> None:
        await self.client.aclose()


class OpenAIClient:
    """The openai SDK: ``AsyncOpenAI(max_retries=0)``, a streamed chat completion."""

    label = "openai SDK AsyncOpenAI"

    def __init__(self, base_url: str, pool: int = POOL) -> None:
        import openai

        http_client = None
        if pool > POOL:
            import httpx2

            http_client = openai.DefaultAsyncHttpxClient(
                limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=pool)
            )
        # Its default connect timeout (5 s) trips on a loaded 2-core machine
        # while 200 streams keep the event loop busy.
        self.client = openai.AsyncOpenAI(
            base_url=base_url + "/openai/v1", api_key=API_KEY, max_retries=0, timeout=600.0,
            http_client=http_client,
        )

    async def stream(self) -> tuple[int, str]:
        n = 0
        text: list[str] = []
        stream = await self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            n += 1
            for choice in chunk.choices:
                if choice.delta.content:
                    text.append(choice.delta.content)
        return n, "".join(text)

    async def aclose(self) -> None:
        await self.client.close()


CLIENTS: dict[str, Any] = {"modelwire": ModelwireClient, "httpx": HttpxClient, "openai": OpenAIClient}


def make_client(key: str, base_url: str, pool: int = POOL) -> Any:
    """A client; ``pool`` > 100 keeps that many connections alive (all clients alike),
    so concurrent rounds after the warm-up reuse connections instead of opening them."""
    return CLIENTS[key](base_url, pool)


def wire_events(pieces: int) -> int:
    """SSE events of one served stream: role delta, pieces, finish, usage, [DONE]."""
    return pieces + 4


async def check(client: Any, pieces: int) -> None:
    """One warm-up stream that must carry exactly the scripted text."""
    _, text = await client.stream()
    want = "".join(text_pieces(pieces))
    if text != want:
        raise AssertionError(f"{client.label}: got {len(text)} chars of text, want {len(want)}")


# -- measurements -------------------------------------------------------------------------------


async def warm_pool(client: Any, concurrency: int) -> None:
    """Open ``concurrency`` connections (tolerating a slow connect once), then prove them."""
    await asyncio.gather(*(client.stream() for _ in range(concurrency)), return_exceptions=True)
    await asyncio.gather(*(client.stream() for _ in range(concurrency)))


async def timed_streams(client: Any, concurrency: int) -> tuple[float, float]:
    """Run ``concurrency`` streams at once; (wall seconds, client CPU seconds)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    if concurrency == 1:
        await client.stream()
    else:
        await asyncio.gather(*(client.stream() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu


async def per_request_latencies(
    pair: dict[str, Any], requests: int, warmup: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Sequential short streams from two clients taking turns, the first mover
    alternating, so drift and whatever one client leaves behind (garbage for
    the collector, cold caches) land on both alike. Per client: (wall, CPU) seconds."""
    out: dict[str, tuple[list[float], list[float]]] = {key: ([], []) for key in pair}
    keys = list(pair)
    for i in range(warmup + requests):
        for key in keys if i % 2 == 0 else keys[::-1]:
            client = pair[key]
            t, c = time.perf_counter(), time.process_time()
            await client.stream()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            if i >= warmup:
                out[key][0].append(wall)
                out[key][1].append(cpu)
    return out


def cpu_note() -> str:
    return f"client process only; {os.cpu_count()} CPUs shared with the server process"
