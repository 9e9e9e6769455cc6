"""``python -m bench run``: time every backend in isolated processes (bench.campaign.timing), then
write the results folder (bench.report.timings)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.campaign import timing
from bench.campaign.environments import worker_environments
from bench.campaign.progress import Progress
from bench.core.cases import Case, rows_of
from bench.core.errors import BenchError, Interrupted
from bench.core.options import QUICK_FLOOR, Options, asked_cases
from bench.host import envs, machine
from bench.report import outdir, timings
from bench.worker import floor as bench_floor


def check_device(device: str) -> None:
    if device != "cuda":
        return
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"
    if subprocess.run([envs.python("main"), "-c", probe], cwd=envs.ROOT, capture_output=True).returncode:
        raise BenchError("--device cuda: no CUDA GPU is visible to torch here (torch.cuda.is_available() is False)")


def run(o: Options) -> int:
    """Time every backend, write the results folder; 0 when every case has its figures, else 1."""
    check_device(o.device)
    started, env = time.time(), machine.environment(o.device)  # the commit and versions that run, read first
    folder = outdir.ResultsFolder(o.out)
    try:
        with folder:
            spent: dict[str, float] = {}
            found = timed(o, folder.staging, spent)
            read = QUICK_FLOOR if o.quick else {}
            floor_started = time.time()  # once, after the timings: paging its 800 MiB in takes seconds
            floor = bench_floor.best(bench_floor.attempt(o.threads, **read))  # a failure is a line, not a lost run
            if o.widths:  # the compute floor of the width sweep, read as the memory floor is (--quick: numpy's, small)
                products = {"kernels": ["numpy-matmul"], "sizes": (256,), "repeats": 2} if o.quick else {}
                floor["compute"] = bench_floor.compute_attempt(o.threads, o.dtypes, o.native_blas, **products)
            floor["wall_s"] = time.time() - floor_started
            rows = timings.with_metrics(rows_of(asked_cases(o), found))
            failed = [r for r in rows if "error" in r and not r.get("cannot")]  # not what a backend says it cannot
            if sum("error" in r for r in rows) == len(rows):
                print(timings.failure_list([r for r in rows if "error" in r]), file=sys.stderr)
                raise BenchError(f"no case was measured: {o.out} unchanged")
            summary = timings.write(folder.staging / "results", o, rows, spent, floor, time.time() - started, env,
                                    worker_environments(o))  # fmt: skip
            folder.commit(folder.staging / "results")
    except KeyboardInterrupt:
        done = "the results were written" if folder.committed else "unchanged"
        raise Interrupted(f"interrupted; {o.out} {done}") from None
    if o.out == envs.ROOT / "results" and o.device == "cpu" and not o.quick:
        timings.update_readme(summary)
    print(summary)
    written = json.loads((o.out / "results.json").read_text())
    print(timings.time_line(written["time_s"], written["jobs"]))
    if failed:
        print(timings.failure_list(failed), file=sys.stderr)
        print(f"error: {len(failed)} of {len(rows)} cases failed; the results in {o.out} say why", file=sys.stderr)
        return 1
    return 0


def timed(o: Options, scratch: Path, spent: dict[str, float]) -> dict[Case, dict[str, Any]]:
    """Every case of the run measured by a timing campaign (bench.campaign.timing), its workers' files in
    ``scratch`` (staged beside the results, then gone); ``spent`` is filled with where the time went."""
    cases = asked_cases(o)
    settings = o.settings
    bar = Progress(len(cases) * settings.calls + sum(c.kind == "speed" for c in cases))
    temporary, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        return timing.time_cases(cases, settings, bar, spent)
    finally:
        tempfile.tempdir = temporary
        bar.close()
