"""``python -m bench``: list, train, compare (run from the main environment)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import backends
import tasks
from bench import envs, harness
from bench.compare import end_error, end_tol, run_diff, tol


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parser() -> Parser:
    p = Parser(prog="python -m bench", description="autodiff-bench: one task, every autodiff backend.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("list", help="tasks and backends, and whether each backend can run")
    t = sub.add_parser("train", help="train one task on one backend")
    t.add_argument("task")
    t.add_argument("--backend", required=True)
    t.add_argument("--dtype", default="float64")
    t.add_argument("--lr", type=float, help="a constant learning rate instead of the task's schedule")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    c = sub.add_parser("compare", help="train tasks on every backend and compare with the numpy reference")
    c.add_argument("tasks", nargs="*", metavar="TASK")
    c.add_argument("--dtype", default="float64")
    r = sub.add_parser("run", help="time every backend, each in its own process, and write results/")
    r.add_argument("--out", type=Path, default=envs.ROOT / "results", help="results folder (default: results/)")
    r.add_argument("--tasks", help="comma-separated tasks (default: all; with --quick, those under 1,000 steps)")
    r.add_argument("--backends", help="comma-separated backends (default: all)")
    r.add_argument("--dtype", help="float64, float32 or both (default; float64 with --quick)")
    r.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="threads per framework (default: all cores)"
    )
    r.add_argument("--device", default="cpu", help="cpu (default) or cuda, for torch and jax")
    r.add_argument("--quick", action="store_true", help="a smoke run of under a minute; its timings are not to be read")
    r.add_argument("--timeout", type=float, help="seconds a backend's worker may take (default 900, quick 120)")
    return p


def cmd_list() -> int:
    print("tasks:")
    for name in tasks.TASKS:
        t = tasks.get(name)
        print(f"  {name:<14} {t.steps:>6} steps  {t.source}")
    print("backends:")
    for name, spec in backends.BACKENDS.items():
        reason = envs.missing(spec.framework, spec.env)
        print(f"  {name:<14} {envs.ENVS[spec.env] + '/':<14} {'available' if reason is None else reason}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    run = harness.train(a.task, a.backend, a.dtype, lr=a.lr)
    if a.json:
        print(json.dumps({k: getattr(run, k) for k in ("task", "backend", "dtype", "params", "losses")}))
    else:
        params = ", ".join(f"{k} = {fmt(v)}" for k, v in run.params.items())
        steps = f"{run.task} on {run.backend} ({run.dtype}), {len(run.losses)} steps"
        print(f"{steps}: {params}; final loss {run.losses[-1]:.9g}")
    return 0


def fmt(values: Any) -> str:
    """A parameter (nested lists): a number, a short vector in full, anything larger by its shape."""
    a = np.asarray(values, dtype="float64")
    if a.size == 1:
        return f"{a.item():.9g}"
    if a.ndim == 1 and a.size <= 4:
        return "[" + ", ".join(f"{v:.9g}" for v in a) + "]"
    return f"<{'×'.join(map(str, a.shape))} array, largest |value| {np.max(np.abs(a)):.3g}>"


def cmd_compare(a: argparse.Namespace) -> int:
    names = a.tasks or list(tasks.TASKS)
    for name in names:
        harness.check(name, "numpy", a.dtype)
    calls = [("train", {"task": t, "backend": b, "dtype": a.dtype}) for t in names for b in backends.BACKENDS]
    outcomes = harness.call_many(calls)
    refs: dict[tuple[str, str], harness.Run] = {}
    rows, ok = [], True
    for (_, kw), out in zip(calls, outcomes, strict=True):
        if isinstance(out, harness.BenchError):
            rows.append((kw["task"], kw["backend"], "", "", "", "", str(out)))
            ok = False
            continue
        key = (out.task, out.lr_dtype)
        if key not in refs:
            refs[key] = harness.train(out.task, "numpy", a.dtype, lr_dtype=out.lr_dtype)
        task, diff = tasks.get(out.task), run_diff(out, refs[key])
        agrees = diff <= tol(task, a.dtype)
        ok &= agrees
        verdict = "agrees" if agrees else "DIFFERS"
        if out.lr_dtype != "float64":
            verdict += f" (reference with its {out.lr_dtype} learning rate)"
        end = end_error(out, task.expected)
        reached = (
            "-" if not task.expected else f"{'yes' if end <= end_tol(task.expected_tol, a.dtype) else 'NO'} ({end:.1e})"
        )
        params = ", ".join(f"{k}={fmt(v)}" for k, v in out.params.items())
        rows.append((out.task, out.backend, params, f"{out.losses[-1]:.6g}", f"{diff:.1e}", reached, verdict))
    header = ("task", "backend", f"final parameters ({a.dtype})", "final loss", "max rel diff", "stated end", "verdict")
    print_table(header, rows)
    return 0 if ok else 1


def choices(value: str | None, valid: Sequence[str], kind: str) -> list[str]:
    names = value.split(",") if value else list(valid)
    for name in names:
        harness.require(kind, name, valid)
    return names


def cmd_run(a: argparse.Namespace) -> int:
    from bench import run

    dtype = a.dtype or ("float64" if a.quick else "both")
    dtypes = list(harness.DTYPES) if dtype == "both" else choices(dtype, harness.DTYPES, "dtype")
    o = run.Options(
        out=a.out, tasks=choices(a.tasks or ",".join(run.default_tasks(a.quick)), list(tasks.TASKS), "task"),
        dtypes=dtypes,
        backends=choices(a.backends, list(backends.BACKENDS), "backend"), threads=a.threads,
        device=choices(a.device, ["cpu", "cuda"], "device")[0], quick=a.quick,
        timeout=a.timeout or (120.0 if a.quick else 900.0),
    )  # fmt: skip
    return run.run(o)


def print_table(header: Sequence[str], rows: list[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        if a.command == "list":
            return cmd_list()
        return {"train": cmd_train, "compare": cmd_compare, "run": cmd_run}[a.command](a)
    except harness.BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_status


if __name__ == "__main__":
    sys.exit(main())
