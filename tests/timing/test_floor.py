"""The memory-read floor and the compute floor (bench/worker/floor.py): each the best of several kernels, measured
in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bench.core.cases import DTYPES
from bench.core.errors import BenchError
from bench.core.options import QUICK_FLOOR, Options
from bench.host import envs, procs
from bench.report import timings
from bench.worker import floor


def test_measure_runs_every_kernel_in_its_own_process_and_keeps_the_best():
    # in a fresh interpreter, to see what bandwidth() loads into its caller: no framework
    code = (
        "import json, sys; from bench.worker import floor; r = floor.bandwidth(1); "
        "print(json.dumps({'result': r, 'loaded': [m for m in ('torch', 'jax') if m in sys.modules]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=envs.ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["loaded"] == []
    r = got["result"]
    measured = {k: v for k, v in r["kernels"].items() if isinstance(v, float)}
    # the main environment has torch and jax: every kernel ran, once per dtype at the one thread
    assert set(r["kernels"]) == set(measured) == {f"{k} {d} t=1" for k in floor.KERNELS for d in DTYPES}
    assert r["bytes_per_s"] == max(measured.values()) > 0
    assert measured[r["kernel"]] == r["bytes_per_s"]
    assert 1e8 < r["bytes_per_s"] < 1e13  # between 0.1 GB/s and 10 TB/s: a read, not a cache or a clock error
    assert r["threads"] == 1 and r["nbytes"] == floor.NBYTES


def test_a_quick_run_reads_its_small_floor_with_numpy_alone():
    """--quick's floor (QUICK_FLOOR): numpy's kernels on a small array, which neither loads a framework nor compiles
    a sum, so that the smoke run's minute is its timings'."""
    r = floor.bandwidth(1, **QUICK_FLOOR)
    assert set(r["kernels"]) == {f"{k} {d} t=1" for k in QUICK_FLOOR["kernels"] for d in DTYPES}
    assert r["nbytes"] == QUICK_FLOOR["nbytes"] < floor.NBYTES and r["bytes_per_s"] > 1e8


def test_a_kernel_that_fails_is_its_error_and_the_others_go_on(monkeypatch):
    def missing(a, threads):
        raise ModuleNotFoundError("No module named 'torch'")
        yield  # a generator, as the kernels are

    monkeypatch.setitem(floor.KERNELS, "torch-sum", missing)
    r = floor.floor(2, nbytes=16 * 2**20, repeats=1, kernels=["numpy-dot", "torch-sum"])
    assert r["kernels"]["torch-sum float64"].startswith("error: ModuleNotFoundError: No module named 'torch'")
    assert r["kernels"]["torch-sum float32"].startswith("error: ModuleNotFoundError: No module named 'torch'")
    numbers = {k: v for k, v in r["kernels"].items() if not isinstance(v, str)}
    assert set(numbers) == {f"numpy-dot {d} t={t}" for d in DTYPES for t in (1, 2)}
    assert r["kernel"] == max(numbers, key=numbers.__getitem__) and r["bytes_per_s"] == numbers[r["kernel"]]


@pytest.mark.parametrize(
    ("args", "why"),
    [(["--threads", "0"], "--threads must be 1 to"), (["--threads", "100000"], "--threads must be 1 to"),
     (["--kernels", "numpy-dot,nope"], "unknown kernels: nope"),
     (["--compute", "--dtypes", "float16"], "--dtypes: comma-separated, of float64, float32"),
     (["--compute", "--sizes", "0,abc"], "--sizes: comma-separated whole numbers above 0"),
     (["--compute", "--kernels", "numpy-dot"], "unknown kernels: numpy-dot"),
     (["--compute", "--repeats", "0"], "--repeats must be 1 or more")],
)  # fmt: skip
def test_bad_arguments_are_refused_before_any_work(args, why, capsys):
    with pytest.raises(SystemExit) as e:
        floor.main(args)
    assert e.value.code == 2
    assert why in capsys.readouterr().err


def stand_in(monkeypatch, code: str) -> None:
    """bench.worker.floor's process replaced by ``code``, run by this interpreter."""
    monkeypatch.setattr(floor, "command", lambda threads, nbytes, repeats, kernels: [sys.executable, "-c", code])


FIGURE = {"bytes_per_s": 5e10, "kernel": "numpy-dot float64 t=1", "kernels": {"numpy-dot float64 t=1": 5e10}}


def test_a_figure_printed_before_the_process_dies_is_kept(monkeypatch):
    """A framework's thread pool torn down at exit can abort the process after its line was printed
    ("terminate called without an active exception"): the figure stands, and the result says how it ended."""
    last_words = "print('terminate called without an active exception', file=sys.stderr)"
    stand_in(monkeypatch, f"import json, os, sys; print({json.dumps(FIGURE)!r}, flush=True); {last_words}; os.abort()")
    r = floor.bandwidth(1)
    assert r["bytes_per_s"] == 5e10 and r["kernel"] == "numpy-dot float64 t=1"
    assert r["exit"] == ("was killed by SIGABRT after printing its figure: "
                         "terminate called without an active exception")  # fmt: skip


@pytest.mark.parametrize(
    ("code", "why"),
    [("import os, sys; print('no memory', file=sys.stderr); os.abort()", "bench.worker.floor failed: no memory"),
     ("import sys; sys.exit(3)", "bench.worker.floor failed: exited with status 3"),
     ("print('{\"bytes_per_s\": null, \"kernels\": {\"numpy-dot float64\": \"error: x\"}}')",
      "bench.worker.floor measured nothing: {'numpy-dot float64': 'error: x'}")],
)  # fmt: skip
def test_a_floor_that_fails_is_a_reason_never_a_raise_in_attempt(monkeypatch, code, why):
    stand_in(monkeypatch, code)
    with pytest.raises(BenchError, match="^bench.worker.floor"):
        floor.bandwidth(1)
    assert floor.attempt(1) == {"error": why}


