"""Replay provider wire formats from a loopback server, for tests and demos.

:class:`ReplayServer` answers like OpenAI, Anthropic, Gemini and Ollama: the
bytes of the real wire formats (SSE events, NDJSON lines, JSON bodies),
rendered from a format-neutral :class:`Script` and written in random-size
pieces, with knobs for statuses, headers, delays, disconnects, missing end
markers and in-stream errors. It runs in background threads, so it serves
asyncio, trio and blocking clients alike, and it needs no engine code: point
any client (an official SDK, raw httpx, a modelwire manifest) at
:meth:`ReplayServer.url_for`::

    from modelwire.testing import ReplayServer, Script, ToolCall

    with ReplayServer(seed=0) as srv:
        srv.push(Script(text="Hello, wörld",
                        tool_calls=[ToolCall("call_1", "get_weather", '{"city":"Paris"}')],
                        usage=(12, 7)))
        ...  # a client with base_url=srv.url_for("openai") streams it back
        assert srv.requests[0].json["model"] == "gpt-4.1"

See docs/testing.md for the formats and knobs.
"""

from ._formats import fake_embedding
from ._script import (
    DEFAULT_TEXT,
    FORMATS,
    Citation,
    Reasoning,
    Reply,
    Script,
    ServerTool,
    StreamError,
    ToolCall,
)
from ._server import RecordedRequest, ReplayServer

__all__ = [  # noqa: RUF022 - plain sorted order (a test checks it)
    "Citation",
    "DEFAULT_TEXT",
    "FORMATS",
    "Reasoning",
    "RecordedRequest",
    "ReplayServer",
    "Reply",
    "Script",
    "ServerTool",
    "StreamError",
    "ToolCall",
    "fake_embedding",
]
