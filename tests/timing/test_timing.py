"""The timing harness: it waits for asynchronous work, and its derived figures are right."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench.campaign import remote, timing
from bench.campaign.remote import train
from bench.campaign.timing import Turns
from bench.core import cases as cases_module
from bench.core import noise_model
from bench.core.cases import BUILDS, VISITS, Case, Settings, time_limit
from bench.core.errors import BenchError, Diverged, Unsupported
from bench.core.stats import fit_overhead
from bench.host import envs, procs
from bench.worker import timer, training
from bench.worker.timer import Unit, measure, seconds
from conftest import QUIET, cubic_task, stand_in_workers


@pytest.mark.quiet
def test_the_harness_waits_for_asynchronous_work():
    """jax-scan returns before its work is done; the harness's figure must be the blocking one."""
    b = training.build("quadratic", "jax-scan", "float64", n=10**6)
    assert b.is_async
    unit = Unit(b, 100)
    unit()  # compile
    dispatch = min(seconds(unit.dispatch) for _ in range(3))
    unit.backend.wait(None)
    blocking, measured = [], []  # interleaved, so that a busy moment of the machine hits both alike
    for _ in range(9):
        blocking.append(seconds(lambda: b.wait(unit.dispatch())))
        measured.append(seconds(unit))
    blocking, measured = min(blocking), min(measured)
    assert blocking > 10 * dispatch, "this case no longer returns early: the self-test proves nothing"
    assert measured == pytest.approx(blocking, rel=0.3)


def test_fit_overhead_recovers_a_line():
    n = np.array([1e2, 1e3, 1e4, 1e5, 1e6, 1e7])
    a, b = fit_overhead(n, 20e-6 + 3e-9 * n)
    assert a == pytest.approx(20e-6, rel=1e-6) and b == pytest.approx(3e-9, rel=1e-6)


def test_a_unit_is_a_slice_of_the_schedule():
    b = training.build("parabola", "numpy")
    unit = Unit(b, 200)
    assert unit.steps == 200 and b.task.steps_per_epoch == 50
    before = b.params()
    unit()
    assert not np.array_equal(before["c"], b.params()["c"])


def test_a_step_s_fresh_pages_are_counted():
    """At N = 10⁷ an eager torch step's temporaries are 80 MB each, past glibc's largest mmap threshold
    (32 MiB): each is mapped fresh, at least 80 MB / 4 KiB pages a step. A step of 100 points reuses memory."""

    eager = measure("quadratic", "torch", n=10**7, steps=1, round_time=0.0, min_rounds=2, objective=False)
    assert eager.faults_per_step >= 8 * 10**7 / 4096
    small = measure("quadratic", "numpy", n=10**2, steps=10, round_time=0.0, min_rounds=2, objective=False)
    assert small.faults_per_step < 1


def test_a_later_process_builds_the_round_at_the_size_it_is_given():
    """The first process of a case sizes its round from a short first call, which it reports; a later one,
    given that size, builds the round at once (one compile, not two) and reports no first call."""

    first = measure("linear", "numpy", steps=100, round_time=0.0, min_rounds=2, objective=False)
    later = measure("linear", "numpy", steps=100, round_time=0.0, min_rounds=2, objective=False, size=10)
    assert first.first_call_s > 0 and first.steps_per_round >= 10
    assert later.first_call_s is None and later.steps_per_round == 10


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_an_operator_case_times_its_calls_beside_the_loss_and_holds_its_first_value_to_the_reference(backend):
    """An operator case's figures are per call, its loss's beside it in the same rounds; the first process sizes the
    round and reports the first call, a later one is given the size; the last holds the first value to the
    hand-derived one."""
    first = measure("logistic", backend, operator="hvp-rev-rev", unit_time=0.002, round_time=0.0, min_rounds=2)
    assert len(first.step_s) == len(first.objective_s) == 2 and first.first_call_s > 0 and first.check is None
    assert first.steps_per_round >= 1 and first.steps_timed == 2 * first.steps_per_round
    later = measure("logistic", backend, operator="hvp-rev-rev", unit_time=0.002, round_time=0.0, min_rounds=1,
                    size=3, check=True)  # fmt: skip
    assert later.steps_per_round == 3 and later.first_call_s is None
    assert later.check.verdict == "agrees" and later.check.rel_error <= later.check.tol == 1e-9
    loss = measure("logistic", backend, operator="loss", round_time=0.0, min_rounds=1, objective=False)
    assert loss.objective_s is None and not timer.LIVE


