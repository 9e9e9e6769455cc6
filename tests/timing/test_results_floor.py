"""The committed results respect the memory floor: at the size sweep's largest N, no case whose arrays
outgrow the last-level cache takes less time a step than reading its bytes (x and y) at the read bandwidth
measured in the same run.

A step that beats that floor means the floor was measured too low (one kernel's bandwidth, not the
machine's): bench/worker/floor.py measures the best of several. 5 % of slack for the noise of two timings.
Arrays that fit in the last-level cache (the host's, as results.json records it) are read from the cache, which
may be faster than memory: the floor does not bound them."""

from __future__ import annotations

import json

import pytest

from bench.host import envs
from bench.report.timings import FLOOR_SLACK as SLACK


def test_no_scaling_case_beats_the_memory_floor():
    results = json.loads((envs.ROOT / "results" / "results.json").read_text())
    bandwidth = results["read_bandwidth_bytes_per_s"]
    cases = [c for c in results["cases"] if c["kind"] == "scaling" and "median_s" in c]
    largest = max(c["n"] for c in cases)
    llc = results["environment"].get("llc_bytes")
    at_largest = [c for c in cases if c["n"] == largest and (llc is None or c["bytes_per_step"] > llc)]
    if not at_largest:
        pytest.skip(f"every case at N = {largest:g} fits in the {llc / 2**20:g} MiB last-level cache")
    ratios = {f"{c['backend']} {c['dtype']}": c["median_s"] / (c["bytes_per_step"] / bandwidth) for c in at_largest}
    below = {k: round(v, 2) for k, v in ratios.items() if v < SLACK}
    assert not below, f"faster than the {bandwidth / 1e9:.1f} GB/s read floor at N = {largest:g}: {below}"
