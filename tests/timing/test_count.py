"""``python -m bench run --count``: instructions per step under valgrind's callgrind, end to end on small cases;
reruns agree; a step that does more work counts more, and ``bench diff`` says so of exactly that case."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.campaign import counting
from bench.commands import diff
from bench.core.cases import Settings
from bench.host import envs
from bench.report.formatting import instructions
from bench.worker import counter
from conftest import cubic_task, one_line_error

if shutil.which("valgrind") is None:  # said, never skipped silently: counting is what this file tests
    pytest.fail("tests/timing/test_count.py needs valgrind: apt-get install valgrind", pytrace=False)

# A task file: quadratic under another name, whose gradient is evaluated a second time every EVERY-th step
# where AUTODIFF_BENCH_TEST_EXTRA names the task (the same work otherwise, the counter included).
VARIANT = """
import dataclasses
import os

from tasks import quadratic

calls = [0]


def loss_and_grad(p, x, y):
    calls[0] += 1
    if calls[0] % {every} == 0 and "{name}" in os.environ.get("AUTODIFF_BENCH_TEST_EXTRA", "").split(","):
        quadratic.loss_and_grad(p, x, y)
    return quadratic.loss_and_grad(p, x, y)


def make():
    return dataclasses.replace(quadratic.make(), name="{name}", loss_and_grad=loss_and_grad)
