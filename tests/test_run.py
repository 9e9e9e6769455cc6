"""``python -m bench run``: end to end on a small selection, and every way it can go wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import envs


def bench_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", "run", *args], cwd=envs.ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "results"
    (out / "gpu").mkdir(parents=True)  # a result set nested in the old folder survives the swap
    (out / "gpu" / "results.json").write_text("{}")
    (out / "stale.txt").write_text("from an older run")
    done = bench_run("--quick", "--backends", "numpy,torch,mxnet-gluon", "--tasks", "linear,plane", "--dtype",
                     "float64", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_quick_run_writes_every_result(quick):
    names = {p.name for p in quick.iterdir()}
    assert {"README.md", "results.json", "results.csv", "scaling.csv", "plots", "gpu"} <= names
    assert "stale.txt" not in names and (quick / "gpu" / "results.json").exists()
    assert {p.name for p in (quick / "plots").iterdir()} == {
        "scaling.png",
        "fit_linear.png",
        "loss_linear.png",
        "fit_plane.png",
        "loss_plane.png",
    }
    assert not [p for p in quick.parent.iterdir() if p.name.startswith(".")], "a temporary folder was left"


def test_quick_run_rows_agree_with_numpy(quick):
    result = json.loads((quick / "results.json").read_text())
    cases = [c for c in result["cases"] if c["kind"] == "speed"]
    assert {(c["task"], c["backend"]) for c in cases} == {
        (t, b) for t in ("linear", "plane") for b in ("numpy", "torch", "mxnet-gluon")
    }
    for c in cases:
        assert "error" not in c, c
        assert c["max_rel_diff"] <= 1e-9 and c["median_s"] > 0 and c["first_call_s"] > 0
    assert result["environment"]["cores"] >= 1 and result["workers"]["mxnet-gluon"]["status"] == "ok"
    assert "mxnet" in result["workers"]["mxnet-gluon"]["machine_info"]["autodiff_bench"]["versions"]
    readme = (quick / "README.md").read_text()
    assert "## linear (float64)" in readme and "| mxnet-gluon |" in readme


def test_a_worker_past_its_timeout_becomes_a_row(tmp_path):
    out = tmp_path / "r"
    done = bench_run("--quick", "--backends", "jax", "--tasks", "linear", "--dtype", "float32", "--timeout", "0.5",
                     "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    cases = json.loads((out / "results.json").read_text())["cases"]
    assert cases and all(c["error"] == "timed out after 0.5 s" for c in cases)
    assert "timed out after 0.5 s" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    "args, status, words",
    [
        (["--backends", "nope"], 2, ["unknown backend 'nope'", "mxnet-gluon"]),
        (["--tasks", "linear,nope"], 2, ["unknown task 'nope'"]),
        (["--dtype", "float16"], 2, ["unknown dtype"]),
        (["--threads", "0"], 2, ["--threads"]),
        (["--device", "tpu"], 2, ["unknown device 'tpu'", "cuda"]),
    ],
)
def test_bad_run_options_are_one_line(tmp_path, args, status, words):
    one_line_error(tmp_path, args, status, words)


def test_cuda_without_a_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    one_line_error(tmp_path, ["--device", "cuda"], 1, ["no CUDA GPU is visible"])


def one_line_error(tmp_path: Path, args: list[str], status: int, words: list[str]) -> None:
    done = bench_run(*args, "--quick", "--out", str(tmp_path / "r"))
    assert done.returncode == status and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert all(w in done.stderr for w in words)
    assert not (tmp_path / "r").exists()
