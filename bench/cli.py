"""The command line: ``python -m bench list | train | compare | check | run | diff``; every option is checked
before any work."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import backends
import tasks
from bench.campaign.counting import TIMEOUT
from bench.campaign.remote import train
from bench.commands import check, compare, count, diff, run
from bench.core.cases import DTYPES, check_names, require
from bench.core.errors import BenchError, Failed, UsageError
from bench.core.options import (
    JOBS,
    QUICK_REPEATS,
    REPEATS,
    Options,
    asked_cases,
    default_dtypes,
    default_jobs,
    default_tasks,
)
from bench.host import envs, procs
from bench.report import outdir
from bench.report.formatting import parameter, text_table


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parser() -> Parser:
    p = Parser(prog="python -m bench", description="autodiff-bench: one task, every autodiff backend.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("list", help="tasks and backends, and whether each backend can run")
    own = "your own task: a file path/to/task.py or a module package.module defining make() -> Task"
    t = sub.add_parser("train", help="train one task on one backend")
    t.add_argument("task", nargs="?", help="a task's name, or " + own)
    t.add_argument("--task", dest="task_files", action="append", default=[], metavar="FILE_OR_MODULE", help=own)
    t.add_argument("--backend", required=True)
    t.add_argument("--dtype", default="float64")
    t.add_argument("--lr", type=float, help="a constant learning rate instead of the task's schedule")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    c = sub.add_parser("compare", help="train tasks on every backend and compare with the numpy reference")
    c.add_argument("tasks", nargs="*", metavar="TASK")
    c.add_argument("--task", dest="task_files", action="append", default=[], metavar="FILE_OR_MODULE", help=own)
    c.add_argument("--dtype", default="float64")
    c.add_argument("--backends", help="comma-separated backends (default: all)")
    c.add_argument("--operators", action="store_true",
                   help="compare each backend's operators beyond the gradient (jvp, vjp, HVPs, Hessian, Jacobians) "
                        "with the hand-derived values instead of training")  # fmt: skip
    k = sub.add_parser("check", help="check a task before timing it: its gradient, its array use, every backend")
    k.add_argument("task", metavar="FILE_OR_TASK", help="a task's name, or " + own)
    k.add_argument("--backends", help="comma-separated backends whose gradient is checked (default: all)")
    r = sub.add_parser("run", help="time every backend, each in its own process, and write results/")
    r.add_argument("--out", type=Path, default=envs.ROOT / "results", help="results folder (default: results/)")
    r.add_argument("--tasks", help="comma-separated tasks (default: all but wide-mlp, which the width sweep times; "
                   "with --quick, digits); none: the sweeps alone")  # fmt: skip
    r.add_argument("--task", dest="task_files", action="append", default=[], metavar="FILE_OR_MODULE", help=own)
    r.add_argument("--backends", help="comma-separated backends (default: all)")
    r.add_argument("--dtype", help="float64 (default), float32 or both")
    r.add_argument("--sizes", help="comma-separated N of the quadratic sweep, as 10000 or 1e4 (default 1e2,1e4,1e6; "
                   "with --quick none; with --count 1e2,1e4,1e6,1e7); none: no quadratic sweep")  # fmt: skip
    r.add_argument("--widths", help="comma-separated hidden widths of the wide-mlp sweep (default 16,64,256,1024; "
                   "with --quick or --count none); none: no width sweep")  # fmt: skip
    r.add_argument(
        "--threads",
        type=int,
        help=f"threads per framework, 1 to {procs.cpus()}; each timing worker is pinned to that many CPUs (default 1)",
    )
    r.add_argument("--jobs", type=int, help="timing workers at a time, each pinned to CPUs of its own (default "
                   f"{run_jobs()}); --threads N × --jobs J must fit the {procs.cpus()} CPUs here")  # fmt: skip
    r.add_argument("--device", default="cpu", help="cpu (default) or cuda, for torch and jax")
    r.add_argument("--quick", action="store_true", help="a smoke run of under a minute; its timings are not to be read")
    r.add_argument("--timeout", type=float, help="seconds one process may take (default 600, quick 120, count "
                   "3600) for the cases a default run gives it; one given more cases, as much longer")  # fmt: skip
    r.add_argument("--repeats", type=int, help="processes per backend, interleaved (default 3, quick 1, count 1)")
    r.add_argument("--native-blas", action="store_true",
                   help="time the main environment without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, so that numpy's "
                   "OpenBLAS picks its own kernel for this CPU (the MXNet environment keeps them)")  # fmt: skip
    r.add_argument("--count", action="store_true", help="exact instructions per step under valgrind instead of times "
                   "(default: float64, the quadratic sweep in both dtypes)")  # fmt: skip
    r.add_argument("--operators", action="store_true",
                   help="time what goes beyond the gradient too: the operators (jvp, vjp, HVPs, Hessian, Jacobians) "
                   "on logistic, mlp and digits, jvp and the HVPs on wide-mlp at --widths, and the tasks trained by "
                   "Newton's method")  # fmt: skip
    d = sub.add_parser("diff", help="compare two runs' results: environments, then each case's timing")
    d.add_argument("old", metavar="OLD", help="a results folder or its results.json")
    d.add_argument("new", metavar="NEW", help="a results folder or its results.json")
    d.add_argument(
        "--fail-above", type=float, metavar="PCT", help="exit 1 when a case is significantly slower by more than PCT %%"
    )
    return p


def names(value: str | None, valid: Sequence[str], kind: str, flag: str, default: Sequence[str] = ()) -> list[str]:
    """A comma-separated list of known names, none empty and none twice; ``default`` when not given."""
    if value is None:
        return list(default or valid)
    given = value.split(",")
    for name in given:
        if not name.strip():
            raise UsageError(f"{flag}: an empty name in {value!r}; choose from: {', '.join(valid)}")
        require(kind, name, valid)
    twice = next((name for i, name in enumerate(given) if name in given[:i]), None)
    if twice:
        raise UsageError(f"{flag}: {twice!r} is named twice")
    return given


def task_list(given: Sequence[str], files: Sequence[str], checked: bool = True) -> list[str] | None:
    """The names of the tasks given, a user's task files and modules (with a '.' or a '/' in them) added
    to the registry first (``checked``: refused where ``tasks.problems`` finds any); None when none was given."""
    out = []
    for value in [*given, *files]:
        if value in tasks.TASKS or ("." not in value and os.sep not in value and value not in files):
            out.append(value)
            continue
        try:
            out.append(tasks.add(value, checked))
        except tasks.Refused as e:  # what is wrong with the task, in the user's words
            raise UsageError(f"cannot load task {e}") from None
        except Exception as e:  # whatever the user's file raises: one line
            raise UsageError(f"cannot load task {value}: {Failed.of(e)}") from None
    return out or None


def sizes(value: str | None, flag: str = "--sizes", what: str = "points") -> list[int] | None:
    """--sizes (or --widths): whole numbers of ``what``, 1 or more, none twice; ``none``: no sweep (an empty list);
    None (the defaults) when not given."""
    if value is None:
        return None
    if none(value):
        return []
    out = []
    for word in value.split(","):
        try:
            n = float(word)
        except ValueError:
            n = math.nan
        if not (math.isfinite(n) and n >= 1 and n == int(n)):
            raise UsageError(f"{flag}: {word.strip()!r} is not a whole number of {what}, 1 or more (or none)")
        if int(n) in out:
            raise UsageError(f"{flag}: {word.strip()!r} is named twice")
        out.append(int(n))
    return out


def positive(flag: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{flag} must be a finite number greater than 0, not {value:g}")
    return value


def cmd_list() -> int:
    print("tasks:")
    for name in tasks.TASKS:
        t = tasks.get(name)
        print(f"  {name:<14} {t.steps:>6} steps  {t.source}")
    print("backends:")
    width = max(map(len, backends.BACKENDS)) + 1
    for name, spec in backends.BACKENDS.items():
        reason = envs.missing(spec.framework, spec.env)
        print(f"  {name:<{width}} {spec.mode:<14} {envs.ENVS[spec.env] + '/':<14} "
              f"{'available' if reason is None else reason}")  # fmt: skip
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    given = task_list([a.task] if a.task else [], a.task_files) or []
    if len(given) != 1:
        raise UsageError("train takes one task: a name, or --task FILE_OR_MODULE")
    a.task = given[0]
    check_names(a.task, a.backend, a.dtype)
    if a.lr is not None:
        positive("--lr", a.lr)
    trained = train(a.task, a.backend, a.dtype, lr=a.lr)
    if a.json:
        print(json.dumps({k: getattr(trained, k) for k in ("task", "backend", "dtype", "params", "losses")}))
    else:
        params = ", ".join(f"{k} = {parameter(v)}" for k, v in trained.params.items())
        steps = f"{trained.task} on {trained.backend} ({trained.dtype}), {len(trained.losses)} steps"
        print(f"{steps}: {params}; final loss {trained.losses[-1]:.9g}")
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    given = task_list(a.tasks, a.task_files)
    chosen = names(",".join(given) if given else None, list(tasks.TASKS), "task", "compare")
    require("dtype", a.dtype, DTYPES)
    among = names(a.backends, list(backends.BACKENDS), "backend", "--backends")
    if a.operators:
        rows, lines, ok = compare.compare_operators(chosen, a.dtype, among)
        print(text_table(compare.operator_header(), rows))
        print("\n".join(lines))
        return 0 if ok else 1
    rows, ok = compare.compare(chosen, a.dtype, among)
    print(text_table(compare.header(a.dtype), rows))
    return 0 if ok else 1


def cmd_check(a: argparse.Namespace) -> int:

    (name,) = task_list([a.task], [], checked=False)  # what is wrong with it is this command's to report
    require("task", name, tasks.TASKS)
    chosen = names(a.backends, list(backends.BACKENDS), "backend", "--backends")
    print(f"task {name} ({tasks.TASKS[name]})")
    results = check.check_task(name, chosen)
    for ok, line in results:
        print(f"  {'ok  ' if ok else 'FAIL'}  {line}")
    failed = sum(not ok for ok, _ in results)
    if failed:
        print(f"error: {failed} of {len(results)} checks failed", file=sys.stderr)
    return 1 if failed else 0


def none(value: str | None, files: Sequence[str] = ()) -> bool:
    """``--tasks none`` (and no --task): no task case, the sweeps alone."""
    return value is not None and value.strip() == "none" and not files


def run_tasks(a: argparse.Namespace) -> str | None:
    """--tasks and --task together, comma-separated; None (the defaults) when neither is given."""
    if a.tasks is None and not a.task_files:
        return None
    given = task_list(a.tasks.split(",") if a.tasks is not None else [], a.task_files) or []
    return ",".join(given)


def cmd_run(a: argparse.Namespace) -> int:

    threads = 1 if a.threads is None else a.threads
    if not 1 <= threads <= procs.cpus():
        raise UsageError(f"--threads must be between 1 and {procs.cpus()} (the CPUs here), not {threads}")
    if a.count and (a.threads not in (None, 1) or a.device != "cpu"):
        raise UsageError("--count counts on the CPU, one thread per framework: no --threads or --device")
    if a.count and a.operators:
        raise UsageError("--operators is for timings: --count counts training steps alone")
    chosen = [] if none(a.tasks, a.task_files) else names(run_tasks(a), list(tasks.TASKS), "task", "--tasks",
                                                          default_tasks(a.quick, a.operators))  # fmt: skip
    both = a.dtype == "both"
    default = default_dtypes(a.quick)
    dtypes = list(DTYPES) if both else names(a.dtype, DTYPES, "dtype", "--dtype", default)
    count_default = a.count and not a.quick and a.dtype is None  # float64, and the sweep in both dtypes
    o = Options(
        out=outdir.check(a.out),
        tasks=chosen,
        backends=names(a.backends, list(backends.BACKENDS), "backend", "--backends"),
        dtypes=dtypes,
        threads=1 if a.count else threads,
        device=names(a.device, ["cpu", "cuda"], "device", "--device")[0],
        quick=a.quick,
        timeout=timeout(a) if a.timeout is None else positive("--timeout", a.timeout),
        repeats=(1 if a.count else QUICK_REPEATS if a.quick else REPEATS) if a.repeats is None else a.repeats,
        native_blas=a.native_blas,
        count=a.count,
        sweep_dtypes=list(DTYPES) if count_default else None,
        jobs=default_jobs(a.quick, a.count) if a.jobs is None else a.jobs,
        sizes=sizes(a.sizes),
        widths=sizes(a.widths, "--widths", "hidden units"),
        operators=a.operators,
    )
    if o.repeats < 1:
        raise UsageError(f"--repeats must be 1 or more, not {o.repeats}")
    if not asked_cases(o):
        raise UsageError("nothing to time: no task (--tasks none), no quadratic sweep (--sizes none), no width sweep")
    if a.jobs is not None and not 1 <= a.jobs * threads <= procs.cpus():
        raise UsageError(f"--jobs {a.jobs} × --threads {threads} must be between 1 and {procs.cpus()} "
                                 "(the CPUs here): each timing worker has CPUs of its own")  # fmt: skip
    if a.jobs is not None and (a.count or a.quick):
        raise UsageError("--jobs is for timings: a count and --quick run one worker per CPU")
    return count.run_command(o) if o.count else run.run(o)


def run_jobs() -> int:

    return JOBS


def timeout(a: argparse.Namespace) -> float:
    """Seconds one process may take by default: a count runs under valgrind, some 50 times slower."""
    return TIMEOUT if a.count else 120.0 if a.quick else 600.0


def cmd_diff(a: argparse.Namespace) -> int:

    if a.fail_above is not None and not (math.isfinite(a.fail_above) and a.fail_above >= 0):
        raise UsageError(f"--fail-above must be a finite percentage of 0 or more, not {a.fail_above:g}")
    out, err, status = diff.diff(a.old, a.new, a.fail_above)
    print("\n".join(out))
    if err:
        print("\n".join(err), file=sys.stderr)
    return status


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run the way Ctrl-C does: workers stopped, results kept as they were


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        if a.command == "list":
            return cmd_list()
        commands = {"train": cmd_train, "compare": cmd_compare, "check": cmd_check, "run": cmd_run, "diff": cmd_diff}
        return commands[a.command](a)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:  # a file or folder that cannot be read or written: which, and why
        print(f"error: {f'{e.filename}: ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return 1
