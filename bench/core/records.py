"""The typed records that cross from a worker to its caller: a training run (``TrainingRun``), a timing
process's figures for one case (``ProcessTiming``) and a counting process's (``ProcessCount``), each with its
JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

Nested = list[Any]  # an array as nested lists (ndarray.tolist())


@dataclass
class TrainingRun:
    """One case trained through its schedule (or its first epochs): its losses step by step and its parameters."""

    task: str
    backend: str
    dtype: str
    params: dict[str, Nested]  # each parameter in its own shape
    losses: list[float]
    lr_dtype: str = "float64"  # the precision the backend's optimiser used for the learning rate
    formula: str = "reference"  # whose update it followed (tasks.formulas): the reference, or its framework's
    optimizer: Any = None  # the optimiser it trained with, as tasks.optimizers.to_json writes it
    digest: str = ""  # of the task's data as the backend's environment made it
    checkpoints: dict[str, dict[str, Nested]] = dataclasses.field(default_factory=dict)  # epoch -> params

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingRun:
        return cls(**data)


@dataclass(frozen=True)
class Agreement:
    """A case's first call from the initial parameters held against numpy's over the same steps, in the process
    that timed it (a width case's correctness columns: ``bench.worker.timer.agreement``)."""

    final_loss: float  # the backend's loss at the last step compared
    max_rel_diff: float  # |a-b| / max(1, |a|+|b|) over every step's loss and the parameters the steps end at
    steps: int  # the steps compared
    lr_dtype: str = "float64"  # the precision numpy's learning rates were rounded to, as the backend's are
    formula: str = "reference"  # whose update numpy followed (tasks.formulas)


@dataclass(frozen=True)
class OperatorCheck:
    """An operator case's first call held against the operator's reference (``tasks.operators.judge``), in the
    process that timed it: an operator case's correctness columns (``bench.worker.operator_timer``)."""

    verdict: str  # "agrees" or "differs" (tasks.operators.Verdict.kind)
    rel_error: float  # the largest difference over the reference's largest entry (tasks.operators.rel_error)
    tol: float  # what ``agrees`` allows, in the case's dtype
    reference: str  # how the reference was found: "by hand" or "by differences"


@dataclass
class ProcessTiming:
    """A timing process's figures for one case, per step in seconds: one visit's (``bench.worker.timer.measure``
    answers one), or all of a process's visits joined (``bench.core.noise_model.visits_joined``). The campaign
    judges it afterwards (``noisy``), and marks one that took a noisy process's place (``replaces_pid``)."""

    mode: str  # the backend's kind of mode: one of backends.MODES
    device: str
    steps_per_round: int  # the steps of the slice a round trains (an operator case: its calls a round)
    step_s: list[float]  # a training step (an operator case: a call of the operator), one figure a round
    machine: dict[str, float]  # what the calibration kernels, the CPU share and the steal time said
    setup_s: float  # building, converting, compiling, warming up (the first visit's)
    rounds_s: float  # the rounds' own seconds
    pid: int
    frameworks: list[str]  # the frameworks loaded in the process: the proof it is isolated
    faults_per_step: float = 0.0  # the pages the kernel handed a training step
    steps_timed: int = 0
    objective_s: list[float] | None = None  # the objective alone over the same slice (the loss's call), one a round
    handwritten_s: list[float] | None = None  # the framework's hand-written loop (the quadratic sweep)
    first_call_s: float | None = None  # the first call, tracing and compiling included (a case's first process)
    compile_s: float | None = None  # of which the framework says it spent compiling (where it says)
    cpus: list[int] | None = None  # the CPUs it was pinned to
    visit: int = 0  # which visit of the case this is (joined: the first)
    visits: int = 1  # the visits joined in it
    noisy: bool = False
    replaces_pid: int | None = None
    agreement: Agreement | None = None  # where asked (a width case's last process): its first call against numpy's
    check: OperatorCheck | None = None  # where asked (an operator case's last process): its first call's value

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessTiming:
        known = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in data.items() if k in known}
        if isinstance(given.get("agreement"), dict):
            given["agreement"] = Agreement(**given["agreement"])
        if isinstance(given.get("check"), dict):
            given["check"] = OperatorCheck(**given["check"])
        return cls(**given)


@dataclass
class ProcessCount:
    """A counting process's instructions for one case (``bench.worker.counter.count`` answers one), per training
    step, with what is counted apart: the allocators (``allocator_per_step``, ``allocations_per_step`` calls
    into them), the thread pools' search for work (``pool_per_step``) and CPython's type-cache lookups
    (``lookup_per_step``, ``lookups_per_step`` calls)."""

    mode: str
    device: str
    steps_counted: int  # the steps of the slice a counted call trains
    calls_counted: int  # the slice's calls in the counted window
    instructions: float  # in the window, less what is counted apart and less an empty window's
    instructions_per_step: float
    allocator_per_step: float
    allocations_per_step: float
    pool_per_step: float
    lookup_per_step: float
    lookups_per_step: float
    window_instructions: float  # an empty window's own
    pid: int
    frameworks: list[str]
    cpus: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessCount:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def as_lists(arrays: dict[str, Any], order: dict[str, Any]) -> dict[str, Nested]:
    """Plain float64 nested lists of each array's shape (``np.array(lists)`` gives it back), in the task's
    order of parameters: [w] for a (1,) parameter, [[...], ...] for a matrix."""
    return {k: np.asarray(arrays[k], dtype="float64").tolist() for k in order}
