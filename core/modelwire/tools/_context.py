"""What a tool call sees besides its inputs: the session and the call context.

:class:`AgentContext` is one session's state (``session()`` and
``variables()``); :class:`ToolContext` is one call's (the manifest, the
acquired resources and the session).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._manifest import ToolManifest

__all__ = [
    "AgentContext",
    "SessionState",
    "ToolContext",
]


class AgentContext:
    """Per-session state visible to tools: ``session().get/set`` and ``variables()``.

    One context per session; nothing is shared across sessions: each context
    owns its session store, and ``variables`` are copied in. Tools see it as
    ``ctx.agent``. ``variables()`` are what the application passes in (user,
    locale, ...); ``session()`` is what tools remember between calls.
    ``session``, if given, is used as the store itself (not copied): a
    session store hands in the state it saves back.
    """

    def __init__(
        self,
        session_id: str = "default",
        variables: Mapping[str, Any] | None = None,
        *,
        session: dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self._session: dict[str, Any] = session if session is not None else {}
        self._variables = dict(variables or {})

    def session(self) -> SessionState:
        return SessionState(self._session)

    def variables(self) -> dict[str, Any]:
        return self._variables

    def __repr__(self) -> str:
        return f"AgentContext(session_id={self.session_id!r})"


class SessionState:
    """The key-value store of one session."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def as_dict(self) -> dict[str, Any]:
        """A copy of everything stored."""
        return dict(self._data)


@attrs.define
class ToolContext:
    """What one tool call receives besides its inputs (as its ``ctx`` parameter)."""

    tool: ToolManifest
    #: resource name -> object (a sqlite3 connection, an httpx client, a FileCache, ...)
    resources: dict[str, Any] = attrs.Factory(dict)
    agent: AgentContext = attrs.Factory(AgentContext)

    def session(self) -> SessionState:
        """Shortcut for ``ctx.agent.session()``."""
        return self.agent.session()

    def variables(self) -> dict[str, Any]:
        """Shortcut for ``ctx.agent.variables()``."""
        return self.agent.variables()
