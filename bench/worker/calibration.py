"""What the machine was doing while a case was timed, read in the timing worker beside its rounds.

- Two fixed calibration kernels, timed every so often between rounds: ``cpu``, a loop of small numpy
  operations (interpreter and dispatch, what the small tasks' steps are made of), and ``memory``, a sum
  over 32 MiB (past the per-core caches). The same work every time: a process whose kernels ran slower
  than in the other processes of its case timed it while something else ran on the machine.
- The share of the wall-clock time the worker's CPU gave it (its CPU time over the rounds' wall time:
  a worker pinned to one CPU shares it with whatever else the scheduler puts there).
- The steal time the hypervisor reports in /proc/stat (time a virtual CPU waited for the host).

``bench.core.noise_model`` judges these against the other processes that timed the same case (``noisy``); this
module only reads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

MEMORY_ELEMENTS = 4 * 2**20  # float64: 32 MiB
CPU_LOOPS = 200


class Kernels:
    """The two calibration kernels, their arrays made (and paged in) once per process."""

    def __init__(self) -> None:
        self.big = np.ones(MEMORY_ELEMENTS)
        self.small = np.ones(16)

    def cpu(self) -> float:
        start = time.perf_counter()
        a = self.small
        for _ in range(CPU_LOOPS):
            a = a * 1.0 + 0.0
            a.sum()
        return time.perf_counter() - start

    def memory(self) -> float:
        start = time.perf_counter()
        self.big.sum()
        return time.perf_counter() - start


def stolen() -> tuple[int, int]:
    """Steal ticks and all ticks since boot, over every CPU (0, 0 where /proc/stat is not there)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks[:8])


@dataclass
class Reading:
    """The machine's state over one case's rounds in one worker: over each span from ``begin`` to ``end``
    (a case's visits: bench.worker.timer.measure), all of them together."""

    kernels: Kernels
    cpu_s: list[float] = field(default_factory=list)
    memory_s: list[float] = field(default_factory=list)
    start: tuple[float, float, int, int] = (0.0, 0.0, 0, 0)
    spans: list[float] = field(default_factory=lambda: [0.0, 0.0, 0, 0])  # wall, CPU, steal and all ticks

    def begin(self, calibrate: bool = True) -> None:
        self.start = (time.perf_counter(), time.process_time(), *stolen())
        if calibrate:
            self.calibrate()

    def calibrate(self) -> None:
        self.cpu_s.append(self.kernels.cpu())
        self.memory_s.append(self.kernels.memory())

    def end(self, calibrate: bool = True) -> dict[str, float]:
        if calibrate:
            self.calibrate()
        now = (time.perf_counter(), time.process_time(), *stolen())
        self.spans = [total + (b - a) for total, a, b in zip(self.spans, self.start, now, strict=True)]
        wall, cpu, steal, ticks = self.spans
        return {
            "calibration_cpu_s": float(np.median(self.cpu_s)),
            "calibration_memory_s": float(np.median(self.memory_s)),
            "cpu_share": cpu / wall,
            "steal": steal / ticks if ticks > 0 else 0.0,
        }