def test_an_operator_a_backend_lacks_or_a_model_too_large_for_is_unsupported(tmp_path, user_task):
    """What the backend says it cannot do, and a dense operator beyond tasks.operators.DENSE_LIMIT parameters."""
    name = user_task(cubic_task(tmp_path, "cubic_ops"))  # it writes no Hessian, and numpy has no autodiff
    with pytest.raises(Unsupported, match="numpy has no hvp-fwd-rev: the task defines no hvp or hessian"):
        measure(name, "numpy", operator="hvp-fwd-rev", round_time=0.0, min_rounds=1)
    with pytest.raises(Unsupported, match="at most 1,000 parameters, not of 1,482"):  # 1,482² entries at width 16
        measure("wide-mlp", "numpy", n=16, operator="hessian", round_time=0.0, min_rounds=1)
    hvp = measure("wide-mlp", "numpy", n=16, operator="hvp-rev-rev", round_time=0.0, min_rounds=1, check=True)
    assert hvp.check.verdict == "agrees" and hvp.step_s  # the task's own HVP (wide_mlp.hvp): no n × n matrix
    assert not timer.LIVE


def test_a_process_visits_its_cases_in_turn_each_built_once():
    """A case is built at its first visit and timed again, unbuilt, at the later ones (no first call, no
    setup), another case's visits between; it is let go after its last, and a visit of a case the process
    did not build fails. Its visits join into one process's record, every round of each."""

    kw = {"steps": 100, "round_time": 0.0, "min_rounds": 2, "objective": False, "visits": 2}
    linear, plane = (timer.measure(t, "numpy", visit=0, **kw) for t in ("linear", "plane"))
    again = timer.measure("linear", "numpy", visit=1, **kw)
    assert linear.first_call_s > 0 and linear.setup_s > 0 and len(linear.step_s) == 2
    assert again.first_call_s is None and again.setup_s == 0.0 and again.pid == linear.pid
    assert set(timer.LIVE) == {("plane", "numpy", "float64", "cpu", None)}  # linear let go, plane alive
    joined = noise_model.visits_joined([linear, again])
    assert joined.step_s == linear.step_s + again.step_s and joined.visits == 2
    assert joined.rounds_s == pytest.approx(linear.rounds_s + again.rounds_s)
    assert joined.first_call_s == linear.first_call_s and joined.machine == again.machine
    with pytest.raises(BenchError, match="did not build"):
        timer.measure("linear", "numpy", visit=1, **kw)
    timer.measure("plane", "numpy", visit=1, **kw)
    assert not timer.LIVE


@pytest.mark.parametrize("backend", ["torch-compile", "torch-nn-compile"])
def test_torch_compile_cases_alive_at_once_compile_once_each(backend):
    """Two cases of a torch.compile mode built in one process and visited in turn: neither compiles again (Dynamo
    keeps graphs by a function's code, which the adapter gives each instance of its own, torch.optim's step
    included), and each trains as the same case built alone does."""
    from torch._dynamo.utils import counters

    kw = {"steps": 100, "round_time": 0.0, "min_rounds": 2, "objective": True, "visits": 2}
    for t in ("linear", "quadratic"):
        timer.measure(t, backend, visit=0, **kw)
    compiled = counters["frames"]["ok"]
    later = [timer.measure(t, backend, visit=1, **kw) for t in ("linear", "quadratic")]
    assert counters["frames"]["ok"] == compiled and all(r.step_s for r in later)
    alone, beside = training.build("linear", backend), training.build("quadratic", backend)
    first = alone.run(alone.prepare(alone.task.lrs(), alone.task.orders()))
    beside.run(beside.prepare(beside.task.lrs()[:1], beside.task.orders()[:1]))
    again = training.build("linear", backend)
    second = again.run(again.prepare(again.task.lrs(), again.task.orders()))
    assert np.array_equal(alone.to_numpy(first), again.to_numpy(second))