def test_the_best_of_two_tries_keeps_a_figure_and_says_what_failed():
    one = FIGURE | {"bytes_per_s": 4e10}
    assert floor.best(one, FIGURE) == FIGURE | {"measured_gb_s": [40.0, 50.0]}
    assert floor.best({"error": "bench.worker.floor failed: x"}, one) == one | {
        "measured_gb_s": [40.0],
        "errors": ["bench.worker.floor failed: x"],
    }
    assert floor.best({"error": "a"}, {"error": "a"}) == {"error": "a", "measured_gb_s": []}
    assert floor.best({"error": "a"}, {"error": "b"}) == {"error": "a; b", "measured_gb_s": []}


def test_a_run_without_a_floor_says_so_in_its_summary_and_its_floor_column():
    rows = [{"kind": "scaling", "task": "quadratic", "backend": "numpy", "dtype": "float64", "n": n, "mode": "eager",
             "median_s": 1e-9 * n, "ci_low_s": 1e-9 * n, "ci_high_s": 1e-9 * n, "samples_s": [1e-9 * n],
             "bytes_per_step": 16 * n} for n in (100, 10_000)]  # fmt: skip
    fits = timings.scaling_fits(rows, None)
    assert "floor_ratio" not in fits[0] and timings.floor_cell(fits[0]) == "memory floor not measured"
    o = Options(out=envs.ROOT / "results", tasks=[], backends=["numpy"], dtypes=["float64"], threads=1, device="cpu",
                quick=True, timeout=1.0)  # fmt: skip
    env = {"cpu": "a CPU", "cores": 2, "versions": {"numpy": "2.4.6"}, "commit": "0" * 40}
    text = timings.summary_markdown(rows, [], o, env, {"error": "bench.worker.floor failed: no memory"}, fits, [])
    assert "Memory floor not measured: bench.worker.floor failed: no memory." in text
    assert "Machine: a CPU, 2 cores, 1 threads, device cpu; numpy 2.4.6. Memory floor not measured: " in text
    assert "| numpy | eager | float64 |" in text and "| 0 ns | 1.00 ns | memory floor not measured |" in text


# -- the compute floor: the best FLOP/s of a square matrix product --------------------------------------------


def test_the_compute_floor_runs_in_its_own_process_on_a_timing_worker_s_cpus_and_keeps_the_best():
    r = floor.compute_floor(1, ["float64", "float32"], sizes=(128, 256), repeats=2)
    assert r["cpus"] == procs.pinned(1) and r["threads"] == 1
    for dtype in DTYPES:
        mine = r["by_dtype"][dtype]
        measured = {k: v for k, v in mine["kernels"].items() if isinstance(v, float)}
        # the main environment has torch and jax: every kernel ran at every size
        assert set(mine["kernels"]) == set(measured) == {f"{k} n={n}" for k in floor.PRODUCTS for n in (128, 256)}
        assert mine["flop_per_s"] == max(measured.values()) == measured[mine["kernel"]]
        assert 1e8 < mine["flop_per_s"] < 1e13  # 0.1 GFLOP/s to 10 TFLOP/s on one core: a product, not a clock error
    assert r["blas"].startswith("numpy ") and any(f" with {lib} " in r["blas"] for lib in ("OpenBLAS", "MKL", "BLIS"))


def test_a_product_s_figure_is_its_fastest_call():
    calls = iter([0.05, 0.02, 0.03, 0.2])  # the untimed first call, then the timed ones
    r = floor.best_product(lambda: time.sleep(next(calls)), n=100, repeats=3)
    assert 2 * 100**3 / 0.03 < r <= 2 * 100**3 / 0.02  # the 0.02 s call: sleep only ever runs late


def test_a_product_kernel_that_fails_is_its_error_and_the_others_go_on(monkeypatch):
    def missing(a, b, threads):
        raise ModuleNotFoundError("No module named 'torch'")

    monkeypatch.setitem(floor.PRODUCTS, "torch-matmul", missing)
    r = floor.compute(1, ["float64"], sizes=(64, 128), repeats=1, kernels=["numpy-matmul", "torch-matmul"])
    mine = r["by_dtype"]["float64"]
    assert mine["kernels"]["torch-matmul"].startswith("error: ModuleNotFoundError: No module named 'torch'")
    assert set(mine["kernels"]) == {"numpy-matmul n=64", "numpy-matmul n=128", "torch-matmul"}
    assert mine["kernel"].startswith("numpy-matmul") and mine["flop_per_s"] == mine["kernels"][mine["kernel"]]


@pytest.mark.parametrize(
    ("code", "why"),
    [("import sys; sys.exit(3)", "bench.worker.floor --compute failed: exited with status 3"),
     ("print('{\"by_dtype\": {\"float64\": {\"flop_per_s\": null, \"kernels\": {}}}}')",
      "bench.worker.floor --compute measured nothing in float64: {}")],
)  # fmt: skip
def test_a_compute_floor_that_fails_is_a_reason_never_a_raise_in_attempt(monkeypatch, code, why):
    monkeypatch.setattr(floor, "compute_command", lambda *a, **k: [sys.executable, "-c", code])
    with pytest.raises(BenchError, match="^bench.worker.floor --compute"):
        floor.compute_floor(1, ["float64"])
    assert floor.compute_attempt(1, ["float64"]) == {"error": why}
