"""Profile modelwire's hot paths, and measure what faster variants would gain.

    python benchmarks/bench_profile.py parse [openai|anthropic|ollama]   # pyinstrument tree
    python benchmarks/bench_profile.py e2e                              # one 20k-event stream
    python benchmarks/bench_profile.py request                          # 500 short streams
    python benchmarks/bench_profile.py bounds                           # variants, interleaved

``parse``/``e2e``/``request`` need pyinstrument (``pip install pyinstrument``).
``bounds`` times, on the OpenAI and Anthropic corpora and interleaved round
by round, modelwire as it is against: JMESPath string equality as plain
``==`` (monkeypatched, semantics kept); a hand-written per-format mapping
(the lower bound for rules compiled to straight-line code); and, when orjson
is installed, both with orjson decoding. Not part of ``run.py``: it measures
code that does not exist in modelwire yet.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_corpora import anthropic_corpus, ollama_corpus, openai_corpus
from bench_parsers import floor_runner, modelwire_runner, openai_sdk_runner

CORPORA = {"openai": openai_corpus, "anthropic": anthropic_corpus, "ollama": ollama_corpus}


def _profiler() -> Any:
    try:
        from pyinstrument import Profiler
    except ImportError:
        sys.exit("bench_profile.py needs pyinstrument: pip install pyinstrument")
    return Profiler(interval=0.0002, async_mode="disabled")


def profile_parse(fmt: str) -> None:
    corpus = CORPORA[fmt]()
    chunks = corpus.chunks
    run = modelwire_runner(fmt)
    run(chunks)
    prof = _profiler()
    prof.start()
    for _ in range(10):
        run(chunks)
    prof.stop()
    print(prof.output_text(unicode=False, color=False, show_all=True))


def profile_client(pieces: int, streams: int) -> None:
    from bench_e2e import ServerProcess, check, make_client

    async def main(url: str) -> None:
        client = make_client("modelwire", url)
        await check(client, pieces)
        prof = _profiler()
        prof.start()
        for _ in range(streams):
            await client.stream()
        prof.stop()
        await client.aclose()
        print(prof.output_text(unicode=False, color=False))

    with ServerProcess(s=pieces) as server:
        asyncio.run(main(server.urls["s"]))


# -- bounds ------------------------------------------------------------------------------------------


def _hand_openai(loads: Callable[[str], Any]) -> Callable[[list[bytes]], Any]:
    import modelwire
    from modelwire._events import Finish, TextDelta, Usage

    def run(chunks: list[bytes]) -> list[Any]:
        parser = modelwire.get_parser("sse")
        out: list[Any] = []
        add = out.append
        for chunk in chunks:
            for frame in parser.feed(chunk):
                data = frame.data
                if data == "[DONE]":
                    return out
                value = loads(data)
                if type(value) is not dict:
                    continue
                if value.get("error"):
                    raise RuntimeError(value["error"])
                choices = value.get("choices")
                if type(choices) is list:
                    for choice in choices:
                        if type(choice) is not dict:
                            continue
                        delta = choice.get("delta")
                        if type(delta) is dict:
                            text = delta.get("content")
                            if type(text) is str and text:
                                add(TextDelta(text))
                            if delta.get("tool_calls"):
                                raise NotImplementedError
                        reason = choice.get("finish_reason")
                        if reason:
                            add(Finish(reason))
                usage = value.get("usage")
                if usage:
                    add(Usage(input_tokens=usage.get("prompt_tokens"),
                              output_tokens=usage.get("completion_tokens")))
        return out

    return run


def _hand_anthropic(loads: Callable[[str], Any]) -> Callable[[list[bytes]], Any]:
    import modelwire
    from modelwire._events import Finish, TextDelta, Usage

    def run(chunks: list[bytes]) -> list[Any]:
        parser = modelwire.get_parser("sse")
        out: list[Any] = []
        add = out.append
        for chunk in chunks:
            for frame in parser.feed(chunk):
                event = frame.event
                if event == "content_block_delta":
                    delta = loads(frame.data).get("delta")
                    if type(delta) is dict and delta.get("type") == "text_delta":
                        text = delta.get("text")
                        if type(text) is str and text:
                            add(TextDelta(text))
                elif event == "message_stop":
                    return out
                elif event == "message_start":
                    usage = loads(frame.data)["message"]["usage"]
                    add(Usage(input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"]))
                elif event == "message_delta":
                    value = loads(frame.data)
                    add(Finish(value["delta"]["stop_reason"]))
                    add(Usage(output_tokens=value["usage"]["output_tokens"]))
                elif event == "content_block_start":
                    loads(frame.data)
        return out

    return run


def bounds(rounds: int = 9) -> None:
    from modelwire import _expr

    try:
        import orjson
    except ImportError:
        orjson = None
    original = _expr._equals

    def str_equals(x: Any, y: Any) -> Any:
        if type(x) is str or type(y) is str:
            return x == y
        return original(x, y)

    def patched(run: Callable[[list[bytes]], Any]) -> Callable[[list[bytes]], Any]:
        def go(chunks: list[bytes]) -> Any:
            _expr._equals = str_equals  # the compiled closures look it up at call time
            try:
                return run(chunks)
            finally:
                _expr._equals = original

        return go

    def orjson_mapper(run: Callable[[list[bytes]], Any]) -> Callable[[list[bytes]], Any]:
        from modelwire import _mapping

        def go(chunks: list[bytes]) -> Any:
            old = _mapping.EventMapper._decode
            _mapping.EventMapper._decode = lambda self, data: (  # type: ignore[method-assign]
                orjson.loads(data) if type(data) is str else data
            )
            try:
                return run(chunks)
            finally:
                _mapping.EventMapper._decode = old  # type: ignore[method-assign]

        return go

    hands = {"openai": _hand_openai, "anthropic": _hand_anthropic}
    for fmt, hand in hands.items():
        corpus = CORPORA[fmt]()
        chunks, n = corpus.chunks, corpus.events
        mw = modelwire_runner(fmt)
        variants: dict[str, Callable[[list[bytes]], Any]] = {
            "json.loads floor": floor_runner(corpus),
            "openai SDK decoder": openai_sdk_runner(),
            "modelwire": mw,
            "modelwire, str == fast path": patched(mw),
            "hand-written rules, json": hand(json.loads),
        }
        if orjson is not None:
            variants["modelwire, orjson decode"] = orjson_mapper(mw)
            variants["hand-written rules, orjson"] = hand(orjson.loads)
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(rounds):
            for key, run in variants.items():
                gc.collect()
                t = time.perf_counter()
                run(chunks)
                times[key].append(time.perf_counter() - t)
        floor, sdk = times["json.loads floor"], times["openai SDK decoder"]
        print(f"\n{fmt} corpus ({n:,} events), median of {rounds} interleaved rounds")
        print(f"  {'variant':32s} {'us/event':>9s} {'x floor':>8s} {'x SDK speed':>12s}")
        for key, values in times.items():
            vs_floor = statistics.median(a / b for a, b in zip(values, floor, strict=True))
            vs_sdk = statistics.median(b / a for a, b in zip(values, sdk, strict=True))
            us = statistics.median(values) / n * 1e6
            print(f"  {key:32s} {us:9.2f} {vs_floor:8.2f} {vs_sdk:12.2f}")


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "bounds"
    if what == "parse":
        profile_parse(argv[1] if len(argv) > 1 else "openai")
    elif what == "e2e":
        profile_client(20_000, 5)
    elif what == "request":
        profile_client(3, 500)
    elif what == "bounds":
        bounds()
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
