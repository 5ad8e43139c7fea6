"""Print the mutmut score per module (used by ``nox -s mutants``)."""

from __future__ import annotations

import collections
import subprocess

out = subprocess.run(
    ["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True
).stdout
counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
for line in out.splitlines():
    name, sep, status = line.strip().rpartition(": ")
    if not sep or "__mutmut_" not in name:
        continue
    module = name.split(".x_")[0].split(".xǁ")[0]
    counts[module][status.strip()] += 1
for module, c in sorted(counts.items()):
    done = sum(v for k, v in c.items() if k != "not checked")
    killed = c["killed"] + c["timeout"]
    pct = 100 * killed / done if done else 0.0
    print(f"{module:40} killed {killed:4}/{done:4} checked ({pct:5.1f} %), {c['not checked']} not checked")
