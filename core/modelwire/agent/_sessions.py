"""Messages and sessions: :class:`Msg`, :class:`SessionContext` and the session stores.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    pass

__all__ = [
    "InMemorySessionStore",
    "Msg",
    "SessionContext",
    "SessionStore",
]


@attrs.define
class Msg:
    """A message in or out of the app (AgentScope-style): role, content, name, metadata."""

    content: Any
    role: str = "assistant"
    name: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    @classmethod
    def coerce(cls, value: Any) -> Msg:
        """A Msg from a Msg, a string (assistant text) or a mapping."""
        if isinstance(value, Msg):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping):
            allowed = {"content", "role", "name", "metadata", "id"}
            return cls(**{k: v for k, v in value.items() if k in allowed})
        raise TypeError(f"an app must yield Msg, str or dict, not {type(value).__name__}")


@attrs.define
class SessionContext:
    """What one request knows: its session id, the request metadata, the session's state."""

    session_id: str
    metadata: dict[str, Any] = attrs.field(factory=dict)
    #: the session's stored state (saved back when the request ends)
    state: dict[str, Any] = attrs.field(factory=dict)

    def agent_context(self) -> Any:
        """An :class:`AgentContext` for tools, sharing this session's state."""
        from ..tools import AgentContext

        return AgentContext(self.session_id, self.metadata, session=self.state)


@runtime_checkable
class SessionStore(Protocol):
    """Where session state lives between requests (in memory by default)."""

    async def load(self, session_id: str) -> dict[str, Any]:
        """The session's state (an empty dict for a new session)."""
        ...

    async def save(self, session_id: str, state: dict[str, Any]) -> None: ...

    async def delete(self, session_id: str) -> None: ...

    async def count(self) -> int:
        """Sessions currently kept (the platform's active_sessions)."""
        ...

    async def aclose(self) -> None: ...


class InMemorySessionStore:
    """Sessions in a dict, expired after ``ttl`` seconds idle, at most ``max_sessions`` (LRU)."""

    def __init__(self, ttl: float | None = 3600.0, max_sessions: int | None = 10000) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._data: dict[str, tuple[float, dict[str, Any]]] = {}

    def _expire(self) -> None:
        if self.ttl is None:
            return
        cutoff = time.monotonic() - self.ttl
        for sid in [s for s, (seen, _) in self._data.items() if seen < cutoff]:
            del self._data[sid]

    async def load(self, session_id: str) -> dict[str, Any]:
        self._expire()
        item = self._data.pop(session_id, None)
        state = item[1] if item is not None else {}
        self._data[session_id] = (time.monotonic(), state)
        self._trim()
        return dict(state)

    async def save(self, session_id: str, state: dict[str, Any]) -> None:
        self._data.pop(session_id, None)
        self._data[session_id] = (time.monotonic(), dict(state))
        self._trim()

    def _trim(self) -> None:
        if self.max_sessions is not None:
            while len(self._data) > self.max_sessions:
                del self._data[next(iter(self._data))]

    async def delete(self, session_id: str) -> None:
        self._data.pop(session_id, None)

    async def count(self) -> int:
        self._expire()
        return len(self._data)

    async def aclose(self) -> None:
        self._data.clear()
