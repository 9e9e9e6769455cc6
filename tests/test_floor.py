"""The memory-read floor (bench/floor.py): the best of several kernels, measured in its own process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import envs, floor


def test_measure_runs_every_kernel_in_its_own_process_and_keeps_the_best():
    # in a fresh interpreter, to see what measure() loads into its caller: no framework
    code = (
        "import json, sys; from bench import floor; r = floor.measure(1); "
        "print(json.dumps({'result': r, 'loaded': [m for m in ('torch', 'jax') if m in sys.modules]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=envs.ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["loaded"] == []
    r = got["result"]
    measured = {k: v for k, v in r["kernels"].items() if isinstance(v, float)}
    # the main environment has torch and jax: every kernel ran, once per dtype at the one thread
    assert set(r["kernels"]) == set(measured) == {f"{k} {d} t=1" for k in floor.KERNELS for d in floor.DTYPES}
    assert r["bytes_per_s"] == max(measured.values()) > 0
    assert measured[r["kernel"]] == r["bytes_per_s"]
    assert 1e8 < r["bytes_per_s"] < 1e13  # between 0.1 GB/s and 10 TB/s: a read, not a cache or a clock error
    assert r["threads"] == 1 and r["nbytes"] == floor.NBYTES


def test_a_kernel_that_fails_is_its_error_and_the_others_go_on(monkeypatch):
    def missing(a, threads):
        raise ModuleNotFoundError("No module named 'torch'")
        yield  # a generator, as the kernels are

    monkeypatch.setitem(floor.KERNELS, "torch-sum", missing)
    r = floor.floor(2, nbytes=16 * 2**20, repeats=1, kernels=["numpy-dot", "torch-sum"])
    assert r["kernels"]["torch-sum float64"] == "error: ModuleNotFoundError: No module named 'torch'"
    assert r["kernels"]["torch-sum float32"] == "error: ModuleNotFoundError: No module named 'torch'"
    numbers = {k: v for k, v in r["kernels"].items() if not isinstance(v, str)}
    assert set(numbers) == {f"numpy-dot {d} t={t}" for d in floor.DTYPES for t in (1, 2)}
    assert r["kernel"] == max(numbers, key=numbers.__getitem__) and r["bytes_per_s"] == numbers[r["kernel"]]


@pytest.mark.parametrize(
    ("args", "why"),
    [(["--threads", "0"], "--threads must be 1 to"), (["--threads", "100000"], "--threads must be 1 to"),
     (["--kernels", "numpy-dot,nope"], "unknown kernels: nope")],
)  # fmt: skip
def test_bad_arguments_are_refused_before_any_work(args, why, capsys):
    with pytest.raises(SystemExit) as e:
        floor.main(args)
    assert e.value.code == 2
    assert why in capsys.readouterr().err
