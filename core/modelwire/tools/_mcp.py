"""MCP servers as modelwire tools, over the official ``mcp`` SDK.

:class:`MCPClient` holds one connection to one MCP server (streamable HTTP
or SSE, the SDK's own transports); :meth:`MCPClient.list_tools` turns the
server's tools into :class:`~modelwire.Tool` objects usable by
``Runtime.run_tools``, a :class:`~modelwire.ToolRegistry` and pipelines.

Mapping (see ``docs/mcp.md``):

* each property of the MCP tool's ``inputSchema`` becomes one input port
  (its schema, description and required flag kept, ``$defs`` references
  inlined), so ``manifest.input_schema()`` is what the server declared;
  a schema that cannot be split that way becomes a single port
  ``arguments`` holding the whole object;
* the result goes to the single output port ``result``:
  ``structuredContent`` if the server sent one (the SDK's
  ``{"result": x}`` wrapper for plain return values is unwrapped), else the
  text of a lone text block, else a list of the blocks (text as ``str``,
  anything else as its JSON dict), ``None`` for no content;
* ``isError`` raises :class:`~modelwire.ToolError` ``MCP_TOOL_ERROR``
  naming the server and the tool.

The SDK's transports are anyio task groups; the client runs them in a
background task of a task group that :meth:`MCPClient.connect` enters and
:meth:`MCPClient.aclose` leaves, so those two must run in the same task
(``async with`` does that). Calls may come from any task of the same event
loop. A transport that fails later ends only the background task.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc
import attrs

from .._errors import InternalError, InvalidRequestError, NetworkError
from ._errors import ToolError
from ._manifest import PORT_NAME, Port, ToolManifest
from ._tool import Tool

if TYPE_CHECKING:
    from types import TracebackType

    from mcp import ClientSession

__all__ = ["MCPClient", "MCPServerConfig", "mcp_result"]

_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


@attrs.frozen
class MCPServerConfig:
    """Where an MCP server is and how to reach it (``mcp_servers`` in agentapp.yaml)."""

    name: str
    url: str
    transport: Literal["sse", "streamable_http"] = "streamable_http"
    headers: dict[str, str] = attrs.field(factory=dict)
    #: seconds for connecting, each HTTP write, and the initialize handshake
    timeout: float = 30.0
    #: seconds to wait for the next event on a server stream
    sse_read_timeout: float = 300.0

    def __attrs_post_init__(self) -> None:
        if self.transport not in ("sse", "streamable_http"):
            raise InvalidRequestError(
                f"MCP server {self.name!r}: transport must be 'sse' or 'streamable_http', got {self.transport!r}",
                code="MCP_BAD_CONFIG",
            )


def _leaf(exc: BaseException) -> BaseException:
    """The first non-group exception inside (nested) exception groups."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not inner:
            return exc
        exc = inner[0]


def _failure_leaf(exc: BaseException) -> Exception | None:
    """The first plain Exception inside (nested) groups; None if only cancellations."""
    inner = getattr(exc, "exceptions", None)
    if inner:
        for sub in inner:
            found = _failure_leaf(sub)
            if found is not None:
                return found
        return None
    return exc if isinstance(exc, Exception) else None


def tool_name(server: str, name: str, prefix: bool) -> str:
    """A provider-safe tool name: ``name`` or ``<server>__<name>``, bad characters as ``_``."""
    full = f"{server}__{name}" if prefix else name
    full = _NAME_BAD.sub("_", full)
    if not full or not (full[0].isalpha() or full[0] == "_"):
        full = "_" + full
    return full[:64]


