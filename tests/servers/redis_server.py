"""A real ``redis-server`` on loopback, started and stopped by a test.

``with redis_server() as srv:`` picks a free TCP port, runs
``redis-server --port N --bind 127.0.0.1 --save '' --appendonly no`` in a
temporary directory, waits until it answers ``PING`` and stops it on exit.
``srv.url`` is a ``redis://`` URL for it (with the password, if one was set).
Standard library only, so any test can use it.

``require_redis_server()`` gives the binary's path, or skips the test when
it is missing, except under CI (env ``CI`` set) where a missing server is a
failure: CI must run these tests, not skip them.

(plugins/modelwire-redis/tests/redis_fixture.py is a copy, because plugin
tests do not import from the core's tests directory; a test there checks the
two stay identical.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["RedisServer", "free_port", "redis_server", "require_redis_server"]


def require_redis_server() -> str:
    """The path of ``redis-server``; skip without it (fail when ``CI`` is set)."""
    path = shutil.which("redis-server")
    if path is None:
        msg = "redis-server is not on PATH (Debian/Ubuntu: apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}; CI must run the Redis tests", pytrace=False)
        pytest.skip(msg)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A running server: ``port``, ``password``, ``url`` and ``proc``."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, password: str | None) -> None:
        self.proc = proc
        self.port = port
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{port}/0"

    def ping(self, timeout: float = 5.0) -> bool:
        """True when the server answers (``-NOAUTH`` counts: it is up)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@contextmanager
def redis_server(
    *extra_args: str, password: str | None = None, startup_timeout: float = 60.0
) -> Iterator[RedisServer]:
    """Run a throwaway redis-server on a free loopback port for the block."""
    binary = require_redis_server()
    with tempfile.TemporaryDirectory(prefix="modelwire-redis-") as tmp:
        log_path = os.path.join(tmp, "redis.log")
        last_error = "never started"
        for _attempt in range(3):  # the free port can be taken before the server binds it
            port = free_port()
            args = [
                binary, "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", tmp,
                "--logfile", log_path, "--daemonize", "no",
            ]
            if password is not None:
                args += ["--requirepass", password]
            args += list(extra_args)
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                server = RedisServer(proc, port, password)
                deadline = time.monotonic() + startup_timeout
                while proc.poll() is None and not server.ping():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                if proc.poll() is None and server.ping():
                    yield server
                    return
                _stop(proc)
                stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                log = ""
                if os.path.exists(log_path):
                    with open(log_path, encoding="utf-8", errors="replace") as fh:
                        log = fh.read()[-2000:]
                last_error = f"exit code {proc.returncode}; stderr: {stderr.strip()}; log: {log}"
            finally:
                _stop(proc)
                if proc.stderr:
                    proc.stderr.close()
        raise RuntimeError(f"redis-server did not start: {last_error}")
