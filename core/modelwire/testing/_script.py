"""What the replay server answers: scripted replies and raw replies.

A :class:`Script` describes a model's answer once, independently of the wire
format (text, tool calls, usage, finish reason); the server renders it in the
format the request path selects, so one script drives an OpenAI, Anthropic,
Gemini and Ollama client alike. A :class:`Reply` is the escape hatch: exact
bytes, for error bodies and malformed answers no real provider would send.

Both are frozen and hashable, so a rendered stream can be cached and served
again without re-encoding (benchmarks serve the same 20,000-event script
hundreds of times).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import attrs

__all__ = [
    "DEFAULT_TEXT",
    "FINISH_REASONS",
    "FORMATS",
    "Citation",
    "Reasoning",
    "Reply",
    "Script",
    "ServerTool",
    "StreamError",
    "ToolCall",
]

#: The wire formats the server speaks; the first path segment selects one.
FORMATS: tuple[str, ...] = (
    "anthropic", "bedrock", "cohere", "gemini", "mistral", "ollama", "openai", "vertex",
)

#: The text of the default script, served when nothing was pushed.
DEFAULT_TEXT = "Hello from modelwire.testing! This reply was scripted, not generated."

# Unified finish reasons (OpenAI's names) -> what each format sends. Names not
# in a table are sent verbatim, so a test can script any provider value.
FINISH_REASONS: dict[str, dict[str, str]] = {
    "openai": {},
    "anthropic": {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "content_filter": "refusal",
    },
    "gemini": {
        "stop": "STOP",
        "length": "MAX_TOKENS",
        "tool_calls": "STOP",
        "content_filter": "SAFETY",
    },
    "ollama": {"tool_calls": "stop", "content_filter": "stop"},
    "bedrock": {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "content_filter": "content_filtered",
    },
    "mistral": {},
    "cohere": {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"},
}

Headers = tuple[tuple[str, str], ...]


def _headers(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Headers:
    """Headers as a tuple of pairs: hashable, ordered, repeatable names allowed."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), str(v)) for k, v in items)


def _text(value: str | Iterable[str]) -> str | tuple[str, ...]:
    return value if isinstance(value, str) else tuple(value)


