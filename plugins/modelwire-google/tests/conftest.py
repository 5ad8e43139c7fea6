"""Test settings shared by this plugin's tests."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Hypothesis: timing must not matter (no deadlines), and CI runs a fixed,
# derandomised set of examples (set CI to select it; locally examples vary).
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
