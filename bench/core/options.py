"""The options of a timing or counting run, and the cases they ask for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import backends
import tasks
from bench.core.cases import OPERATOR, SCALING, SPEED, WIDTH, Case, Settings
from bench.host import envs, procs
from tasks.operators import OPERATORS

# The quadratic sweep of a timing run: from a core's cache to beyond it. 10⁷ is left to --sizes: there a step
# of an eager framework is mostly the kernel handing it fresh pages for its 80 MB temporaries, which is the
# host's figure, and it would cost a quarter of a default run (docs/commands.md, "bench run").
SIZES = [10**2, 10**4, 10**6]
COUNT_SIZES = [*SIZES, 10**7]  # a count does not depend on how fast the host hands out pages
REPEATS = 3  # timing processes per backend in a default run (docs/fair-timing.md)
JOBS = 1  # timing workers at a time, each pinned to a CPU of its own (docs/fair-timing.md)
# --quick's smoke run times no sweep: each point is a compile in every compiled mode (`--sizes` adds one)
QUICK_SIZES: list[int] = []
# The width sweep of a timing run: wide-mlp's hidden width, from a step that is per-call overhead to one of 1.7
# GFLOP, mostly matrix products (docs/results.md, "The width sweep"). A count leaves it out: under valgrind a step
# of the largest width takes seconds, and its instructions are the BLAS's.
WIDTH_TASK = "wide-mlp"
WIDTHS = [16, 64, 256, 1024]
QUICK_WIDTHS: list[int] = []  # likewise: a width costs a compile per compiled mode
COUNT_WIDTHS: list[int] = []
# Tasks a default run times through their sweep alone: wide-mlp's own case is the width sweep's first cell, which
# the sweep times on an eighth of a task case's rounds (``--tasks wide-mlp`` times it as a task too, once for both)
SWEPT_TASKS = [WIDTH_TASK]
# Tasks trained by Newton's method (a Hessian and a linear solve a step): beyond the gradient, so timed with the
# operators (--operators), which keeps a default run within its 15 minutes; `--tasks` names them to time them alone
SECOND_ORDER_TASKS = ["logistic-newton", "poisson-newton"]
# --quick's smoke run: one task, a matrix model with figures of its own (test accuracy). Its minute is mostly each
# process's first build (importing the framework, a cold compile); a second task costs a compile in every compiled mode
QUICK_TASKS = ["digits"]
QUICK_REPEATS = 1
# --operators (docs/operators.md, "Timing the operators"): every operator on these tasks (a linear model, a small
# network, a matrix model of 650 parameters: the dense operators are asked of each), on each framework's eager mode and
# its compiled-step modes whose operators are built otherwise; a mode whose operators are another's unchanged is
# left out: jax-scan's are jax-jit's, tensorflow-xla-loop's tensorflow-xla's, torch-nn's torch's through
# functional_call (and torch-nn-compile's torch-compile's likewise). mxnet-gluon's are hybridized blocks, another
# implementation of the three it has.
OPERATOR_TASKS = ["logistic", "mlp", "digits"]
# --quick's smoke run (whose task is digits) times logistic's operators instead: digits' dense Hessian
# is seconds a call and a long compile in several modes; logistic's 3 parameters make each operator cheap
QUICK_OPERATOR_TASKS = ["logistic"]
OPERATOR_MODES = ["numpy", "torch", "torch-compile", "jax", "jax-jit", "tensorflow", "tensorflow-function",
                  "tensorflow-xla", "autograd", "mxnet", "mxnet-gluon"]  # fmt: skip
# and the matrix-free ones on the width sweep's wide-mlp at each of the run's widths, the loss timed beside each
WIDTH_OPERATORS = ["jvp", "hvp-fwd-rev", "hvp-rev-rev"]
# --quick reads a smaller array, twice, with numpy's kernels alone (the others load torch and jax and compile a sum:
# seconds): its floor is not to be read either
QUICK_FLOOR = {"nbytes": 64 * 2**20, "repeats": 2, "kernels": ["numpy-dot", "numpy-sum"]}
# A default run times float64, the reference precision: a step of these small tasks is per-call overhead,
# which float32 leaves about as it is; `--dtype both` adds float32 (about twice as long).
DEFAULT_DTYPES = ["float64"]


def default_tasks(quick: bool, operators: bool = False) -> list[str]:
    """The tasks a run times where --tasks does not say: QUICK_TASKS for --quick; else every registered task but
    SWEPT_TASKS, and SECOND_ORDER_TASKS only with --operators."""
    if quick:
        return [t for t in tasks.TASKS if t in QUICK_TASKS]
    left_out = SWEPT_TASKS + ([] if operators else SECOND_ORDER_TASKS)
    return [t for t in tasks.TASKS if t not in left_out]


def default_dtypes(quick: bool) -> list[str]:
    return ["float64"] if quick else DEFAULT_DTYPES


def default_jobs(quick: bool, count: bool) -> int:
    """Workers at a time: a count's and a smoke run's one per CPU (neither depends on the machine's load),
    a timing's JOBS."""
    return procs.cpus() if quick or count else JOBS


def default_sizes(quick: bool, count: bool) -> list[int]:
    return QUICK_SIZES if quick else COUNT_SIZES if count else SIZES


def default_widths(quick: bool, count: bool) -> list[int]:
    return COUNT_WIDTHS if count else QUICK_WIDTHS if quick else WIDTHS


@dataclass
class Options:
    out: Path
    tasks: list[str]
    backends: list[str]
    dtypes: list[str]
    threads: int
    device: str
    quick: bool
    timeout: float
    repeats: int = REPEATS
    native_blas: bool = False  # the main environment's workers without machine.PINNED_BLAS: OpenBLAS picks its kernel
    count: bool = False  # count instructions under valgrind instead of timing (bench.campaign.counting)
    sweep_dtypes: list[str] | None = None  # the quadratic sweep's dtypes, where they differ from ``dtypes``
    jobs: int = 1  # workers at a time, each on CPUs of its own (a count's: one per CPU; --quick's: unpinned)
    sizes: list[int] | None = None  # the quadratic sweep's N; None: default_sizes
    widths: list[int] | None = None  # the width sweep's hidden widths (WIDTH_TASK); None: default_widths
    operators: bool = False  # the operators beyond the gradient timed too (``operator_cases``)

    def __post_init__(self) -> None:
        if self.sizes is None:
            self.sizes = default_sizes(self.quick, self.count)
        if self.widths is None:
            self.widths = default_widths(self.quick, self.count)

    @property
    def settings(self) -> Settings:
        """How a campaign runs these options' processes."""
        return Settings(
            repeats=self.repeats,
            threads=self.threads,
            device=self.device,
            quick=self.quick,
            timeout=self.timeout,
            native_blas=self.native_blas,
            workers=self.jobs,
        )

    def command(self) -> str:
        """The command line that makes this run, leaving out what is the default."""
        words = ["python -m bench run"] + (["--quick"] if self.quick else []) + (["--count"] if self.count else [])
        dtypes = default_dtypes(self.quick)
        if self.count and not self.quick:  # a count's default (sweep_dtypes set): float64, the sweep in both
            dtypes = self.dtypes if self.sweep_dtypes is not None else []
        for flag, value, default in [
            ("--tasks", self.tasks, default_tasks(self.quick, self.operators)),
            ("--backends", self.backends, list(backends.BACKENDS)),
            ("--dtype", self.dtypes, dtypes),
            ("--sizes", list(map(str, self.sizes)), list(map(str, default_sizes(self.quick, self.count)))),
            ("--widths", list(map(str, self.widths)), list(map(str, default_widths(self.quick, self.count)))),
        ]:
            words += [] if value == default else [flag, ",".join(value) or "none"]
        words += [] if self.threads == 1 or self.count else ["--threads", str(self.threads)]
        words += [] if self.jobs == default_jobs(self.quick, self.count) else ["--jobs", str(self.jobs)]
        words += [] if self.device == "cpu" else ["--device", self.device]
        repeats = 1 if self.count else QUICK_REPEATS if self.quick else REPEATS
        words += [] if self.repeats == repeats else ["--repeats", str(self.repeats)]
        words += ["--native-blas"] if self.native_blas else []
        words += ["--operators"] if self.operators else []
        out = self.out.relative_to(envs.ROOT) if self.out.is_relative_to(envs.ROOT) else self.out  # as in any clone
        return " ".join(words + ([] if out == Path("results") else ["--out", str(out)]))


def asked_cases(o: Options) -> list[Case]:
    """Every case the run asks for, in the order of its tables."""
    speed = [Case(SPEED, t, b, d) for t in o.tasks for b in o.backends for d in o.dtypes]
    sweep = o.dtypes if o.sweep_dtypes is None else o.sweep_dtypes
    scaling = [Case(SCALING, "quadratic", b, d, n) for n in o.sizes or [] for b in o.backends for d in sweep]
    widths = [Case(WIDTH, WIDTH_TASK, b, d, n) for n in o.widths or [] for b in o.backends for d in o.dtypes]
    return speed + scaling + widths + (operator_cases(o) if o.operators else [])


def operator_tasks(o: Options) -> list[str]:
    """The tasks whose operators --operators times: those of OPERATOR_TASKS the run times (``--tasks``); a --quick
    run of its default tasks, QUICK_OPERATOR_TASKS."""
    if o.quick and o.tasks == default_tasks(True):
        return QUICK_OPERATOR_TASKS
    return [t for t in OPERATOR_TASKS if t in o.tasks]


def operator_cases(o: Options) -> list[Case]:
    """--operators' cases: every operator of each of ``operator_tasks``, then the matrix-free WIDTH_OPERATORS of
    wide-mlp at each of the run's widths, on each of OPERATOR_MODES the run times (``--backends``), in the run's
    dtypes."""
    modes = [b for b in o.backends if b in OPERATOR_MODES]
    on_tasks = [Case(OPERATOR, t, b, d, operator=op) for t in operator_tasks(o) for op in OPERATORS for b in modes
                for d in o.dtypes]  # fmt: skip
    return on_tasks + [Case(OPERATOR, WIDTH_TASK, b, d, n, op) for n in o.widths or [] for op in WIDTH_OPERATORS
                       for b in modes for d in o.dtypes]  # fmt: skip