def _inline_refs(schema: Any, defs: Mapping[str, Any], stack: tuple[str, ...] = ()) -> Any:
    """Replace ``{"$ref": "#/$defs/X"}`` by X's schema (cycles stay as refs)."""
    if isinstance(schema, list):
        return [_inline_refs(s, defs, stack) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        m = re.fullmatch(r"#/(?:\$defs|definitions)/(.+)", ref)
        if m and m.group(1) in defs and m.group(1) not in stack:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return {**_inline_refs(defs[m.group(1)], defs, (*stack, m.group(1))), **rest}
    return {k: _inline_refs(v, defs, stack) for k, v in schema.items() if k not in ("$defs", "definitions")}


def _has_ref(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "$ref" in schema or any(_has_ref(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_ref(v) for v in schema)
    return False


def input_ports(schema: Mapping[str, Any] | None) -> tuple[list[Port], bool]:
    """Ports for an MCP ``inputSchema``; True when split per property (else one ``arguments`` port)."""
    schema = dict(schema or {"type": "object"})
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    splittable = (
        schema.get("type", "object") == "object"
        and isinstance(props, dict)
        and all(isinstance(k, str) and PORT_NAME.fullmatch(k) for k in props)
        and not any(k in schema for k in ("oneOf", "anyOf", "allOf", "patternProperties", "if"))
    )
    if splittable:
        ports = []
        for key, sub in props.items():
            sub = _inline_refs(sub, defs) if isinstance(sub, dict) else {}
            if _has_ref(sub) and defs:  # recursive: keep the definitions with the port
                sub = {**sub, "$defs": defs}
            description = sub.pop("description", None) if isinstance(sub.get("description"), str) else None
            ports.append(Port(key, sub, description=description, required=key in required))
        return ports, True
    return [Port("arguments", schema, required=True)], False


def mcp_result(result: Any, *, server: str, tool: str, output_schema: Mapping[str, Any] | None = None) -> Any:
    """Map a ``CallToolResult`` to a value (see the module doc); raise on ``isError``."""
    content = list(getattr(result, "content", None) or [])
    texts = [getattr(b, "text", None) for b in content if getattr(b, "type", None) == "text"]
    if getattr(result, "is_error", False):
        detail = "; ".join(t for t in texts if t) or "no detail"
        raise ToolError(
            f"MCP tool {tool!r} on server {server!r} reported an error: {detail}",
            code="MCP_TOOL_ERROR", tool=tool, server=server,
        )
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        props = (output_schema or {}).get("properties")
        if isinstance(structured, dict) and list(structured) == ["result"] and isinstance(props, dict) and list(props) == ["result"]:
            return structured["result"]
        return structured
    if not content:
        return None
    if len(content) == 1 and len(texts) == 1:
        return texts[0]
    return [
        b.text if getattr(b, "type", None) == "text" else b.model_dump(mode="json", by_alias=True, exclude_none=True)
        for b in content
    ]


class MCPClient:
    """One connection to one MCP server.

    ``async with MCPClient(config) as client:`` connects (initialize
    handshake included) and closes. ``connect()`` and ``aclose()`` must be
    called from the same task; ``list_tools()`` and ``call()`` from any
    task while connected, concurrently if wanted.
    """

    def __init__(self, config: MCPServerConfig) -> None:
        self.config = config
        self._stack: contextlib.AsyncExitStack | None = None
        self._session: ClientSession | None = None
        self._task: int | None = None
        self._stop: anyio.Event | None = None
        self._error: Exception | None = None
        self._output_schemas: dict[str, Mapping[str, Any] | None] = {}

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def connected(self) -> bool:
        return self._session is not None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"MCPClient({self.config.name!r}, {self.config.url!r}, {self.config.transport}, {state})"

    async def connect(self) -> None:
        """Open the transport and run the initialize handshake.

        Raises :class:`~modelwire.NetworkError` ``MCP_CONNECT_FAILED``
        naming the server and its URL when the server cannot be reached,
        refuses, or does not answer within ``config.timeout``.

        The connection lives in a background task of a task group entered
        here and left by :meth:`aclose` (hence: same task). A transport that
        fails later ends only that task; the next call raises
        ``MCP_CALL_FAILED``, the caller's task is never cancelled by it.
        """
        if self._session is not None:
            return
        try:
            import mcp  # noqa: F401
        except ImportError as exc:
            raise InternalError(
                f"MCP support is not available ({exc}); install modelwire[agent]", code="MCP_UNAVAILABLE"
            ) from exc
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            tg = await stack.enter_async_context(anyio.create_task_group())
            self._stop = anyio.Event()
            self._error = None
            session = await tg.start(self._serve, self._stop)
        except BaseException:
            await stack.aclose()
            raise
        if session is None:  # _serve reported its failure instead of starting
            await stack.aclose()
            cfg = self.config
            cause = self._error
            what = "timed out" if isinstance(cause, TimeoutError) else f"{type(cause).__name__}: {cause}"
            raise NetworkError(
                f"cannot connect to MCP server {cfg.name!r} at {cfg.url} ({cfg.transport}): {what}",
                code="MCP_CONNECT_FAILED", server=cfg.name, url=cfg.url,
            ) from cause
        self._stack, self._session = stack, session
        self._task = anyio.get_current_task().id

    async def _serve(self, stop: anyio.Event, *, task_status: anyio.abc.TaskStatus[ClientSession | None]) -> None:
        """Own the SDK's transport and session: enter, initialize, wait for ``stop``, leave."""
        import httpx2
        from mcp import ClientSession
        from mcp.client.sse import sse_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        cfg = self.config
        started = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                streams: Any
                if cfg.transport == "sse":
                    streams = await stack.enter_async_context(sse_client(
                        cfg.url, headers=dict(cfg.headers) or None,
                        timeout=cfg.timeout, sse_read_timeout=cfg.sse_read_timeout,
                    ))
                else:
                    http = await stack.enter_async_context(create_mcp_http_client(
                        headers=dict(cfg.headers) or None,
                        timeout=httpx2.Timeout(cfg.timeout, read=cfg.sse_read_timeout),
                    ))
                    streams = await stack.enter_async_context(streamable_http_client(cfg.url, http_client=http))
                session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
                with anyio.fail_after(cfg.timeout):
                    await session.initialize()
                task_status.started(session)
                started = True
                await stop.wait()
        except BaseException as exc:
            cause = _failure_leaf(exc)
            if cause is None:  # cancelled from outside
                raise
            self._error = cause
            self._session = None
            if not started:
                task_status.started(None)

    def _require(self) -> ClientSession:
        if self._session is None and self._stack is not None:
            cause = self._error
            raise NetworkError(
                f"MCP server {self.config.name!r} ({self.config.url}): connection lost: {type(cause).__name__}: {cause}",
                code="MCP_CALL_FAILED", server=self.config.name, url=self.config.url,
            )
        if self._session is None:
            raise NetworkError(
                f"MCP server {self.config.name!r} is not connected (call connect() first)",
                code="MCP_NOT_CONNECTED", server=self.config.name, url=self.config.url,
            )
        return self._session

    async def list_tools(self, *, prefix: bool = False) -> list[Tool]:
        """The server's tools as modelwire Tools (all pages).

        Named as the server names them; ``prefix=True`` names them
        ``<server>__<tool>`` (to keep several servers apart). Characters
        providers refuse in a function name become ``_``; calls use the
        server's own name.
        """
        session = self._require()
        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            try:
                if cursor is None:
                    page = await session.list_tools()
                else:
                    from mcp.types import PaginatedRequestParams

                    page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
            except Exception as exc:
                raise self._failure("list tools", exc) from exc
            for t in page.tools:
                tools.append(self._tool(t, prefix))
            cursor = page.next_cursor
            if not cursor:
                return tools

    def _tool(self, spec: Any, prefix: bool) -> Tool:
        remote = str(spec.name)
        self._output_schemas[remote] = spec.output_schema
        ports, split = input_ports(spec.input_schema)
        manifest = ToolManifest(
            tool_name(self.config.name, remote, prefix),
            spec.description or getattr(spec, "title", None) or remote,
            inputs=ports,
            outputs=[Port("result", {}, description=f"result of MCP tool {remote!r} on {self.config.name!r}")],
            capabilities=["mcp"],
        )
        client = self

        async def run(**kwargs: Any) -> Any:
            arguments = kwargs if split else dict(kwargs.get("arguments") or {})
            return await client.call(remote, arguments, tool=manifest.name)

        run.__name__ = manifest.name
        tool = Tool(manifest, run, origin=f"mcp:{self.config.name}", wrap_result=True)
        tool.mcp_server = self.config.name  # type: ignore[attr-defined]
        tool.mcp_name = remote  # type: ignore[attr-defined]
        return tool

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None, *, tool: str | None = None) -> Any:
        """Call the server's tool ``name`` and return its mapped result.

        ``isError`` raises :class:`~modelwire.ToolError` ``MCP_TOOL_ERROR``;
        a protocol error ``MCP_ERROR``; a broken connection
        :class:`~modelwire.NetworkError` ``MCP_CALL_FAILED``.
        """
        session = self._require()
        if name not in self._output_schemas:  # learn its output schema (to unwrap {"result": x})
            with contextlib.suppress(Exception):
                await self.list_tools()
        try:
            result = await session.call_tool(name, dict(arguments or {}))
        except Exception as exc:
            raise self._failure(f"call tool {name!r}", exc, tool=tool or name) from exc
        return mcp_result(result, server=self.config.name, tool=tool or name, output_schema=self._output_schemas.get(name))

    def _failure(self, doing: str, exc: Exception, tool: str | None = None) -> Exception:
        from mcp import MCPError

        cause = _leaf(exc)
        where = f"MCP server {self.config.name!r} ({self.config.url})"
        if isinstance(cause, MCPError) and cause.code != -32000:  # not CONNECTION_CLOSED
            return ToolError(f"{where} refused to {doing}: {cause}", code="MCP_ERROR", tool=tool, server=self.config.name)
        return NetworkError(
            f"{where}: could not {doing}: {type(cause).__name__}: {cause}",
            code="MCP_CALL_FAILED", server=self.config.name, url=self.config.url,
        )

    async def aclose(self) -> None:
        """Close the session and the transport (from the task that connected). Idempotent."""
        if self._stack is None:
            return
        if self._task is not None and self._task != anyio.get_current_task().id:
            # still connected: the connecting task can close it
            raise InvalidRequestError(
                f"MCP client {self.config.name!r} must be closed from the task that connected it",
                code="MCP_WRONG_TASK",
            )
        stack, self._stack, self._session, self._task = self._stack, None, None, None
        if self._stop is not None:
            self._stop.set()
        # No shielding scope around it: the transport's task groups must exit
        # in LIFO order; ClientSession's exit does not block.
        with contextlib.suppress(Exception):
            await stack.aclose()

    async def __aenter__(self) -> MCPClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
