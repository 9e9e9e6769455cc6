"""The committed results respect the memory floor: at the size sweep's largest N, no case takes less
time a step than reading its bytes (x and y) at the read bandwidth measured in the same run.

A step that beats that floor means the floor was measured too low (one kernel's bandwidth, not the
machine's): bench/worker/floor.py measures the best of several. 5 % of slack for the noise of two timings."""

from __future__ import annotations

import json

from bench.host import envs
from bench.report.timings import FLOOR_SLACK as SLACK


def test_no_scaling_case_beats_the_memory_floor():
    results = json.loads((envs.ROOT / "results" / "results.json").read_text())
    bandwidth = results["read_bandwidth_bytes_per_s"]
    cases = [c for c in results["cases"] if c["kind"] == "scaling" and "median_s" in c]
    largest = max(c["n"] for c in cases)
    at_largest = [c for c in cases if c["n"] == largest]
    assert at_largest
    ratios = {f"{c['backend']} {c['dtype']}": c["median_s"] / (c["bytes_per_step"] / bandwidth) for c in at_largest}
    below = {k: round(v, 2) for k, v in ratios.items() if v < SLACK}
    assert not below, f"faster than the {bandwidth / 1e9:.1f} GB/s read floor at N = {largest:g}: {below}"