def _body(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _usage(value: tuple[int, int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    prompt, completion = value
    return (int(prompt), int(completion))


def _chunk_size(value: tuple[int, int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, high = value
    if not 1 <= low <= high:
        raise ValueError(f"chunk_size must be (min, max) with 1 <= min <= max, got {value!r}")
    return (low, high)


@attrs.frozen
class ToolCall:
    """One tool call the scripted model makes.

    ``arguments`` is JSON text, as OpenAI sends it; the formats that carry an
    object (Anthropic's non-streamed ``input``, Gemini's ``args``, Ollama's
    ``arguments``) get it parsed. Text that is not JSON is sent as a string
    there, so a test can still script a broken tool call.
    """

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        """The arguments as a JSON value, or the raw text if it is not JSON."""
        try:
            return json.loads(self.arguments)
        except ValueError:
            return self.arguments


def _calls(value: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
    return tuple(value)


@attrs.frozen
class Reasoning:
    """One reasoning ("thinking") block the scripted model shows before answering.

    ``text`` is a string or its pieces (one delta each). Anthropic gets a
    ``thinking`` block (``thinking_delta`` pieces, then one ``signature_delta``)
    or, with ``redacted``, a ``redacted_thinking`` block carrying that data;
    OpenAI-shaped streams get ``delta.reasoning_content`` (DeepSeek's field),
    Gemini parts with ``thought: true``, Ollama ``message.thinking``, Bedrock
    ``reasoningContent`` deltas (``redacted`` as a base64 blob). Formats
    without signatures or redacted blocks leave those out (a redacted block
    is not sent there at all).
    """

    text: str | tuple[str, ...] = attrs.field(default="", converter=_text)
    signature: str | None = None
    redacted: str | None = None

    def pieces(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else list(self.text)

    def full_text(self) -> str:
        return "".join(self.pieces())


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@attrs.frozen
class ServerTool:
    """A tool the provider runs itself (Anthropic only: web search, code execution, MCP).

    Rendered as a ``server_tool_use`` block (``mcp_tool_use`` with ``server_name``)
    whose input streams as ``input_json_delta``, then a result block of
    ``result_type`` (``mcp_tool_result`` for MCP) whose ``content`` is ``result``
    (a JSON value, or its JSON text).
    Other formats have no such blocks: the script's server tools are not sent there.
    """

    id: str
    name: str
    arguments: str = "{}"
    #: the result block's ``content``: a JSON value, kept as JSON text so scripts stay hashable
    result: str = attrs.field(default="[]", converter=_json_text)
    result_type: str = "web_search_tool_result"
    server_name: str | None = None


@attrs.frozen
class Citation:
    """A source the scripted answer cites: Anthropic ``citations_delta`` (a
    ``web_search_result_location``) at the start of the text block, Gemini
    ``groundingMetadata.groundingChunks[].web`` on the last chunk; OpenAI and
    Ollama streams carry none."""

    url: str
    title: str | None = None
    cited_text: str = ""


@attrs.frozen
class StreamError:
    """An error reported inside a stream that already started (status 200).

    Rendered as the format's own shape: Anthropic ``event: error`` with
    ``{"type": "error", "error": {"type", "message"}}``, an OpenAI data line
    ``{"error": {...}}``, a Gemini data line ``{"error": {"code", "message",
    "status"}}``, an Ollama line ``{"error": message}``. The stream then ends
    without its end marker, as the real services do. ``after`` is how many
    content frames (deltas, block starts and stops) go out first; ``None``
    means all of them. On a script with an error ``status`` (>= 400) the same
    ``type`` and ``message`` fill the error body instead.
    """

    type: str = "overloaded_error"
    message: str = "Overloaded"
    after: int | None = None
    code: int = 529


@attrs.frozen(kw_only=True)
class _Knobs:
    """Transport knobs shared by scripts and raw replies."""

    status: int = 200
    #: Extra response headers (a mapping or pairs); they are added after the
    #: server's own, so a test can repeat or shadow one.
    headers: Headers = attrs.field(default=(), converter=_headers)
    #: Replaces the format's Content-Type (answer text/html to a stream, ...).
    content_type: str | None = None
    #: Body bytes are written in pieces of a random size in [min, max] drawn
    #: from the server's seed; ``None`` writes one piece per frame.
    chunk_size: tuple[int, int] | None = attrs.field(default=(1, 512), converter=_chunk_size)
    #: Seconds to sleep between pieces (the server stops sleeping on stop()).
    delay: float = 0.0
    #: Close the connection after this many body bytes, leaving the body
    #: (chunked or Content-Length) incomplete: a mid-stream disconnect.
    disconnect_after: int | None = None


@attrs.frozen(kw_only=True)
class Script(_Knobs):
    """A scripted model answer, rendered in whichever format is asked for.

    ``text`` is a sequence of pieces (one delta each) or a string, which is
    cut into word-sized pieces. ``usage`` is ``(input_tokens, output_tokens)``
    or ``None`` to report none (Anthropic, which always reports usage, then
    sends zeros). ``finish`` uses OpenAI's names (``stop``, ``length``,
    ``tool_calls``, ``content_filter``), translated per format (see
    :meth:`wire_finish`); ``None`` means ``tool_calls`` when there are tool
    calls, else ``stop``.

    Stream knobs: ``end_marker=False`` drops ``[DONE]``, ``message_stop``,
    Ollama's ``done: true`` line, or Gemini's ``finishReason`` (Gemini has no
    other end marker). ``error`` ends the stream with an in-stream error.
    ``pings`` is how many keep-alive frames to interleave: Anthropic ``event:
    ping`` (``None``: one, where the real API puts it), SSE comments ``:
    ping`` for OpenAI and Gemini (``None``: none); Ollama has none.
    ``split_ids`` also splits OpenAI tool-call ids and names across deltas
    (the real API sends them whole; some compatible servers do not).

    The server picks random splits (text given as a string, tool arguments,
    ping positions) from ``seed``, or from its own seed when ``seed`` is None.
    A script with a ``status`` of 400 or more is answered with that format's
    error body.
    """

    text: str | tuple[str, ...] = attrs.field(default=DEFAULT_TEXT, converter=_text)
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_calls)
    usage: tuple[int, int] | None = attrs.field(default=(10, 20), converter=_usage)
    finish: str | None = None
    end_marker: bool = True
    error: StreamError | None = None
    pings: int | None = None
    split_ids: bool = False
    seed: int | None = None
    #: reasoning blocks, shown before the answer (see :class:`Reasoning`)
    reasoning: tuple[Reasoning, ...] = attrs.field(default=(), converter=tuple)
    #: tools the provider ran itself (Anthropic only, see :class:`ServerTool`)
    server_tools: tuple[ServerTool, ...] = attrs.field(default=(), converter=tuple)
    citations: tuple[Citation, ...] = attrs.field(default=(), converter=tuple)
    #: parts of ``usage``'s input read from / written to the prompt cache, and
    #: of its output spent reasoning; each format reports the ones it has
    cache_read: int = 0
    cache_write: int = 0
    reasoning_tokens: int = 0

    def full_reasoning(self) -> str:
        """All reasoning text joined: what a client should reassemble as reasoning."""
        return "".join(r.full_text() for r in self.reasoning)

    def full_text(self) -> str:
        """All text pieces joined: what a client should reassemble."""
        return self.text if isinstance(self.text, str) else "".join(self.text)

    def finish_reason(self) -> str:
        """The unified finish reason (``finish`` or the one implied)."""
        if self.finish is not None:
            return self.finish
        return "tool_calls" if self.tool_calls else "stop"

    def wire_finish(self, fmt: str) -> str:
        """The finish reason as format ``fmt`` sends it (``end_turn``, ``STOP``...)."""
        reason = self.finish_reason()
        return FINISH_REASONS[fmt].get(reason, reason)

    @classmethod
    def random(
        cls,
        seed: int,
        *,
        max_pieces: int = 40,
        max_tool_calls: int = 3,
        rich: bool = False,
        **knobs: Any,
    ) -> Script:
        """A random but reproducible script, for differential tests.

        Text pieces mix ASCII, JSON-special characters, non-Latin scripts,
        astral characters (emoji, musical symbols), combining marks (a piece
        may start with one) and U+2028; 0 to ``max_tool_calls`` parallel tool
        calls get random JSON-object arguments that the server splits across
        many deltas. Usage, finish reason, ping count, id splitting and the
        write chunk size are random too. ``knobs`` override any field.

        ``rich=True`` adds what current models send besides text and tools,
        drawn after the fields above so a seed's text, calls and usage stay
        the same: usually reasoning (one or two blocks of pieces, each with a
        signature; sometimes a redacted block), often prompt-cache reads and
        writes and reasoning tokens (parts of ``usage``), and for about a
        third of the seeds a JSON object as the answer (the text is its JSON
        split into pieces), as a model answers under ``response_format``.
        """
        rng = random.Random(f"modelwire.testing.Script.random:{seed}")
        pieces = tuple(_random_piece(rng) for _ in range(rng.randint(0, max_pieces)))
        calls = tuple(
            ToolCall(
                id="call_" + "".join(rng.choices(_ALNUM, k=24)),
                name=rng.choice(_TOOL_NAMES),
                arguments=_random_arguments(rng),
            )
            for _ in range(rng.randint(0, max_tool_calls))
        )
        fields: dict[str, Any] = {
            "text": pieces,
            "tool_calls": calls,
            "usage": (rng.randint(1, 5000), rng.randint(1, 5000)),
            "finish": "tool_calls" if calls else rng.choice(["stop", "stop", "length"]),
            "pings": rng.randint(0, 3),
            "split_ids": rng.random() < 0.5,
            "chunk_size": (1, rng.choice([1, 2, 3, 7, 16, 64, 512])),
            "seed": seed,
        }
        if rich:
            fields.update(_rich_fields(rng, fields["usage"], bool(calls)))
        fields.update(knobs)
        return cls(**fields)


@attrs.frozen(kw_only=True)
class Reply(_Knobs):
    """A raw HTTP answer: exactly these bytes, whatever the request path.

    For error bodies, HTML from a misconfigured proxy, a 200 with an empty
    body, a non-JSON data line. ``stream=True`` sends the body with
    ``Transfer-Encoding: chunked`` instead of a Content-Length.
    """

    body: bytes = attrs.field(default=b"", converter=_body)
    content_type: str | None = "application/json"
    stream: bool = False


Item: TypeAlias = Script | Reply

_ALNUM = string.ascii_letters + string.digits
_TOOL_NAMES = ("get_weather", "search_web", "lookup", "send_email", "calc", "x")
_ALPHABETS = (
    string.ascii_letters + "     ",
    string.punctuation + '"\\/\n\t',
    "äöüßéèçñøåÆŒ",
    "中文字符日本語한국어",
    "Ελληνικάкириллицаעבריתالعربية",
    "😀🚀🧪🎉𝄞\U0001d54f🇫🇷👩‍💻",
    "\u0301\u0308\u0327\u20dd",  # combining marks, may start a piece
    "\u2028\u2029\u00a0\u200b",
)


def _random_piece(rng: random.Random) -> str:
    return "".join(rng.choice(rng.choice(_ALPHABETS)) for _ in range(rng.randint(1, 8)))


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(6 if depth < 2 else 4)
    if kind == 0:
        return _random_piece(rng)
    if kind == 1:
        return rng.randint(-(10**6), 10**6)
    if kind == 2:
        return rng.choice([True, False, None, 0.5, -1.25e-3])
    if kind == 3:
        return "".join(rng.choices(_ALNUM, k=rng.randint(0, 12)))
    if kind == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_random_piece(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _random_arguments(rng: random.Random) -> str:
    obj = {
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 8))): _random_value(rng, 0)
        for _ in range(rng.randint(0, 4))
    }
    separators = rng.choice([(",", ":"), (", ", ": ")])
    return json.dumps(obj, ensure_ascii=rng.random() < 0.3, separators=separators)


def _rich_fields(rng: random.Random, usage: tuple[int, int], calls: bool) -> dict[str, Any]:
    """Reasoning, cache and reasoning-token counts and maybe a JSON answer, for ``Script.random(rich=True)``."""
    prompt, completion = usage
    out: dict[str, Any] = {}
    blocks: list[Reasoning] = []
    if rng.random() < 0.8:
        for _ in range(rng.randint(1, 2)):
            pieces = tuple(_random_piece(rng) for _ in range(rng.randint(1, 12)))
            blocks.append(Reasoning(pieces, signature="".join(rng.choices(_ALNUM + "+/", k=rng.randint(8, 64)))))
        if rng.random() < 0.15:
            blocks.append(Reasoning(redacted="".join(rng.choices(_ALNUM + "+/", k=rng.randint(8, 48)))))
    out["reasoning"] = tuple(blocks)
    if rng.random() < 0.7:
        out["cache_read"] = rng.randint(0, prompt)
        out["cache_write"] = rng.randint(0, prompt - out["cache_read"])
    if blocks and rng.random() < 0.8:
        out["reasoning_tokens"] = rng.randint(1, completion)
    if rng.random() < 0.35:
        answer = json.dumps({
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 8))): _random_value(rng, 0)
            for _ in range(rng.randint(1, 4))
        }, ensure_ascii=rng.random() < 0.3)
        cuts = sorted(rng.sample(range(1, len(answer)), min(len(answer) - 1, rng.randint(0, 12))))
        out["text"] = tuple(answer[a:b] for a, b in zip([0, *cuts], [*cuts, len(answer)], strict=True))
        if not calls:
            out["finish"] = "stop"
    return out
