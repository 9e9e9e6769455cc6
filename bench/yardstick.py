"""Each backend adapter against its framework's hand-written loop (bench.handwritten) on quadratic:
``.venv/bin/python -m bench.yardstick [--backends B,..] [--sizes N,..] [--dtype D] [--repeats R]``.

One fresh process per backend, in its environment (as ``bench run`` does); in it the adapter
(``harness.build`` and ``timing.Unit``) and the hand-written loop train the same steps of the same data
at the same learning rate, compiled and warmed up first, then timed alternately (which goes first
swaps every repeat), so that a busy moment of a shared machine hits both alike. The figure is the
median over the repeats of the ratio of their times per step (above 1, the adapter is the slower),
beside each one's median time per step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import backends
from bench import envs, handwritten, harness, machine, taskdata
from bench.timing import Unit, seconds

SIZES = (10**2, 10**4, 10**6, 10**7)


def steps(n: int) -> int:
    return max(2, min(200, 10**6 // n))


def lr(n: int) -> float:
    """quadratic's 0.001 at n = 100, scaled to the summed loss of n points (0.001 diverges past n ≈ 10⁴)."""
    return 0.001 * (100 / n)


def measure(backend: str, dtype: str, n: int, repeats: int) -> dict[str, float]:
    """Median seconds per step of the adapter and of the hand-written loop, timed alternately here, and
    the median of each repeat's ratio (its two timings are moments apart: the steadier figure)."""
    k = steps(n)
    unit = Unit(harness.build("quadratic", backend, dtype, n=n, lr=lr(n)), k)
    loop = handwritten.make(backend, harness.make_task("quadratic", lr=lr(n), n=n), dtype)
    times: dict[str, list[float]] = {"adapter": [], "handwritten": []}
    calls = {"adapter": unit, "handwritten": lambda: loop.run(k)}
    for r in range(2 + repeats):  # two rounds of warm-up: compiling, hybridizing, first allocations
        for name in list(calls)[:: 1 if r % 2 else -1]:
            times[name].append(seconds(calls[name]) / k)
    a, h = times["adapter"][2:], times["handwritten"][2:]
    ratio = statistics.median(x / y for x, y in zip(a, h, strict=True))
    return {"adapter": statistics.median(a), "handwritten": statistics.median(h), "ratio": ratio}


def one(backend: str, dtype: str, sizes: list[int], repeats: int) -> None:
    """This process's backend: one JSON line per size."""
    for n in sizes:
        print(json.dumps({"backend": backend, "n": n, **measure(backend, dtype, n, repeats)}), flush=True)


def table(rows: list[dict], sizes: list[int]) -> str:
    lines = [
        "| backend | " + " | ".join(f"N = 1e{len(str(n)) - 1}" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for backend in dict.fromkeys(r["backend"] for r in rows):
        cells = {r["n"]: r for r in rows if r["backend"] == backend}
        lines.append(f"| {backend} | " + " | ".join(cell(cells.get(n)) for n in sizes) + " |")
    return "\n".join(lines)


def cell(row: dict | None) -> str:
    if row is None:
        return "failed"
    return f"{row['ratio']:.2f} ({us(row['adapter'])} / {us(row['handwritten'])})"


def us(t: float) -> str:
    return f"{t * 1e6:.3g} µs" if t < 1e-3 else f"{t * 1e3:.3g} ms"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.yardstick", description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=",".join(backends.BACKENDS))
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--dtype", default="float64", choices=harness.DTYPES)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--one", help=argparse.SUPPRESS)  # in a child: time this backend, print JSON lines
    a = p.parse_args(argv)
    sizes = [int(float(n)) for n in a.sizes.split(",")]
    if a.one:
        one(a.one, a.dtype, sizes, a.repeats)
        return 0
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="autodiff-bench-data-") as folder:
        env = {**os.environ, **machine.thread_settings(a.threads)}
        env |= taskdata.ship(Path(folder), {("quadratic", n) for n in sizes})
        for backend in a.backends.split(","):
            python = envs.python(backends.BACKENDS[backend].env)
            cmd = [python, "-m", "bench.yardstick", "--one", backend, "--sizes", a.sizes, "--dtype", a.dtype]
            done = subprocess.run(
                [*cmd, "--repeats", str(a.repeats)], cwd=envs.ROOT, env=env, capture_output=True, text=True
            )
            got = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode:
                print(f"{backend}: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            print(*(f"{r['backend']} N={r['n']}: {cell(r)}" for r in got), sep="\n", file=sys.stderr, flush=True)
            rows += got
    print(f"adapter / hand-written time per step, median of {a.repeats} alternating repeats ({a.dtype}, ", end="")
    print(f"{a.threads} threads); in brackets each one's median time per step:\n")
    print(table(rows, sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
