"""``python -m bench run --count``: count every case's instructions per step, then write the folder."""

from __future__ import annotations

import sys
import time
from typing import Any

from bench.campaign import counting
from bench.campaign.environments import worker_environments
from bench.campaign.progress import Progress
from bench.core.cases import Settings, rows_of
from bench.core.errors import BenchError, Interrupted
from bench.core.options import asked_cases
from bench.host import machine
from bench.report import counts, outdir, timings


def run_command(o: Any) -> int:
    """``python -m bench run --count``: count every case, write the results folder; 0 when every case has
    its count, else 1."""
    version = counting.valgrind_version()
    started, env = time.time(), machine.environment("cpu")  # the commit and versions that run, read first
    settings = Settings(repeats=o.repeats, threads=1, device="cpu", quick=o.quick, timeout=o.timeout)
    cases = asked_cases(o)
    folder = outdir.ResultsFolder(o.out)
    progress = Progress(len(cases) * o.repeats)
    try:
        with folder:
            # The workers' files (task data, callgrind's dumps, answers) go in the system's temporary folder,
            # removed at the end, not in the results folder: the paths a worker is given are then as long
            # in every run whatever --out is, and so is its heap's layout (an --out 25 characters longer
            # moved numpy's counts by 0.1 %, through CPython's caches that hash addresses)
            try:
                found = counting.count_cases(cases, settings, progress, jobs=o.jobs)
            finally:
                progress.close()
            rows = rows_of(cases, found)
            failed = [r for r in rows if "error" in r and not r.get("cannot")]  # not what a backend says it cannot
            if sum("error" in r for r in rows) == len(rows):
                print(timings.failure_list([r for r in rows if "error" in r]), file=sys.stderr)
                raise BenchError(f"no case was counted: {o.out} unchanged")
            summary = counts.write(folder.staging / "results", o, rows, time.time() - started, env,
                                  counting.what_was_counted(version, o),
                            worker_environments(o))  # fmt: skip
            folder.commit(folder.staging / "results")
    except KeyboardInterrupt:
        done = "the results were written" if folder.committed else "unchanged"
        raise Interrupted(f"interrupted; {o.out} {done}") from None
    print(summary)
    if failed:
        print(timings.failure_list(failed), file=sys.stderr)
        print(f"error: {len(failed)} of {len(rows)} cases failed; the results in {o.out} say why", file=sys.stderr)
        return 1
    return 0
