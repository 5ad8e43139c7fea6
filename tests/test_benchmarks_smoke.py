"""The benchmark suite still runs: ``benchmarks/run.py --quick`` end to end.

Proves only that every section runs and writes well-formed results; it
asserts nothing about speed (speed is measured by ``nox -s bench``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"
SECTIONS = ("parse", "e2e", "overhead", "import", "memory", "gateway")


def test_quick_benchmark_run_writes_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--name", "smoke", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "smoke.json").read_text(encoding="utf-8"))
    assert doc["mode"] == "quick"
    assert set(doc["seconds"]) == set(SECTIONS)
    assert doc["machine"]["cpu_count"] >= 1
    assert doc["packages"]["modelwire"]
    figures = doc["figures"]
    for key in (
        "parse.openai.modelwire.us_per_event",
        "parse.openai.floor.us_per_event",
        "parse.anthropic.modelwire.us_per_event",
        "parse.ollama.modelwire.us_per_event",
        "e2e.single.modelwire.events_per_s",
        "e2e.concurrent.modelwire.cpu_us_per_event",
        "e2e.concurrent.httpx.cpu_us_per_event",
        "overhead.modelwire.latency_ms",
        "import.modelwire.ms",
        "memory.modelwire.after_import_mib",
        "gateway.whole.modelwire.latency_ms",
        "gateway.streamed.modelwire.requests_per_cpu_s",
    ):
        fig = figures[key]
        assert {"median", "q1", "q3", "iqr", "min", "max", "n", "unit"} <= set(fig), key
        assert fig["n"] >= 1
    leak = doc["notes"]["memory"]["raw"]["modelwire"]["leak"]
    assert [r["requests"] for r in leak][-1] == doc["sizes"]["leak_requests"]
    assert "parse.openai.time_vs_floor" in doc["ratios"]
    assert "gateway.whole.modelwire.added_ms" in doc["ratios"]