"""
EXTRA = {"extra1": 60, "extra10": 6}  # about 1 % and 10 % more instructions a step (a step is more than its gradient)


def bench_run(*args: str, extra: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTODIFF_BENCH_TEST_EXTRA": extra}
    return subprocess.run([sys.executable, "-m", "bench", "run", "--count", "--quick", *args], cwd=envs.ROOT,
                          capture_output=True, text=True, env=env)  # fmt: skip


def cases(folder: Path) -> dict[str, dict]:
    data = json.loads((folder / "results.json").read_text())
    return {"-".join(str(c[k]) for k in ("task", "n", "backend", "dtype") if k in c): c for c in data["cases"]}


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """quadratic on numpy, torch and jax-scan, float64, each backend counted in two processes, two at a time,
    the slowest under valgrind first (jax-scan's process about 50 s here, torch's 27, numpy's 7): 79 s in
    all (89 s with a backend's two processes side by side)."""
    out = tmp_path_factory.mktemp("count") / "results"
    slowest_first = ",".join(reversed(COUNTED))
    done = bench_run("--tasks", "quadratic", "--sizes", "1e2,1e4", "--backends", slowest_first, "--repeats", "2",
                     "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_a_count_run_counts_every_case(counted):
    found = cases(counted)
    assert set(found) == {f"quadratic-{n}{b}-float64" for n in ("", "100-", "10000-") for b in COUNTED}
    for b in COUNTED:  # the sweep's N = 10² is the task itself (the same arrays): counted once, one figure
        sweep, task = found[f"quadratic-100-{b}-float64"], found[f"quadratic-{b}-float64"]
        assert (sweep["counts_per_step"], sweep["pids"]) == (task["counts_per_step"], task["pids"])
    for name, c in found.items():
        assert "error" not in c, (name, c["error"])
        assert c["instructions_per_step"] > 1000, name
        assert c["steps_counted"] == 10 and len(c["counts_per_step"]) == 2
        assert all(len(cpus) == 1 for cpus in c["cpus"]), (name, c["cpus"])  # pools sized by it have one thread
    assert found["quadratic-torch-float64"]["instructions_per_step"] > found["quadratic-numpy-float64"][
        "instructions_per_step"]  # fmt: skip
    result = json.loads((counted / "results.json").read_text())
    assert result["count"]["valgrind"].startswith("valgrind-") and "--instr-atstart=no" in result["count"]["options"]
    readme = (counted / "README.md").read_text()
    assert "### Instructions per step, the allocators apart (float64)" in readme
    assert f"| numpy | {instructions(found['quadratic-numpy-float64']['instructions_per_step'])} |" in readme
    assert (counted / "counts.csv").is_file()


# How far two processes' counts of one case may differ here: numpy's to 0.1 %; torch's under half the threshold
# bench diff calls a change by (malloc's paths differ with the heap a process starts with); jax-scan's small steps
# (a few thousand instructions, a third of them glibc's malloc and memalign, whose paths depend on the heap
# compiling left; 10 steps a call, so a call's dispatch weighs more) by up to 3 %. Eager jax is not counted
# here, for the suite's time (an eager step dispatches every operation through XLA, slow under valgrind);
# jax-scan takes the framework's way through the worker (counter.inline_jax).
AGREE = {"numpy": 0.001, "torch": diff.COUNT_THRESHOLD / 2, "jax-scan": 0.03}
COUNTED = list(AGREE)


def test_two_processes_count_the_same(counted):
    for name, c in cases(counted).items():
        low, high = min(c["counts_per_step"]), max(c["counts_per_step"])
        assert (high - low) / low < AGREE[c["backend"]], (name, c["counts_per_step"])


def test_more_work_counts_more_and_diff_names_exactly_that_case(tmp_path):
    files = []
    for name, every in EXTRA.items():
        files += ["--task", str(tmp_path / f"{name}.py")]
        (tmp_path / f"{name}.py").write_text(VARIANT.format(name=name, every=every))
    runs = {}
    for which, extra in (("old", ""), ("new", ",".join(EXTRA))):
        runs[which] = tmp_path / which
        done = bench_run("--tasks", "quadratic", *files, "--sizes", "1e2,1e4", "--backends", "numpy", "--out",
                         str(runs[which]), extra=extra)  # fmt: skip
        assert done.returncode == 0, done.stderr
    old, new = cases(runs["old"]), cases(runs["new"])
    ratio = {k: new[k]["instructions_per_step"] / old[k]["instructions_per_step"] for k in old}
    assert 1.007 < ratio["extra1-numpy-float64"] < 1.03, ratio
    assert 1.07 < ratio["extra10-numpy-float64"] < 1.3, ratio
    diff = subprocess.run([sys.executable, "-m", "bench", "diff", str(runs["old"]), str(runs["new"])], cwd=envs.ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert diff.returncode == 0, diff.stderr
    verdicts = {}
    for line in diff.stdout.split("## Instruction counts", 1)[1].splitlines()[3:]:
        if line.startswith("| "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            verdicts[cells[0]] = cells[-1]
    assert verdicts == {"extra1 numpy float64": "slower", "extra10 numpy float64": "slower",
                        "quadratic numpy float64": "within noise", "quadratic N=10² numpy float64": "within noise",
                        "quadratic N=10⁴ numpy float64": "within noise"}, diff.stdout  # fmt: skip
    assert "instruction counts: 0 faster, 2 slower, 3 within noise" in diff.stdout
    failing = subprocess.run([sys.executable, "-m", "bench", "diff", str(runs["old"]), str(runs["new"]),
                              "--fail-above", "5"], cwd=envs.ROOT, capture_output=True, text=True)  # fmt: skip
    assert failing.returncode == 1 and "extra10 numpy float64" in failing.stderr
    assert "extra1 numpy float64" not in failing.stderr


# A dump in callgrind's format, made by hand: main (100 of its own) calls malloc three times and work
# once; work (400 of its own) calls malloc twice; malloc (20 of its own) calls _int_malloc and once free.
DUMP = """events: Ir
fn=(1) main
0 100
cfn=(2) malloc
calls=3 0
0 60
cfn=(3) work
calls=1 0
0 450
fn=(3)
0 400
cfn=(2)
calls=2 0
0 50
fn=(2)
0 20
cfn=(4) _int_malloc
calls=5 0
0 80
cfn=(5) free
calls=1 0
0 10
fn=(4)
0 80
fn=(5)
0 10
totals: 610
"""


def test_the_allocator_is_counted_apart_from_the_rest():
    # 60 + 50 inside the allocator from outside it, in 5 calls; free from within malloc is malloc's own
    assert counter.costs(DUMP) == counter.Dump(total=610, allocator=110, allocations=5)
    assert counter.costs(DUMP).total - counter.costs(DUMP).allocator == 100 + 400  # main's and work's own


# CPython's object allocator: PyObject_Malloc (5 of its own) calls pymalloc's _PyObject_Malloc twice (30 of
# its own), which for a large object calls glibc's malloc once (20)
PYMALLOC = """events: Ir
fn=(1) PyObject_Malloc
0 5
cfn=(2) _PyObject_Malloc
calls=2 0
0 50
fn=(2)
0 30
cfn=(3) malloc
calls=1 0
0 20
fn=(3)
0 20
totals: 55
"""


def test_cpython_s_allocator_is_counted_apart_too():
    assert counter.costs(PYMALLOC) == counter.Dump(total=55, allocator=50, allocations=2)


# XLA's intra-op pool (Eigen's): a worker's loop (20 of its own) looks for work 4 times (290 of its own, and a
# malloc of 10) and runs one piece of it (50)
POOLED = """events: Ir
fn=(1) main
0 100
cfn=(2) Eigen::ThreadPoolTempl<tsl::thread::EigenEnvironment>::WorkerLoop(int)
calls=1 0
0 370
fn=(2)
0 20
cfn=(3) Eigen::ThreadPoolTempl<tsl::thread::EigenEnvironment>::MaybeGetTask(tsl::thread::EigenEnvironment::Task*)
calls=4 0
+2 300
cfn=(4) work
calls=1 0
* 50
fn=(3)
0 250
+1 40
cfn=(5) malloc
calls=1 0
0 10
fn=(4)
0 50
fn=(5)
0 10
totals: 470
"""


def test_the_thread_pool_s_own_code_is_counted_apart_and_the_work_it_runs_is_not():
    assert counter.costs(POOLED) == counter.Dump(total=470, allocator=10, allocations=1, pool=20 + 250 + 40)
    found = counter.costs(POOLED)
    assert found.total - found.allocator - found.pool == 100 + 50  # main's and work's own


# CPython's type attribute cache: a step (100 of its own) looks names up 3 times (_PyType_Lookup, 15 of its own);
# one of them misses and walks the MRO (find_name_in_mro, 40 with a dict lookup of 25)
LOOKED_UP = """events: Ir
fn=(1) main
0 100
cfn=(2) _PyType_Lookup
calls=3 0
0 80
fn=(2)
0 15
cfn=(3) find_name_in_mro
calls=1 0
0 65
fn=(3)
0 40
cfn=(4) _Py_dict_lookup
calls=1 0
0 25
fn=(4)
0 25
totals: 180
"""


def test_the_type_cache_s_lookups_are_counted_apart_with_their_number():
    found = counter.costs(LOOKED_UP)
    assert found == counter.Dump(total=180, allocator=0, allocations=0, pool=0, lookup=80, lookups=3)
    assert found.total - found.lookup == 100  # main's own


def test_a_real_count_has_allocations_and_the_allocator_apart(counted):
    found = cases(counted)
    for name, c in found.items():
        assert 0 <= c["allocator_per_step"] < c["instructions_per_step"], name
    assert found["quadratic-torch-float64"]["allocations_per_step"] >= 1  # a tensor a step, at least
    torch = found["quadratic-torch-float64"]  # an eager step looks attributes up through CPython's type cache
    assert torch["lookups_per_step"] >= 1 and 0 < torch["lookup_per_step"] < torch["instructions_per_step"]
    readme = (counted / "README.md").read_text()
    assert "### Calls into the allocators per step (float64)" in readme


def test_without_valgrind_one_line_names_the_package(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # nothing on it: no valgrind
    out = subprocess.run([sys.executable, "-m", "bench", "run", "--count", "--out", str(tmp_path / "r")],
                         cwd=envs.ROOT, capture_output=True, text=True, env=env)  # fmt: skip
    one_line_error(out, 1, "valgrind", "apt-get install valgrind")
    assert not (tmp_path / "r").exists()


def test_count_takes_no_threads_or_device(tmp_path):
    for flags in (["--threads", "2"], ["--device", "cuda"]):
        out = subprocess.run([sys.executable, "-m", "bench", "run", "--count", *flags, "--out", str(tmp_path)],
                             cwd=envs.ROOT, capture_output=True, text=True)  # fmt: skip
        one_line_error(out, 2, "--count")


def test_counts_are_written_in_k_m_g():
    assert [instructions(v) for v in (950, 71_800, 1_070_000, 2.34e9)] == ["950", "71.8 k", "1.07 M", "2.34 G"]


def test_diff_calls_a_count_1_percent_up_slower_and_0_3_percent_within_noise(tmp_path):
    def write(folder: Path, counts: dict[str, float], timed: bool = False) -> Path:
        rows = [{"kind": "speed", "task": t, "backend": "numpy", "dtype": "float64", "instructions_per_step": v}
                for t, v in counts.items()]  # fmt: skip
        if timed:  # a timing run's case: no count, a median
            rows.append({"kind": "speed", "task": "mlp", "backend": "numpy", "dtype": "float64", "median_s": 1e-5})
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({"cases": rows}))
        return folder

    old = write(tmp_path / "old", {"linear": 100_000, "plane": 100_000, "logistic": 100_000, "mlp": 100_000})
    new = write(tmp_path / "new", {"linear": 101_000, "plane": 100_300, "logistic": 98_900}, timed=True)
    out = subprocess.run([sys.executable, "-m", "bench", "diff", str(old), str(new), "--fail-above", "0.8"],
                         cwd=envs.ROOT, capture_output=True, text=True)  # fmt: skip
    assert "instruction counts: 1 faster, 1 slower, 1 within noise" in out.stdout, out.stdout
    assert "mlp numpy float64: OLD has counts, the other timings" in out.stdout
    assert out.returncode == 1 and "linear numpy float64" in out.stderr and "plane" not in out.stderr


def test_a_count_worker_has_fixed_addresses_and_no_jax_cache(tmp_path):
    env = counting.environ(Settings(repeats=1, threads=1), {}, tmp_path, tmp_path / "shim.so")
    assert not set(counting.UNSET) & set(env), "jax's persistent cache would make the first process differ"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(counting.project(tmp_path)) and env["PYTHONSAFEPATH"] == "1"
    assert counting.no_aslr()[-1] == "-R" and shutil.which("setarch")


def test_each_counting_process_compiles_into_an_empty_cache_of_its_own(tmp_path):
    shared = tmp_path / "torchinductor"
    script = ("import os; from bench.worker import counter; counter.cold_caches();"
              " first = os.environ['TORCHINDUCTOR_CACHE_DIR'];"
              " counter.cold_caches(); print(first, os.environ['TORCHINDUCTOR_CACHE_DIR'])")  # fmt: skip
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(shared)}
    seen = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", script], cwd=envs.ROOT, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        first, again = map(Path, out.stdout.split())
        assert first == again and first.parent == shared and not any(first.iterdir())  # once a process, empty
        seen.append(first)
    assert seen[0] != seen[1]


def test_a_divergence_names_the_task_s_own_step(tmp_path):
    """Found in the slice's first call (the schedule's steps 1-10): its step, as ``bench train`` names it, not
    the step of the last call counted; found only after the slice was called again and again: that the
    schedule itself, from its start, does not diverge there."""
    early = cubic_task(tmp_path, "early", lr="0.5 if e < 5 else 1e200")
    again = cubic_task(tmp_path, "again", lr="1e30 if e == 0 else 0.5", epochs=20)
    out = tmp_path / "r"
    done = bench_run("--task", str(early), "--task", str(again), "--backends", "numpy", "--sizes", "100",
                     "--out", str(out))  # fmt: skip
    assert done.returncode == 1, done.stderr
    errors = {c["task"]: c.get("error") for c in json.loads((out / "results.json").read_text())["cases"]}
    assert errors["early"] == "diverged at step 7: the loss is not finite"
    assert errors["again"].startswith("the loss is not finite once the schedule's first 10 steps were trained again")
    assert errors["again"].endswith("does not diverge in its first 20 steps") and errors["quadratic"] is None
