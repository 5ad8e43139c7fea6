"""The platform client: heartbeats to a control platform, and configuration it pushes.

A new configuration is applied by a graceful restart of the agent runtime
(:meth:`Serving.swap`); while the platform is down the client backs off and
the app keeps serving. The platform URL must be https:// (plain http:// only
on loopback), checked for the file's config and every pushed one, because a
pushed config is expanded against the process environment (``${VAR}``, only
the variables ``MODELWIRE_REMOTE_ENV`` allows, as for a remote manifest); its
``platform`` section (url, headers, intervals) applies from then on.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Protocol

import anyio

from .._errors import ModelError
from .._manifest.catalog import remote_allow_list
from .._manifest.yaml import Located
from ._app import AgentRuntime
from ._config import parse_agentapp_config

__all__ = ["PlatformClient", "Serving", "memory_usage_mb"]

log = logging.getLogger("modelwire.server")


class Stats(Protocol):
    """The server counters the platform client reports."""

    total_requests: int
    in_flight: int


class Serving(Protocol):
    """What the platform client needs of the server: the current runtime, its counters, a swap."""

    @property
    def agent(self) -> AgentRuntime: ...

    @property
    def stats(self) -> Stats: ...

    async def swap(self, new: AgentRuntime, drain: float) -> None: ...


def memory_usage_mb() -> float:
    """This process's resident memory in MiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class PlatformClient:
    """Heartbeats to ``POST {url}/heartbeat`` and config polls of ``GET {url}/config``.

    A heartbeat is ``{"app", "instance", "active_sessions", "total_requests",
    "memory_usage_mb", "in_flight", "config_version"}``. ``/config`` answers
    204 (or 304) when nothing changed, or ``{"version": V, "config":
    {agentapp mapping}}``: a new version is applied by a graceful restart of
    the runtime. Either answer may carry ``{"action": "restart"}``: the
    running configuration is rebuilt into a fresh runtime and swapped in the
    same graceful way (requests in flight finish on the old one); other
    actions are logged and ignored. While the platform is down the client
    backs off (doubling, up to ``max_backoff``) and the app keeps serving.
    """

    def __init__(self, serving: Serving, settings: Any, drain_timeout: float = 30.0) -> None:
        import uuid

        self.serving = serving
        self.settings = settings
        self.drain_timeout = drain_timeout
        self.instance = uuid.uuid4().hex
        self.version: str | None = None
        self.failures = 0
        self.backoff = 0.0
        self.heartbeats = 0
        self.applied: list[str] = []
        self.rejected: dict[str, str] = {}
        self.restarts = 0
        self._stop = anyio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def heartbeat(self, http: Any) -> None:
        agent = self.serving.agent
        sessions = await agent.sessions.count() if agent.started else 0
        body = {
            "app": agent.config.name if agent.config else None,
            "instance": self.instance,
            "active_sessions": sessions,
            "total_requests": self.serving.stats.total_requests,
            "memory_usage_mb": round(memory_usage_mb(), 1),
            "in_flight": self.serving.stats.in_flight,
            "config_version": self.version,
        }
        resp = await http.post(self.settings.url.rstrip("/") + "/heartbeat", json=body, headers=dict(self.settings.headers))
        resp.raise_for_status()
        self.heartbeats += 1
        if resp.status_code == 200 and resp.content:
            await self.act(resp.json())

    async def poll(self, http: Any) -> None:
        agent = self.serving.agent
        params = {"app": agent.config.name if agent.config else "", "instance": self.instance}
        if self.version is not None:
            params["version"] = self.version
        resp = await http.get(
            self.settings.url.rstrip("/") + "/config", params=params, headers=dict(self.settings.headers),
        )
        if resp.status_code in (204, 304):
            return
        resp.raise_for_status()
        data = resp.json()
        if isinstance(data, dict) and "config" not in data and "action" in data:
            await self.act(data)
            return
        version = str(data.get("version"))
        if version == self.version or version in self.rejected:
            return
        await self.apply(version, data.get("config"))

    async def act(self, data: Any) -> None:
        """An action the platform asks for: ``restart`` is a graceful swap to a fresh runtime."""
        action = data.get("action") if isinstance(data, dict) else None
        if action is None:
            return
        if action != "restart":
            log.warning("modelwire: platform action %r not understood; ignored", str(action)[:64])
            return
        old = self.serving.agent
        if old.config is None:
            return
        new = AgentRuntime(
            old.config, project_path=old.project_path, env=old.env,
            mcp_client_factory=old._mcp_factory, install=old._install,
        )
        try:
            await self.serving.swap(new, self.drain_timeout)
        except ModelError as exc:
            log.error("modelwire: platform restart failed, serving the previous runtime: %s", exc.message)
            return
        self.restarts += 1
        log.info("modelwire: restarted the runtime at the platform's request")

    async def apply(self, version: str, mapping: Any) -> None:
        """Build and start a runtime from ``mapping``, then swap it in; a bad one is logged and kept out."""
        old = self.serving.agent
        try:
            doc = Located(mapping, {}, f"{self.settings.url.rstrip('/')}/config (version {version})")
            # A pushed config is a config from elsewhere: ${VAR} reads only allowed variables.
            allowed = remote_allow_list(None, old.env)
            config = parse_agentapp_config(doc, old.env, allowed_env=allowed)
            if config.platform is None:  # keep talking to the platform that sent it
                import attrs

                config = attrs.evolve(config, platform=self.settings)
            new = AgentRuntime(
                config, project_path=old.project_path, env=old.env,
                mcp_client_factory=old._mcp_factory, install=old._install,
            )
            await self.serving.swap(new, self.drain_timeout)
        except ModelError as exc:
            self.rejected[version] = exc.message
            log.error("modelwire: platform config %s not applied, serving the previous one: %s", version, exc.message)
            return
        if config.platform is not None:  # the pushed url / headers / intervals apply from now on
            self.settings = config.platform
        self.version = version
        self.applied.append(version)
        log.info("modelwire: applied platform config %s", version)

    async def run(self) -> None:
        import httpx

        next_beat = next_poll = anyio.current_time()
        async with httpx.AsyncClient(timeout=self.settings.timeout) as http:
            while not self._stop.is_set():
                s = self.settings  # re-read: a pushed config may change url, headers, intervals
                http.timeout = httpx.Timeout(s.timeout)
                now = anyio.current_time()
                try:
                    if now >= next_beat:
                        await self.heartbeat(http)
                        next_beat = now + s.heartbeat_interval
                    if now >= next_poll:
                        await self.poll(http)
                        next_poll = now + s.poll_interval
                    self.failures, self.backoff = 0, 0.0
                    wait = max(0.0, min(next_beat, next_poll) - anyio.current_time())
                except (httpx.HTTPError, ValueError, AttributeError) as exc:
                    self.failures += 1
                    self.backoff = min(s.max_backoff, s.heartbeat_interval * 2 ** min(self.failures - 1, 16))
                    wait = self.backoff
                    log.warning("modelwire: platform unreachable (%s); retrying in %.1fs", exc, wait)
                with anyio.move_on_after(wait):
                    await self._stop.wait()