def test_torch_nn_compile_cases_past_dynamos_recompile_limit_compile_their_optimizer():
    """Nine torch-nn-compile cases alive in one process, of two parameter shapes: every one's ``torch.optim`` step
    is compiled, as a code of its own (``own_step``), where the class's shared step code would have run the ninth
    eager (Dynamo's recompile limit, eight), and a later shape dynamic; revisited, none compiles again."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list
    from torch._dynamo.utils import counters

    built = [training.build(t, "torch-nn-compile") for t in ("quadratic", "plane") * 4 + ("quadratic",)]
    for b in built:
        b.run(b.prepare(b.task.lrs()[:1], b.task.orders()[:1]))
    before = dict(counters["frames"])
    for b in built:
        b.run(b.prepare(b.task.lrs()[:1], b.task.orders()[:1]))
    assert dict(counters["frames"]) == before
    steps = []  # each case's optimiser's own step: torch.optim's wrapper(_use_grad(step)), innermost
    for b in built:
        f = b.opt.step.__func__
        while "func" in f.__code__.co_freevars:
            f = f.__closure__[f.__code__.co_freevars.index("func")].cell_contents
        steps.append(f.__code__)
    assert len(set(steps)) == len(built) and all(len(_debug_get_cache_entry_list(c)) == 1 for c in steps)


def test_a_campaigns_later_processes_are_given_the_size_its_first_chose(monkeypatch):
    """The first process of each case sizes its round (and reports the cold first call); the campaign hands
    that size to the later processes of the case, a replacing one included, and keeps the first call when
    the process that made it is replaced."""

    asked: list[int | None] = []

    def answer(kw):
        asked.append(kw["size"])
        busy = len(asked) == 1  # linear's first process: the one replaced
        first = 0.5 if kw["size"] is None else None  # a process given a size reports no first call
        return {"steps_per_round": kw["size"] or 7, "first_call_s": first, "pid": len(asked),
                "machine": QUIET | {"cpu_share": 0.5 if busy else 1.0}}  # fmt: skip

    stand_in_workers(monkeypatch, answer)
    cases = [Case("speed", t, "numpy", "float64") for t in ("linear", "plane")]
    c = timing.Campaign(cases, Settings(repeats=3), {}, None)
    c.timings()
    c.replace("numpy", cases[:1], noise_model.quiet_levels(c.found))
    assert asked == [None, None, 7, 7, 7, 7, 7]
    record = noise_model.merged(c.found[cases[0]])
    assert record["remeasured"] == 1 and record["first_call_s"] == 0.5 and record["steps_per_round"] == 7


def test_the_sweeps_case_that_is_a_task_case_is_measured_once_as_that_task_case(monkeypatch):
    """quadratic at N = 10² is the quadratic task itself (the same arrays and schedule): a campaign with
    both times it once, as the task case with the hand-written loop beside it, and gives the sweep's row
    the same timings; N = 10⁴ is a case of its own."""

    asked: list[tuple[str, int | None, bool]] = []

    def answer(kw):
        asked.append((kw["task"], kw["n"], kw["handwritten"]))
        return {"step_s": [len(asked) * 1e-5], "pid": len(asked)} | (
            {"handwritten_s": [2e-5]} if kw["handwritten"] else {})  # fmt: skip

    stand_in_workers(monkeypatch, answer)
    task = Case("speed", "quadratic", "numpy", "float64")
    cases = [task, *(Case("scaling", "quadratic", "numpy", "float64", n) for n in (100, 10**4))]
    assert timing.twins(cases) == {cases[1]: task}
    c = timing.Campaign(cases, Settings(repeats=2), {}, None, timing.twins(cases))
    c.timings()
    assert asked == [("quadratic", None, True), ("quadratic", 10**4, True)] * 2
    found = c.results()
    assert set(found) == set(cases)
    assert found[cases[1]]["samples_s"] == found[task]["samples_s"] == pytest.approx([1e-5, 3e-5])
    assert found[cases[1]]["handwritten_samples_s"] == [2e-5, 2e-5] and "objective_samples_s" not in found[cases[1]]
    assert found[cases[2]]["samples_s"] == pytest.approx([2e-5, 4e-5])


def test_a_width_case_is_timed_in_the_first_and_last_processes_and_checked_in_the_last(monkeypatch):
    """The width sweep's cells go to the first and the last round of processes alone; the last is asked to hold
    each cell's first call against numpy's, and what it says is the cell's row; a task case goes to every round
    and is never asked."""

    asked: list[tuple[str, int | None, bool]] = []

    def answer(kw):
        asked.append((kw["task"], kw["n"], kw["check"]))
        said = {"final_loss": 0.25, "max_rel_diff": 2e-16, "steps": 4} if kw["check"] else None
        return {"step_s": [1e-4 * len(asked)], "pid": len(asked), "agreement": said}

    stand_in_workers(monkeypatch, answer)
    cases = [Case("speed", "linear", "numpy", "float64"),
             *(Case("width", "wide-mlp", "numpy", "float64", n) for n in (16, 1024))]  # fmt: skip
    c = timing.Campaign(cases, Settings(repeats=3), {}, None)
    c.timings()
    assert asked == [("linear", None, False), ("wide-mlp", 16, False), ("wide-mlp", 1024, False),
                     ("linear", None, False),
                     ("linear", None, False), ("wide-mlp", 16, True), ("wide-mlp", 1024, True)]  # fmt: skip
    found = c.results()
    assert len(found[cases[0]]["samples_s"]) == 3 and "max_rel_diff" not in found[cases[0]]
    for w in cases[1:]:
        assert len(found[w]["samples_s"]) == 2
        assert (found[w]["max_rel_diff"], found[w]["final_loss"], found[w]["steps_checked"]) == (2e-16, 0.25, 4)


def test_the_width_sweep_s_own_width_is_the_task_case_with_its_training(monkeypatch):
    stand_in_workers(monkeypatch, lambda kw: {"step_s": [2e-4]})
    task, cell = Case("speed", "wide-mlp", "numpy", "float64"), Case("width", "wide-mlp", "numpy", "float64", 16)
    c = timing.Campaign([task, cell], Settings(repeats=2), {}, None, timing.twins([task, cell]))
    c.timings()
    c.checked[task] = {"final_loss": 0.4, "max_rel_diff": 0.0, "epochs_trained": 10, "epochs": 10, "params": {}}
    found = c.results()
    assert found[cell]["samples_s"] == found[task]["samples_s"] and "objective_samples_s" not in found[cell]
    assert found[cell]["epochs_trained"] == 10 and found[cell]["max_rel_diff"] == 0.0 and "params" not in found[cell]


def test_a_case_built_ahead_is_timed_as_built_and_settled_onto_its_cpu():
    """``prepare`` builds a case ahead of its visits; the first visit times that case instead of building it
    again (its setup seconds are the prepared one's), and ``settle`` pins the process and every thread it
    has onto the CPU it is given."""
    import threading

    kw = {"steps": 10, "unit_time": 0.0, "round_time": 0.0, "min_rounds": 1, "objective": False}
    built = timer.prepare("linear", "numpy", **kw)
    case = timer.LIVE[("linear", "numpy", "float64", "cpu", None)]
    parked = threading.Event()
    thread = threading.Thread(target=parked.wait)  # a thread of its own from before: pinned too
    thread.start()
    try:
        cpu = procs.affinity()[-1]
        assert timer.settle([cpu]) == {"cpus": [cpu]}
        assert os.sched_getaffinity(thread.native_id) == {cpu}
        out = timer.measure("linear", "numpy", **kw)
        assert out.setup_s == built["setup_s"] and timer.LIVE == {}
        assert case.unit.steps == out.steps_per_round
    finally:
        parked.set()
        thread.join()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def test_a_round_builds_two_at_a_time_the_longest_first_then_times_one_at_a_time_in_order_then_trains():
    """Turns: building runs ``builders`` processes at once, in order of the hint (longest first); no process
    times until every one has built, and then one at a time in the round's order; none trains until every
    one has timed, and then ``builders`` at once."""
    import threading
    import time

    order, hint = ["numpy", "torch", "jax", "tensorflow"], {"jax": 9.0, "tensorflow": 5.0}
    turns, log, lock = Turns(order, 2, hint), [], threading.Lock()
    at_once = {"building": 0, "timing": 0, "training": 0, "most building": 0, "most timing": 0, "most training": 0}

    def doing(what, b, seconds):
        with lock:
            log.append((what, b))
            at_once[what] += 1
            at_once[f"most {what}"] = max(at_once[f"most {what}"], at_once[what])
            assert at_once["building"] + at_once["timing"] + at_once["training"] == at_once[what]  # one stage at once
        time.sleep(seconds)
        with lock:
            at_once[what] -= 1

    def one(b):
        with turns.build(b):
            doing("building", b, 0.05)
        with turns.turn(b):
            doing("timing", b, 0.02)
        with turns.train(b):
            doing("training", b, 0.05)

    threads = [threading.Thread(target=one, args=(b,)) for b in reversed(order)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    built = [b for k, b in log if k == "building"]  # two at once: which of a pair logs first is a race
    assert Turns(order, 2, hint).queue == ["jax", "tensorflow", "numpy", "torch"]
    assert set(built[:2]) == {"jax", "tensorflow"} and set(built[2:]) == {"numpy", "torch"}
    assert [b for k, b in log if k == "timing"] == order and log.index(("timing", "numpy")) == len(order)
    assert {b for k, b in log[2 * len(order) :] if k == "training"} == set(order)  # after every timing
    assert at_once["most building"] == 2 and at_once["most timing"] == 1 and at_once["most training"] == 2


def test_a_process_that_fails_while_building_leaves_the_round_going():

    turns = Turns(["numpy", "torch"], 2)
    with pytest.raises(RuntimeError), turns.build("numpy"):
        raise RuntimeError("the worker died")
    turns.leave("numpy", turns.done)  # as processes() does whatever became of it
    with turns.build("torch"):
        pass
    with turns.turn("torch"):  # numpy's failure did not hold the round's turns
        assert turns.next() == "torch"


def test_a_quick_run_trains_each_backend_in_the_process_that_timed_it(monkeypatch):
    """--quick (whose timings are not to be read): a backend's one timing process, once it has timed its
    cases, trains them for the correctness columns, sized by its own timings; no process of its own."""

    started: list[list[str]] = []
    init = remote.Remote.__init__

    def counted(self, env, calls, *args, **kwargs):
        started.append([fn for fn, _ in calls])
        init(self, env, calls, *args, **kwargs)

    monkeypatch.setattr(remote.Remote, "__init__", counted)
    cases = [Case("speed", t, "numpy", "float64") for t in ("linear", "quadratic")]
    found = timing.time_cases(cases, Settings(repeats=1, quick=True))
    assert started == [["measure", "measure", "correctness", "correctness"]]
    for c in cases:
        assert found[c]["epochs_trained"] == found[c]["epochs"]  # numpy's whole schedule fits the budget
        assert found[c]["max_rel_diff"] == 0.0 and "correctness_s" not in found[c]


def test_a_default_run_trains_in_its_last_rounds_processes_once_they_have_timed(monkeypatch):
    """One worker at a time (the default): the last round's process of each backend trains its speed cases
    for the correctness columns after its timings (``Turns.train``: once every process of the round has
    timed); an earlier round's does not train, and no process is started to train."""

    stand_in_workers(monkeypatch, lambda kw: {})
    started, init = [], remote.Remote.__init__

    def counted(self, *args, **kwargs):
        init(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(remote.Remote, "__init__", counted)
    monkeypatch.setattr(Settings, "builders", 2)  # Turns, as on a machine of several CPUs
    cases = [Case("speed", "linear", b, "float64") for b in ("numpy", "torch")]
    found = timing.time_cases(cases, Settings(repeats=2))
    calls = sorted([fn for fn, _ in w.calls if fn != "prepare"] for w in started)
    visits = ["measure"] * VISITS
    assert calls == [["settle", *visits]] * 2 + [["settle", *visits, "correctness"]] * 2
    assert all("error" not in found[c] for c in cases)


def test_a_process_asked_to_train_a_case_it_did_not_time_says_so():
    with pytest.raises(BenchError, match="not timed in this process"):
        timer.correctness("plane", "numpy", "float32", "cpu", None, 1.0)


def test_where_a_rounds_time_went_adds_up_to_its_wall_clock_time():
    """A round built two processes at once and trained two at once: its start-up and setup worker-seconds
    are scaled to the wall-clock time that neither its rounds nor its training took."""

    c = timing.Campaign([], Settings(), {}, None)
    before = dict(c.seconds)
    c.seconds |= {"worker start-up": 30.0, "setup and compile": 90.0, "rounds": 40.0, "correctness": 40.0}
    c.overlapped(before, wall=120.0, training=20.0)  # 40 s of worker-seconds training, two at once
    assert c.seconds["worker start-up"] + c.seconds["setup and compile"] == pytest.approx(120.0 - 40.0 - 20.0)
    assert c.seconds["worker start-up"] / c.seconds["setup and compile"] == pytest.approx(30 / 90)


def test_a_last_round_process_that_dies_while_timing_is_not_trained_and_the_round_goes_on(monkeypatch):
    """A worker of the last round that ends before answering its timings (here torch's: it was killed) is
    stopped in its turn; its cases say why and are not trained, and the other backend's train."""

    stand_in_workers(monkeypatch, lambda kw: {})
    answers = remote.Remote.results

    def results(self, timeout=None, answered=None):
        got = answers(self, timeout, answered)
        if any(kw.get("backend") == "torch" for _, kw in self.calls) and len(self.calls) > 2:  # at its turn
            return [BenchError("the worker was killed by SIGKILL") if fn == "measure" else g
                    for (fn, _), g in zip(self.calls, got, strict=True)]  # fmt: skip
        return got

    monkeypatch.setattr(remote.Remote, "results", results)
    monkeypatch.setattr(remote.Remote, "wait", lambda self, answers, timeout, answered=None: not any(
        fn == "measure" and kw["backend"] == "torch" for fn, kw in self.calls))  # fmt: skip
    monkeypatch.setattr(Settings, "builders", 2)
    cases = [Case("speed", "linear", b, "float64") for b in ("numpy", "torch")]
    c = timing.Campaign(cases, Settings(repeats=1), {}, None)
    c.timings()
    assert c.errors == {cases[1]: "the worker was killed by SIGKILL"} and list(c.checked) == [cases[0]]


def test_a_divergence_the_rounds_find_names_the_schedule_s_step(tmp_path, user_task):
    """A task that diverges at its step 50: the first slice of 10 steps passes, a round of 100 does not, and the
    error names step 50, as ``bench train`` does, not the step of the round."""
    name = user_task(cubic_task(tmp_path, "late", lr="0.5 if e < 48 else 1e200", epochs=300))
    with pytest.raises(Diverged) as trained:
        train(name, "numpy")
    with pytest.raises(Diverged) as timed:
        measure(name, "numpy", steps=100, unit_time=1.0, round_time=0.0, min_rounds=1)
    assert timed.value.step == trained.value.step == 50


def test_rounds_that_diverge_where_the_schedule_does_not_say_so(tmp_path, user_task):
    """Rounds train the schedule's first slice again and again: where that diverges and the schedule from its
    start does not, the error says so rather than name a step the schedule never reaches."""
    name = user_task(cubic_task(tmp_path, "rounds", lr="5e4 if e == 0 else 0.5", epochs=20))
    assert np.isfinite(train(name, "numpy").losses).all()
    with pytest.raises(BenchError) as timed:
        measure(name, "numpy", steps=10, unit_time=0.0, round_time=0.0, min_rounds=200)
    said = str(timed.value)
    assert said.startswith("the loss is not finite once the schedule's first 10 steps were trained again and again")
    assert said.endswith("; the schedule itself, from its start, does not diverge in its first 20 steps")


# A worker that answers as bench.worker does (batches that an empty line ends), but whose first process (the one that
# finds no FLAG file) hangs on its third call, as a process given more cases than its time allows does
HANGS = """import itertools, json, pathlib, sys, time
from bench.core.wire import encode
from bench.worker.serve import call_here
flag = pathlib.Path(sys.argv[2])
first = not flag.exists()
flag.touch()
done, batch = 0, []
with open(sys.argv[1], "w") as out:
    for line in itertools.chain(sys.stdin, [""]):
        if line.strip():
            batch.append(json.loads(line))
            continue
        for fn, kw in batch:
            if first and done == 2:
                time.sleep(600)
            print(json.dumps(encode(call_here(fn, kw))), file=out, flush=True)
            done += 1
        batch = []
"""


@pytest.mark.parametrize("builders", [0, 2], ids=["quick", "built ahead"])
def test_a_process_that_runs_out_of_time_loses_only_the_case_it_was_on(tmp_path, monkeypatch, builders):
    """Its answers are kept: the cases it timed keep their figures and are trained in a process of their own,
    the cases it never reached are timed by another; only the one it was on says it timed out. --quick: it hangs
    timing its third case; a default run's, whose processes build their cases ahead (``Turns``), building it."""
    flag = tmp_path / "hung"
    monkeypatch.setattr(remote.Remote, "command", lambda self: [sys.executable, "-c", HANGS, self.out.name, flag])
    monkeypatch.setattr(Settings, "builders", builders)
    monkeypatch.setattr(cases_module, "ROUND_TIME", 0.04)  # a default run's rounds: within the test's limit
    cases = [Case("speed", t, "numpy", "float64") for t in ("linear", "quadratic", "plane", "parabola")]
    settings = Settings(repeats=1, quick=not builders, timeout=2.0)
    found = timing.time_cases(cases, settings)
    limit = time_limit(settings, len(cases) * 2)  # each case built to time it and to train it
    assert {c.task: found[c].get("error") for c in cases} == {
        "linear": None,
        "quadratic": None,
        "plane": f"the main worker timed out after {limit:g} s",
        "parabola": None,
    }
    for c in (cases[0], cases[1], cases[3]):
        assert found[c]["samples_s"] and found[c]["epochs_trained"] == found[c]["epochs"], found[c]


def test_a_process_s_time_limit_follows_the_cases_it_builds():
    """--timeout is what a process of a default run may take (BUILDS: its cases, timed and trained); one given
    more cases may take as much longer."""
    quick, default = Settings(quick=True, timeout=120.0), Settings(timeout=600.0)
    assert time_limit(quick, BUILDS[True]) == time_limit(quick, 1) == 120.0
    assert time_limit(quick, 2 * BUILDS[True]) == 240.0
    assert time_limit(default, BUILDS[False] * 3) == 1800.0


def test_the_first_call_says_what_the_framework_says_it_spent_compiling():
    """torch.compile's Dynamo and JAX keep their own tally of compiling: a first call's share of it is part of
    the first call, and more than nothing; numpy compiles nothing and says nothing. (Each in a process of
    its own: the frameworks are not loaded together.)"""
    code = (
        "from bench.worker.timer import measure; import json, sys; "
        "r = measure('linear', sys.argv[1], steps=20, round_time=0.0, min_rounds=1, objective=False); "
        "print(json.dumps([r.first_call_s, r.compile_s]))"
    )
    for backend in ("torch-compile", "jax", "numpy"):
        out = subprocess.run([sys.executable, "-c", code, backend], capture_output=True, text=True, cwd=envs.ROOT)
        assert out.returncode == 0, out.stderr
        first, compiled = json.loads(out.stdout.splitlines()[-1])
        if backend == "numpy":
            assert compiled is None
        else:
            assert 0 < compiled <= first, backend
