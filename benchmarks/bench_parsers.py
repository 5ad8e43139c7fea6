"""Parser throughput: corpora in memory, fed in 1 KiB chunks, JSON included everywhere.

Each contestant is a zero-argument-per-run callable ``run(chunks) -> (count, text)``
built once (outside timing). ``count`` is what it decoded (payloads, or for
modelwire the unified events it emitted) and ``text`` is what it reassembled
where it does (modelwire), so the harness can check every contestant did the
whole job before trusting its time.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable
from typing import Any

from bench_corpora import Corpus

__all__ = ["Contestant", "contestants_for", "modelwire_runner"]

Runner = Callable[[list[bytes]], tuple[int, str]]


class Contestant:
    def __init__(self, key: str, label: str, run: Runner, *, role: str = "peer") -> None:
        self.key = key
        self.label = label
        self.run = run
        #: "subject" (modelwire), "peer", "floor" or "diag" (a breakdown row)
        self.role = role


# -- modelwire: the real per-chunk path, the sans-IO exchange ---------------------------------

_MODELS = {"openai": "gpt-4.1", "anthropic": "claude-sonnet-4-5", "ollama": "llama3.2"}


def modelwire_runner(fmt: str) -> Runner:
    """The per-chunk path of a call without the socket: ``modelwire._runtime.exchange.Exchange``.

    Built as the runtime builds it: the operator planned from the bundled
    manifests, its rules compiled once (per runtime), then per stream a fresh
    parser from the plugin registry in a fresh ``Exchange`` (parser, event
    mapping, end marker, usage tally).
    """
    import modelwire
    from modelwire._events import TextDelta
    from modelwire._runtime.exchange import Exchange
    from modelwire._runtime.mapping import compile_rules
    from modelwire._runtime.planning import plan

    catalog = modelwire.load_manifests("builtin:*", env={})
    plan_ = plan(catalog, _MODELS[fmt], "generate")
    rules = compile_rules(plan_.operator)  # once per runtime
    context = plan_.context()
    name = plan_.operator.parser
    options = plan_.operator.parser_options
    get_parser = modelwire.get_parser

    def run(chunks: list[bytes]) -> tuple[int, str]:
        exchange = Exchange(get_parser(name, **options), rules, context)
        produced: list[str] = []
        emitted = 0
        for chunk in chunks:
            if exchange.stopped:
                continue  # the runtime drains what follows the end marker
            for ev in exchange.feed(chunk):
                if type(ev) is TextDelta:
                    produced.append(ev.text)
                emitted += 1
            exchange.raise_error()
        for ev in exchange.close():
            if type(ev) is TextDelta:
                produced.append(ev.text)
            emitted += 1
        if not exchange.tally.reported:
            raise AssertionError(f"modelwire {fmt}: no usage event in the corpus")
        return emitted + 1, "".join(produced)  # + the Usage event the runtime yields at the end

    return run


def modelwire_parser_only(fmt: str) -> Runner:
    """Diagnostic: the parser plugin alone (frames, no event rules)."""
    import modelwire

    name = {"openai": "sse", "anthropic": "sse", "ollama": "jsonchunk"}[fmt]
    get_parser = modelwire.get_parser

    def run(chunks: list[bytes]) -> tuple[int, str]:
        parser = get_parser(name)
        n = 0
        for chunk in chunks:
            n += len(parser.feed(chunk))
        n += len(parser.close())
        return n, ""

    return run


def modelwire_parser_json(fmt: str) -> Runner:
    """Diagnostic: the SSE parser plus json.loads of each frame, no event rules."""
    import modelwire

    get_parser = modelwire.get_parser
    loads = json.loads

    def run(chunks: list[bytes]) -> tuple[int, str]:
        parser = get_parser("sse")
        n = 0
        for chunk in chunks:
            for frame in parser.feed(chunk):
                if frame.data != "[DONE]":
                    loads(frame.data)
                    n += 1
        return n, ""

    return run


# -- peers ---------------------------------------------------------------------------------


def openai_sdk_runner() -> Runner:
    """openai SDK: ``SSEDecoder().iter_bytes`` (what ``AsyncStream`` uses) + ``sse.json()``."""
    from openai._streaming import SSEDecoder

    def run(chunks: list[bytes]) -> tuple[int, str]:
        n = 0
        for sse in SSEDecoder().iter_bytes(iter(chunks)):
            if sse.data.startswith("[DONE]"):
                continue
            sse.json()
            n += 1
        return n, ""

    return run


def anthropic_sdk_runner() -> Runner:
    """anthropic SDK: ``SSEDecoder().iter_bytes`` + ``sse.json()`` of each event."""
    from anthropic._streaming import SSEDecoder

    def run(chunks: list[bytes]) -> tuple[int, str]:
        n = 0
        for sse in SSEDecoder().iter_bytes(iter(chunks)):
            if not sse.data or sse.data.startswith("[DONE]"):
                continue
            sse.json()
            n += 1
        return n, ""

    return run


def httpx_sse_runner() -> Runner:
    """httpx-sse: what ``EventSource.iter_sse`` does over ``iter_text()``: an
    incremental UTF-8 decode, ``SSELineDecoder``, ``SSEDecoder``, then json.loads."""
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    loads = json.loads
    utf8 = codecs.getincrementaldecoder("utf-8")

    def run(chunks: list[bytes]) -> tuple[int, str]:
        text_decoder = utf8(errors="replace")
        lines = SSELineDecoder()
        sse_decoder = SSEDecoder()
        n = 0

        def events(texts: Iterable[str]) -> Iterable[Any]:
            for text in texts:
                for line in lines.decode(text) if text else ():
                    sse = sse_decoder.decode(line.rstrip("\n"))
                    if sse is not None:
                        yield sse
            for line in lines.flush():
                sse = sse_decoder.decode(line.rstrip("\n"))
                if sse is not None:
                    yield sse

        texts = (text_decoder.decode(c) for c in chunks)
        for sse in events(texts):
            if sse.data.startswith("[DONE]"):
                continue
            loads(sse.data)
            n += 1
        return n, ""

    return run


def httpx_lines_runner() -> Runner:
    """NDJSON as ollama-python reads it: httpx's ``iter_lines`` decoders + json.loads."""
    from httpx._decoders import LineDecoder, TextDecoder

    loads = json.loads

    def run(chunks: list[bytes]) -> tuple[int, str]:
        text_decoder = TextDecoder()
        lines = LineDecoder()
        n = 0
        for chunk in chunks:
            for line in lines.decode(text_decoder.decode(chunk)):
                if line:
                    loads(line)
                    n += 1
        for line in lines.decode(text_decoder.flush()) + lines.flush():
            if line:
                loads(line)
                n += 1
        return n, ""

    return run


