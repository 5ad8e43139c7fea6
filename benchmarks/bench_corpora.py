"""Deterministic stream corpora: the bytes each parser benchmark feeds.

Every corpus is built from the same text pieces (short deltas, about a
quarter of them non-ASCII), framed the way the real service frames them:
compact JSON with raw UTF-8, as ``modelwire.testing`` also sends it. The
bytes depend only on the piece count and the seed, never on the machine.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

__all__ = ["CHUNK", "Corpus", "anthropic_corpus", "ollama_corpus", "openai_corpus", "text_pieces"]

#: Bytes per ``feed()`` call in the parser benchmark.
CHUNK = 1024

_ASCII = [
    " the", " a", " model", " stream", " token", " of", " and", " to", " is", " in",
    " quick", " brown", " fox", " jumps", " over", " lazy", " dog", ",", ".", "!",
    " Hello", " world", " data", " 42", " JSON", "\n", " \"quoted\"", " back\\slash",
    " tab\there", " a/b",
]
_NON_ASCII = [
    " über", " naïve", " café", " résumé", " 東京", " データ", " Привет", " мир",
    " 😀", " 🚀", " ½", " Ωμέγα", " שלום", " مرحبا", " 한국어", " ñandú",
]


def text_pieces(count: int, seed: int = 0) -> tuple[str, ...]:
    """``count`` short deltas (1-3 words), roughly 25 % of them non-ASCII."""
    rng = random.Random(f"modelwire-bench-text:{seed}")
    out = []
    for _ in range(count):
        words = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            words.append(rng.choice(_NON_ASCII) if rng.random() < 0.25 else rng.choice(_ASCII))
        out.append("".join(words))
    return tuple(out)


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Corpus:
    """A stream body, its ``CHUNK``-sized pieces and what it carries."""

    name: str
    fmt: str  # "sse" or "ndjson"
    body: bytes
    #: Wire events in the body: SSE events dispatched / NDJSON lines.
    events: int
    #: The JSON payloads (data of each event, ``[DONE]`` excluded), for the floor.
    payloads: tuple[str, ...]
    #: The text the stream carries (what a client reassembles).
    text: str

    @property
    def chunks(self) -> list[bytes]:
        body = self.body
        return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


def openai_corpus(count: int = 20_000, seed: int = 0) -> Corpus:
    """OpenAI chat completions SSE: role delta, ``count`` content deltas,
    finish, usage chunk (``stream_options.include_usage``), ``[DONE]``."""
    pieces = text_pieces(count, seed)
    base = {
        "id": "chatcmpl-BENCHxNbq1Yf4UjkDo3c2ZQ5xT7m", "object": "chat.completion.chunk",
        "created": 1735689600, "model": "gpt-4.1-2025-04-14", "service_tier": "default",
        "system_fingerprint": "fp_b3f1157249",
    }

    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], "usage": None}

    payloads = [_dumps(chunk({"role": "assistant", "content": "", "refusal": None}))]
    payloads += [_dumps(chunk({"content": p})) for p in pieces]
    payloads.append(_dumps(chunk({}, "stop")))
    usage = {
        "prompt_tokens": 12, "completion_tokens": count, "total_tokens": 12 + count,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }
    payloads.append(_dumps({**base, "choices": [], "usage": usage}))
    body = "".join(f"data: {p}\n\n" for p in payloads) + "data: [DONE]\n\n"
    return Corpus("openai", "sse", body.encode(), len(payloads) + 1, tuple(payloads), "".join(pieces))


def anthropic_corpus(count: int = 20_000, seed: int = 0, ping_every: int = 500) -> Corpus:
    """Anthropic messages SSE: message_start, a text block of ``count``
    text deltas with a ping every ``ping_every``, message_delta, message_stop."""
    pieces = text_pieces(count, seed)
    events: list[tuple[str, str]] = []

    def add(name: str, data: dict[str, object]) -> None:
        events.append((name, _dumps(data)))

    add("message_start", {"type": "message_start", "message": {
        "id": "msg_01BENCHxNbq1Yf4UjkDo3c2Z", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                                         "cache_read_input_tokens": 0, "output_tokens": 1}}})
    add("content_block_start", {"type": "content_block_start", "index": 0,
                                "content_block": {"type": "text", "text": ""}})
    add("ping", {"type": "ping"})
    for n, piece in enumerate(pieces, 1):
        add("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": piece}})
        if n % ping_every == 0:
            add("ping", {"type": "ping"})
    add("content_block_stop", {"type": "content_block_stop", "index": 0})
    add("message_delta", {"type": "message_delta",
                          "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"output_tokens": count}})
    add("message_stop", {"type": "message_stop"})
    body = "".join(f"event: {name}\ndata: {data}\n\n" for name, data in events)
    return Corpus(
        "anthropic", "sse", body.encode(), len(events), tuple(d for _, d in events), "".join(pieces)
    )


def ollama_corpus(count: int = 20_000, seed: int = 0) -> Corpus:
    """Ollama /api/chat NDJSON: ``count`` message lines, then the ``done`` line."""
    pieces = text_pieces(count, seed)
    stamp = "2025-01-01T00:00:00.000000000Z"
    payloads = [
        _dumps({"model": "llama3.2", "created_at": stamp,
                "message": {"role": "assistant", "content": p}, "done": False})
        for p in pieces
    ]
    payloads.append(_dumps({
        "model": "llama3.2", "created_at": stamp, "message": {"role": "assistant", "content": ""},
        "done_reason": "stop", "done": True, "total_duration": 4_883_583_458,
        "load_duration": 1_334_875, "prompt_eval_count": 12, "prompt_eval_duration": 342_546_000,
        "eval_count": count, "eval_duration": 4_535_599_000}))
    body = "".join(p + "\n" for p in payloads)
    return Corpus("ollama", "ndjson", body.encode(), len(payloads), tuple(payloads), "".join(pieces))
