"""Two gateway replicas sharing Redis behind a round-robin proxy, all on loopback, offline.

    python examples/gateway/run.py

Starts ``redis-server`` on a free port, a ``modelwire.testing`` replay server
standing in for every provider, two ``modelwire serve --redis`` replicas and
``proxy.py`` in front of them; then sends eight requests through the proxy
with the official openai SDK on a key limited to 5 requests per minute, and
prints what each got and the shared ledger from ``/v1/usage``. Everything is
stopped at the end. Needs ``redis-server`` on PATH and ``modelwire[gateway]``
plus ``openai``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import openai

from modelwire.testing import ReplayServer, Script

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def started(stack: ExitStack, args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, **kwargs)  # type: ignore[call-overload]
    stack.callback(lambda: (proc.terminate(), proc.wait(30)))
    return proc


def main() -> None:
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is not on PATH (apt-get install redis-server)")
    modelwire = shutil.which("modelwire") or str(Path(sys.executable).parent / "modelwire")
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        redis_port = free_port()
        started(stack, [redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        srv = stack.enter_context(ReplayServer(default=Script(text="Hello from a loopback provider.", usage=(10, 20))))
        env = {**os.environ, "OPENAI_BASE_URL": srv.url_for("openai"), "OPENAI_API_KEY": "sk-provider",
               "ANTHROPIC_BASE_URL": srv.url_for("anthropic"), "ANTHROPIC_API_KEY": "sk-provider",
               "GEMINI_BASE_URL": srv.url_for("gemini"), "GEMINI_API_KEY": "sk-provider",
               "OLLAMA_BASE_URL": srv.url_for("ollama")}
        ports = []
        for _ in range(2):
            port = free_port()
            proc = started(stack, [modelwire, "serve", "--config", str(HERE / "gateway.yaml"), "--port", str(port),
                                   "--redis", f"redis://127.0.0.1:{redis_port}/0"], env=env)
            wait_until_up(f"http://127.0.0.1:{port}/health", proc)
            ports.append(port)
        proxy = started(stack, [sys.executable, str(HERE / "proxy.py"), "--port", "0",
                                *(f"127.0.0.1:{p}" for p in ports)], stdout=subprocess.PIPE)
        assert proxy.stdout is not None
        url = "http://" + proxy.stdout.readline().decode().split()[-1]
        print(f"replicas on {ports}, proxy on {url}")
        http = stack.enter_context(httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)))
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-demo-team", max_retries=0, http_client=http)
        for i, model in enumerate(["gpt-4.1-mini", "claude-haiku-4-5", "gemini-2.5-flash", "llama3.2"] * 2):
            try:
                resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
                print(f"{i + 1}. {model}: {resp.choices[0].message.content}")
            except openai.RateLimitError as exc:
                print(f"{i + 1}. {model}: 429 {exc.body['code']}, retry after {exc.response.headers.get('retry-after')} s")
        usage = http.get(url + "/v1/usage", headers={"authorization": "Bearer sk-demo-admin"}).json()
        print("ledger:", usage["keys"]["team"])


if __name__ == "__main__":
    main()