def floor_runner(corpus: Corpus) -> Runner:
    """The floor: ``json.loads`` of each payload (already split and decoded to str)."""
    payloads = corpus.payloads
    loads = json.loads

    def run(chunks: list[bytes]) -> tuple[int, str]:
        for p in payloads:
            loads(p)
        return len(payloads), ""

    return run


def _optional(key: str, label: str, build: Callable[[], Runner], skipped: dict[str, str]) -> list[Contestant]:
    try:
        return [Contestant(key, label, build())]
    except ImportError as exc:
        skipped[key] = f"not installed ({exc.name or exc})"
        return []


def contestants_for(corpus: Corpus, skipped: dict[str, str]) -> list[Contestant]:
    """Everything that runs on ``corpus``; unavailable peers are noted in ``skipped``."""
    fmt = corpus.name
    out = [Contestant("modelwire", "modelwire (parser + event rules)", modelwire_runner(fmt), role="subject")]
    out.append(Contestant("floor", "json.loads alone (floor)", floor_runner(corpus), role="floor"))
    if corpus.fmt == "sse":
        out += _optional("openai_sdk", "openai SDK SSEDecoder + json", openai_sdk_runner, skipped)
        out += _optional("anthropic_sdk", "anthropic SDK SSEDecoder + json", anthropic_sdk_runner, skipped)
        out += _optional("httpx_sse", "httpx-sse + json", httpx_sse_runner, skipped)
        out.append(Contestant("mw_parser", "  modelwire SSE parser only", modelwire_parser_only(fmt), role="diag"))
        out.append(
            Contestant("mw_parser_json", "  modelwire SSE parser + json.loads", modelwire_parser_json(fmt), role="diag")
        )
    else:
        out.append(Contestant("httpx_lines", "httpx iter_lines + json (ollama-python)", httpx_lines_runner()))
        out.append(
            Contestant("mw_parser", "  modelwire jsonchunk parser only (decodes JSON)", modelwire_parser_only(fmt), role="diag")
        )
    return out
