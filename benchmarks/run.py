"""modelwire benchmarks against its peers, all in one run on one machine.

    python benchmarks/run.py [--quick] [--only SECTION ...] [--name NAME] [--out-dir DIR]

(``nox -s bench -- --quick`` passes the flags through.) Sections:

``parse``     stream corpora in memory, fed in 1 KiB chunks, JSON decoding
              included everywhere: modelwire's parser plus event rules against
              the openai and anthropic SDK decoders, httpx-sse, and json.loads
              alone (the floor);
``e2e``       over loopback from ``modelwire.testing.ReplayServer`` in a
              separate process: one long stream's events/s, and client CPU per
              event across many concurrent streams, against raw httpx plus
              json.loads (the floor) and the openai SDK;
``overhead``  sequential short streams: latency modelwire adds over raw httpx;
``import``    import time in fresh processes against openai, anthropic, litellm;
``memory``    RSS after import, after concurrent streams, and over many
              sequential requests (a leak check);
``gateway``   ``modelwire serve`` against LiteLLM's proxy (``litellm[proxy]``)
              on one loopback provider: latency added per request over
              calling the provider directly, and requests/s per core.

It prints a table and writes ``benchmarks/results/<name>.json`` with the
machine, package versions, and each figure's median and spread. Machines are
shared and absolute numbers drift between runs; the ratios to peers measured
in the same run, with contestants interleaved round by round, are what count.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_corpora import anthropic_corpus, ollama_corpus, openai_corpus  # noqa: E402
from bench_util import figure, machine, packages, percentile, source  # noqa: E402

SECTIONS = ("parse", "e2e", "overhead", "import", "memory", "gateway")

SIZES: dict[str, dict[str, int]] = {
    "full": {
        "parse_pieces": 20_000, "parse_rounds": 7,
        "single_pieces": 20_000, "single_rounds": 5,
        "concurrency": 200, "concurrent_pieces": 500, "concurrent_rounds": 3,
        "overhead_requests": 500, "overhead_warmup": 20,
        "import_runs": 7,
        "leak_requests": 10_000,
        "gateway_requests": 300, "gateway_warmup": 20, "gateway_load": 2000, "gateway_concurrency": 32,
    },
    "quick": {
        "parse_pieces": 300, "parse_rounds": 2,
        "single_pieces": 300, "single_rounds": 2,
        "concurrency": 10, "concurrent_pieces": 50, "concurrent_rounds": 1,
        "overhead_requests": 20, "overhead_warmup": 3,
        "import_runs": 2,
        "leak_requests": 200,
        "gateway_requests": 10, "gateway_warmup": 2, "gateway_load": 40, "gateway_concurrency": 4,
    },
}

#: Short streams for the overhead and leak checks: 3 text deltas.
SHORT_PIECES = 3


class Results:
    def __init__(self) -> None:
        self.figures: dict[str, dict[str, Any]] = {}
        self.ratios: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self.notes: dict[str, Any] = {}
        self.rows: list[tuple[str, ...]] = []  # the printed table

    def add(self, key: str, values: list[float], unit: str, **extra: Any) -> dict[str, Any]:
        fig = self.figures[key] = figure(values, unit, **extra)
        return fig

    def ratio(
        self, key: str, values: list[float], what: str, *, target: str | None = None,
        ok: bool | None = None,
    ) -> dict[str, Any]:
        fig = figure(values, "x", what=what)
        if target is not None:
            fig["target"] = target
            fig["met"] = ok
        self.ratios[key] = fig
        return fig


def _paired(a: list[float], b: list[float]) -> list[float]:
    """Per-round ratios a[i] / b[i] (rounds interleave contestants, so drift cancels)."""
    return [x / y for x, y in zip(a, b, strict=True) if y > 0]


def _fmt(value: float, digits: int = 3) -> str:
    if value != value:  # NaN
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{max(digits - len(str(int(abs(value)))), 0)}f}"


# -- 1. parsers ----------------------------------------------------------------------------------


def section_parse(res: Results, size: dict[str, int]) -> None:
    from bench_parsers import contestants_for

    pieces, rounds = size["parse_pieces"], size["parse_rounds"]
    for make in (openai_corpus, anthropic_corpus, ollama_corpus):
        corpus = make(pieces)
        chunks = corpus.chunks
        skipped: dict[str, str] = {}
        contestants = contestants_for(corpus, skipped)
        for key, why in skipped.items():
            res.skipped[f"parse.{corpus.name}.{key}"] = why
        # Check each contestant did the whole job before timing it.
        for c in contestants:
            count, text = c.run(chunks)
            if c.role == "subject" and text != corpus.text:
                raise AssertionError(f"modelwire reassembled the {corpus.name} text wrongly")
            if c.role in ("peer", "floor") and count != len(corpus.payloads):
                raise AssertionError(f"{c.key} decoded {count} of {len(corpus.payloads)} payloads")
        times: dict[str, list[float]] = {c.key: [] for c in contestants}
        for r in range(rounds):
            order = contestants[r % len(contestants):] + contestants[: r % len(contestants)]
            for c in order:
                gc.collect()
                t = time.perf_counter()
                c.run(chunks)
                times[c.key].append(time.perf_counter() - t)
        n = corpus.events
        res.notes[f"parse.{corpus.name}"] = {
            "bytes": len(corpus.body), "chunks": len(chunks), "wire_events": n,
            "text_deltas": pieces, "rounds": rounds,
        }
        res.rows.append((f"1. parse {corpus.name} ({n:,} events, {len(corpus.body) / 1e6:.1f} MB, "
                         "1 KiB chunks)", "us/event", "IQR", "events/s", "modelwire is"))
        mw = times["modelwire"]
        for c in contestants:
            us = [t / n * 1e6 for t in times[c.key]]
            eps = [n / t for t in times[c.key]]
            res.add(f"parse.{corpus.name}.{c.key}.us_per_event", us, "us/event", label=c.label)
            res.add(f"parse.{corpus.name}.{c.key}.events_per_s", eps, "events/s", label=c.label)
            if c.key == "modelwire":
                cmp = ""
            elif c.role == "diag":
                share = statistics.median(_paired(times[c.key], mw))
                res.notes[f"parse.{corpus.name}"][f"{c.key}_share_of_modelwire_time"] = share
                cmp = f"{share:.0%} of modelwire's time"
            elif c.role == "floor":
                ratio = res.ratio(f"parse.{corpus.name}.time_vs_floor", _paired(mw, times[c.key]),
                                  "modelwire time / json.loads-alone time", target="<= 1.3",
                                  ok=None)
                ratio["met"] = ratio["median"] <= 1.3
                cmp = f"{ratio['median']:.2f}x floor time"
            else:
                speed = _paired(times[c.key], mw)
                key = f"parse.{corpus.name}.speed_vs_{c.key}"
                if c.key == "openai_sdk":
                    ratio = res.ratio(key, speed, "modelwire events/s / openai SDK decoder events/s",
                                      target=">= 1.5")
                    ratio["met"] = ratio["median"] >= 1.5
                else:
                    ratio = res.ratio(key, speed, f"modelwire events/s / {c.label} events/s")
                cmp = f"{ratio['median']:.2f}x as fast"
            fig = res.figures[f"parse.{corpus.name}.{c.key}.us_per_event"]
            res.rows.append((c.label, _fmt(fig["median"]), _fmt(fig["iqr"]),
                             _fmt(statistics.median(eps)), cmp))


# -- 2./3. end to end and per-request overhead ---------------------------------------------------


def _e2e_clients(res: Results, url: str, section: str, pool: int = 100) -> dict[str, Any]:
    from bench_e2e import CLIENTS, make_client

    clients = {}
    for key in CLIENTS:
        try:
            clients[key] = make_client(key, url, pool)
        except ImportError as exc:
            res.skipped[f"{section}.{key}"] = f"not installed ({exc.name or exc})"
    return clients


def section_e2e(res: Results, size: dict[str, int]) -> None:
    from bench_e2e import ServerProcess, check, cpu_note, timed_streams, warm_pool, wire_events

    single, concurrent = size["single_pieces"], size["concurrent_pieces"]
    conc = size["concurrency"]

    async def main(urls: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for phase, url, pieces, streams, rounds in (
            ("single", urls["single"], single, 1, size["single_rounds"]),
            ("concurrent", urls["concurrent"], concurrent, conc, size["concurrent_rounds"]),
        ):
            clients = _e2e_clients(res, url, f"e2e.{phase}", pool=streams)
            for c in clients.values():
                await check(c, pieces)  # warm-up: connection, compiled rules, right text
                if streams > 1:  # open the pool's connections before timing
                    await warm_pool(c, streams)
            samples: dict[str, list[tuple[float, float]]] = {k: [] for k in clients}
            keys = list(clients)
            for r in range(rounds):
                for key in keys[r % len(keys):] + keys[: r % len(keys)]:
                    samples[key].append(await timed_streams(clients[key], streams))
            for c in clients.values():
                await c.aclose()
            out[phase] = (samples, wire_events(pieces) * streams, {k: c.label for k, c in clients.items()})
        return out

    with ServerProcess(single=single, concurrent=concurrent) as server:
        data = asyncio.run(main(server.urls))

    for phase, (samples, events, labels) in data.items():
        what = (f"one stream of {events:,} events" if phase == "single"
                else f"{conc} concurrent streams x {events // conc:,} events")
        res.notes[f"e2e.{phase}"] = {"events_per_round": events, "what": what, "cpu": cpu_note()}
        res.rows.append((f"2. e2e {phase}: {what}", "CPU us/event", "IQR", "events/s (wall)",
                         "modelwire is"))
        cpu = {k: [c / events * 1e6 for _, c in v] for k, v in samples.items()}
        wall = {k: [events / w for w, _ in v] for k, v in samples.items()}
        for key in samples:
            res.add(f"e2e.{phase}.{key}.cpu_us_per_event", cpu[key], "us/event", label=labels[key])
            res.add(f"e2e.{phase}.{key}.events_per_s", wall[key], "events/s", label=labels[key])
            cmp = ""
            if key == "httpx" and "modelwire" in cpu:
                ratio = res.ratio(f"e2e.{phase}.cpu_vs_floor", _paired(cpu["modelwire"], cpu["httpx"]),
                                  "modelwire client CPU per event / raw httpx + json.loads",
                                  target="<= 1.2" if phase == "concurrent" else None)
                if phase == "concurrent":
                    ratio["met"] = ratio["median"] <= 1.2
                cmp = f"{ratio['median']:.2f}x floor CPU"
            elif key == "openai" and "modelwire" in cpu:
                ratio = res.ratio(f"e2e.{phase}.cpu_speed_vs_openai_sdk",
                                  _paired(cpu["openai"], cpu["modelwire"]),
                                  "openai SDK CPU per event / modelwire CPU per event")
                cmp = f"{ratio['median']:.1f}x less CPU"
            fig = res.figures[f"e2e.{phase}.{key}.cpu_us_per_event"]
            res.rows.append((labels[key], _fmt(fig["median"]), _fmt(fig["iqr"]),
                             _fmt(statistics.median(wall[key])), cmp))


def section_overhead(res: Results, size: dict[str, int]) -> None:
    from bench_e2e import ServerProcess, check, per_request_latencies

    n = size["overhead_requests"]

    async def main(url: str) -> tuple[dict[str, Any], dict[str, str]]:
        clients = _e2e_clients(res, url, "overhead")
        for c in clients.values():
            await check(c, SHORT_PIECES)
        # Each client takes turns with raw httpx only: a request right after an
        # openai SDK request was measured ~0.1 ms slower, whoever made it.
        runs: dict[str, Any] = {}
        for key in clients:
            if key != "httpx" and "httpx" in clients:
                pair = {key: clients[key], "httpx": clients["httpx"]}
                runs[key] = await per_request_latencies(pair, n, size["overhead_warmup"])
        labels = {k: c.label for k, c in clients.items()}
        for c in clients.values():
            await c.aclose()
        return runs, labels

    with ServerProcess(short=SHORT_PIECES) as server:
        runs, labels = asyncio.run(main(server.urls["short"]))
    res.notes["overhead"] = {
        "requests": n, "text_deltas_per_stream": SHORT_PIECES,
        "order": "each client alternates with raw httpx, request by request, first mover alternating",
    }
    res.rows.append((f"3. per-request: {n} sequential streams of {SHORT_PIECES} deltas",
                     "median ms", "CPU ms", "p95 ms", "added over raw httpx (its turns)"))
    rows: list[tuple[str, ...]] = []
    for key, pair in runs.items():
        ms, cpu = ([v * 1e3 for v in vals] for vals in pair[key])
        bms, bcpu = ([v * 1e3 for v in vals] for vals in pair["httpx"])
        fig = res.add(f"overhead.{key}.latency_ms", ms, "ms", label=labels[key], p95=percentile(ms, 95))
        cfig = res.add(f"overhead.{key}.cpu_ms", cpu, "ms", label=labels[key])
        base = res.add(f"overhead.httpx_vs_{key}.latency_ms", bms, "ms", label=labels["httpx"],
                       p95=percentile(bms, 95))
        bcfig = res.add(f"overhead.httpx_vs_{key}.cpu_ms", bcpu, "ms", label=labels["httpx"])
        added = fig["median"] - base["median"]
        added_p95 = fig["p95"] - base["p95"]
        added_cpu = cfig["median"] - bcfig["median"]
        r = res.ratio(f"overhead.{key}.added_ms", [a - b for a, b in zip(ms, bms, strict=True)],
                      f"{labels[key]} latency minus raw httpx, paired request by request (ms)",
                      target="<= 0.3" if key == "modelwire" else None)
        r.update(unit="ms", difference_of_medians=added, difference_of_p95=added_p95,
                 cpu_difference_of_medians=added_cpu)
        if key == "modelwire":
            r["met"] = added <= 0.3
            rows.insert(0, (labels["httpx"], _fmt(base["median"]), _fmt(bcfig["median"]),
                            _fmt(base["p95"]), "(in its turns with modelwire)"))
        rows.append((labels[key], _fmt(fig["median"]), _fmt(cfig["median"]), _fmt(fig["p95"]),
                     f"{added:+.3f} median, {added_p95:+.3f} p95, {added_cpu:+.3f} CPU"))
    res.rows.extend(rows)


# -- 4. import time ------------------------------------------------------------------------------


def section_import(res: Results, size: dict[str, int]) -> None:
    from bench_imports import IMPORTS, import_times, importtime_top

    raw, skipped = import_times(size["import_runs"])
    for key, why in skipped.items():
        res.skipped[f"import.{key}"] = why
    res.add("import._interpreter_start.ms", [t * 1e3 for t in raw.pop("_interpreter_start")], "ms")
    res.notes["import"] = {
        "method": "wall time of `python -c STMT` minus `python -c pass`, bytecode cached for all",
        "statements": {k: v[0] for k, v in IMPORTS.items()},
        "modelwire_breakdown": importtime_top("import modelwire"),
        "modelwire_ready_breakdown": importtime_top(IMPORTS["modelwire_ready"][0]),
    }
    res.rows.append((f"4. import time, fresh process ({size['import_runs']} runs)", "median ms", "IQR",
                     "", "modelwire is"))
    mw = raw.get("modelwire")
    for key, values in raw.items():
        ms = [v * 1e3 for v in values]
        fig = res.add(f"import.{key}.ms", ms, "ms", statement=IMPORTS[key][0])
        cmp = ""
        if mw is not None and key in ("openai", "anthropic", "litellm"):
            ratio = res.ratio(f"import.modelwire_vs_{key}", _paired(mw, values),
                              f"import modelwire time / import {key} time",
                              target="<= 0.25" if key == "openai" else None)
            if key == "openai":
                ratio["met"] = ratio["median"] <= 0.25
            cmp = f"{ratio['median']:.3f}x its time"
        label = IMPORTS[key][0] if key != "modelwire_ready" else "import + load builtin manifests + Runtime"
        res.rows.append((label, _fmt(fig["median"]), _fmt(fig["iqr"]), "", cmp))


# -- 5. memory -------------------------------------------------------------------------------------


def section_memory(res: Results, size: dict[str, int]) -> None:
    from bench_e2e import CLIENTS, ServerProcess

    conc, pieces, leak = size["concurrency"], size["concurrent_pieces"], size["leak_requests"]
    runs: dict[str, dict[str, Any]] = {}
    with ServerProcess(long=pieces, short=SHORT_PIECES) as server:
        for key in CLIENTS:
            proc = subprocess.run(
                [sys.executable, str(HERE / "bench_memory.py"), key, server.urls["long"],
                 server.urls["short"], str(conc), str(leak if key == "modelwire" else 0)],
                capture_output=True, text=True, cwd=HERE, timeout=1800,
            )
            if proc.returncode != 0:
                if "ModuleNotFoundError" in proc.stderr:
                    res.skipped[f"memory.{key}"] = "not installed"
                    continue
                raise RuntimeError(f"bench_memory.py {key} failed:\n{proc.stderr[-3000:]}")
            runs[key] = json.loads(proc.stdout.strip().splitlines()[-1])
    res.notes["memory"] = {"concurrent_streams": conc, "events_per_stream": pieces + 4,
                           "leak_requests": leak, "raw": runs}
    res.rows.append((f"5. memory, RSS MiB ({conc} concurrent streams of {pieces + 4} events)",
                     "imported", "ready", f"after {conc} streams", "python start"))

    def mib(kib: int | None) -> float:
        return float("nan") if kib is None else kib / 1024

    for key, run in runs.items():
        for field in ("start_kib", "after_import_kib", "ready_kib", "after_concurrent_kib"):
            res.add(f"memory.{key}.{field.replace('_kib', '')}_mib", [mib(run[field])], "MiB")
        res.rows.append((CLIENTS[key].label, _fmt(mib(run["after_import_kib"])), _fmt(mib(run["ready_kib"])),
                         _fmt(mib(run["after_concurrent_kib"])), _fmt(mib(run["start_kib"]))))
    leak_run = runs.get("modelwire", {}).get("leak")
    if leak_run:
        first, last = leak_run[0], leak_run[-1]
        growth_mib = mib(last["rss_kib"]) - mib(first["rss_kib"])
        objects = last["gc_objects"] - first["gc_objects"]
        allowed = max(2.0, 0.02 * mib(first["rss_kib"]))
        for reading in leak_run:
            res.add(f"memory.modelwire.leak.rss_mib_at_{reading['requests']}", [mib(reading["rss_kib"])], "MiB",
                    gc_objects=reading["gc_objects"])
        r = res.ratio("memory.modelwire.leak_growth_mib", [growth_mib],
                      f"RSS growth from request {first['requests']} to {last['requests']} (MiB)",
                      target=f"flat: <= {allowed:.1f} MiB")
        r["unit"] = "MiB"
        r["gc_objects_growth"] = objects
        r["met"] = growth_mib <= allowed
        res.rows.append((f"5b. leak check: modelwire, {leak:,} sequential requests", "RSS MiB",
                         "gc objects", "", ""))
        for reading in leak_run:
            res.rows.append((f"after {reading['requests']:,} requests", _fmt(mib(reading["rss_kib"])),
                             f"{reading['gc_objects']:,}", "", ""))
        res.rows.append(("growth", f"{growth_mib:+.2f}", f"{objects:+,}", "", "flat" if r["met"] else "GROWING"))


# -- output ------------------------------------------------------------------------------------------


# -- 6. the gateway -------------------------------------------------------------------------------


def section_gateway(res: Results, size: dict[str, int]) -> None:
    import tempfile

    from bench_e2e import ServerProcess
    from bench_gateway import latencies, litellm_proxy, modelwire_proxy, throughput

    n, warm = size["gateway_requests"], size["gateway_warmup"]
    load, conc = size["gateway_load"], size["gateway_concurrency"]
    with ServerProcess(short=SHORT_PIECES) as server, tempfile.TemporaryDirectory() as tmp:
        provider = server.urls["short"] + "/openai/v1"
        proxies = {"modelwire": modelwire_proxy(provider)}
        try:
            proxies["litellm"] = litellm_proxy(provider, Path(tmp))
        except FileNotFoundError as exc:
            res.skipped["gateway.litellm"] = str(exc)
        running = {}
        try:
            for key, proxy in proxies.items():
                try:
                    running[key] = proxy.__enter__()
                except RuntimeError as exc:
                    res.skipped[f"gateway.{key}"] = str(exc)[:500]
            urls = {"direct": provider + "/chat/completions",
                    **{k: p.url + "/v1/chat/completions" for k, p in running.items()}}
            labels = {"direct": "the provider directly", "modelwire": "modelwire serve", "litellm": "LiteLLM proxy"}
            for stream in (False, True):
                kind = "streamed" if stream else "whole"
                times = asyncio.run(latencies(urls, n, warm, stream))
                res.rows.append((f"6. gateway: {n} sequential {kind} requests ({SHORT_PIECES} deltas), interleaved",
                                 "median ms", "p95 ms", "added ms", "added over the provider (paired)"))
                base = [t * 1e3 for t in times["direct"]]
                for key in urls:
                    ms = [t * 1e3 for t in times[key]]
                    fig = res.add(f"gateway.{kind}.{key}.latency_ms", ms, "ms", label=labels[key],
                                  p95=percentile(ms, 95))
                    cmp = ""
                    added = float("nan")
                    if key != "direct":
                        r = res.ratio(f"gateway.{kind}.{key}.added_ms", [a - b for a, b in zip(ms, base, strict=True)],
                                      f"{labels[key]} latency minus the provider's, paired round by round (ms)",
                                      target="< 1" if key == "modelwire" else None)
                        r["unit"] = "ms"
                        added = r["median"]
                        if key == "modelwire":
                            r["met"] = added < 1
                        cmp = f"{added:+.3f} ms"
                    res.rows.append((labels[key], _fmt(fig["median"]), _fmt(fig["p95"]), _fmt(added), cmp))
            for stream in (False, True):
                kind = "streamed" if stream else "whole"
                res.rows.append((f"6b. gateway: {load} {kind} requests, {conc} concurrent",
                                 "req/s", "req/CPU-s", "", "requests per second per core of the proxy"))
                for key, proxy in running.items():
                    assert proxy.proc is not None
                    wall, per_core = asyncio.run(throughput(urls[key], proxy.proc.pid, load, conc, stream))
                    res.add(f"gateway.{kind}.{key}.requests_per_s", [wall], "req/s", label=labels[key])
                    res.add(f"gateway.{kind}.{key}.requests_per_cpu_s", [per_core], "req/CPU-s", label=labels[key])
                    res.rows.append((labels[key], _fmt(wall), _fmt(per_core), "", ""))
        finally:
            for proxy in running.values():
                proxy.__exit__(None, None, None)
    res.notes["gateway"] = {
        "requests": n, "load": load, "concurrency": conc, "text_deltas": SHORT_PIECES,
        "provider": "modelwire.testing ReplayServer in its own process (OpenAI format)",
        "proxies": "each in its own process, one worker, no keys; CPU from /proc (utime + stime)",
    }


def print_table(res: Results) -> None:
    widths = (50, 12, 10, 17, 44)
    for row in res.rows:
        if row[0][:2] in {f"{i}." for i in range(1, 7)} or row[0].startswith(("5b.", "6b.")):
            print()
            print(f"{row[0]}")
            print("  " + "".join(h.rjust(w) for h, w in zip(("", *row[1:]), widths, strict=False)))
            continue
        label = row[0] if len(row[0]) <= widths[0] - 2 else row[0][: widths[0] - 3] + "…"
        print("  " + label.ljust(widths[0]) + "".join(
            str(v).rjust(w) for v, w in zip(row[1:], widths[1:], strict=False)))
    print()
    print("Targets (ratios measured in this run):")
    for key, r in res.ratios.items():
        if "target" not in r or r["target"] is None:
            continue
        unit = r.get("unit", "x")
        mark = "met" if r.get("met") else "MISSED"
        print(f"  {key:44s} {r['median']:8.3f} {unit:4s} target {r['target']:18s} {mark}")
    if res.skipped:
        print()
        print("Skipped:")
        for key, why in res.skipped.items():
            print(f"  {key}: {why}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: proves the suite runs, measures nothing")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--name", help="results file name (default: <mode>-<timestamp>)")
    ap.add_argument("--out-dir", type=Path, default=HERE / "results", help="where results/<name>.json goes")
    args = ap.parse_args(argv)

    mode = "quick" if args.quick else "full"
    size = SIZES[mode]
    sections = args.only or list(SECTIONS)
    name = args.name or f"{mode}-{time.strftime('%Y%m%d-%H%M%S')}"
    res = Results()
    started = time.time()
    info = machine()
    print(f"modelwire benchmarks ({mode}): {', '.join(sections)}; python {info['python']}, "
          f"{info['cpu_count']} CPUs, load {info['load_average_at_start']}", flush=True)
    durations = {}
    for section in sections:
        t = time.perf_counter()
        print(f"  running {section} ...", flush=True)
        globals()[f"section_{section}"](res, size)
        durations[section] = round(time.perf_counter() - t, 1)
    print_table(res)
    try:
        info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    doc = {
        "name": name,
        "mode": mode,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": durations,
        "machine": info,
        "source": source(),
        "packages": packages(),
        "sizes": size,
        "figures": res.figures,
        "ratios": res.ratios,
        "skipped": res.skipped,
        "notes": res.notes,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
