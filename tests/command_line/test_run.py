"""``python -m bench run``: end to end on a small selection, and every way it can go wrong. Above all,
nothing that the tool did not write is ever replaced or deleted."""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import backends
from bench.campaign import remote, timing
from bench.campaign.remote import train
from bench.commands import run
from bench.core.cases import Case, Settings
from bench.core.errors import BenchError, Diverged
from bench.core.options import Options, asked_cases
from bench.host import envs, procs
from bench.report import outdir, plots
from bench.worker import floor as bench_floor
from conftest import bench, cubic_task
from tasks import operators


def bench_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", "run", *args], cwd=envs.ROOT, capture_output=True, text=True)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder``, hidden ones too, with a digest of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def earlier_results(out: Path) -> None:
    """A results folder as an earlier run left it, with a user's files and a nested result set beside."""
    (out / "plots").mkdir(parents=True)
    for name in ("README.md", "results.json", "plots/fit_gone.png"):
        (out / name).write_text(f"an earlier run's {name}")
    outdir.write_mark(out, ["README.md", "results.json", "plots/fit_gone.png"])
    (out / "notes.txt").write_text("the user's own")
    (out / "plots" / "mine.png").write_text("the user's own plot")
    (out / "gpu").mkdir()
    (out / "gpu" / "results.json").write_text("{}")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "results"
    earlier_results(out)
    done = bench_run("--quick", "--tasks", "linear,plane,digits", "--sizes", "1e2,1e4", "--dtype", "float64", "--out",
                     str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_quick_run_writes_every_result(quick):
    names = {p.name for p in quick.iterdir()}
    assert {"README.md", "results.json", "results.csv", "scaling.csv", "break_even.csv", "plots", outdir.MARK} <= names
    drawn = {"scaling.png", "summary_float64.png"} | {
        f"{kind}_{t}.png" for kind in ("fit", "loss", "agreement") for t in ("linear", "plane", "digits")
    }
    assert {p.name for p in (quick / "plots").iterdir()} == drawn | {"mine.png"}
    assert not [p for p in quick.iterdir() if p.name.startswith(outdir.STAGING)], "a staging folder was left"
    assert not [p for p in quick.parent.iterdir() if p.name.startswith(".")], "a temporary folder was left"
    written = {"README.md", "results.json", "results.csv", "scaling.csv", "break_even.csv"}
    assert set(outdir.read_mark(quick)) == written | {f"plots/{p}" for p in drawn}


def test_a_rerun_keeps_everything_it_did_not_write(quick):
    """The user's files, the user's plot inside plots/ and a nested result set survive; the earlier run's
    plot that this run did not draw again is gone, because the mark listed it."""
    assert (quick / "notes.txt").read_text() == "the user's own"
    assert (quick / "plots" / "mine.png").read_text() == "the user's own plot"
    assert (quick / "gpu" / "results.json").read_text() == "{}"
    assert not (quick / "plots" / "fit_gone.png").exists()
    assert (quick / "README.md").read_text() != "an earlier run's README.md"


def test_quick_run_rows_agree_with_numpy(quick):
    result = json.loads((quick / "results.json").read_text())
    cases = [c for c in result["cases"] if c["kind"] == "speed"]
    assert {(c["task"], c["backend"]) for c in cases} == {
        (t, b) for t in ("linear", "plane", "digits") for b in backends.BACKENDS
    }
    for c in cases:
        assert "error" not in c, c
        assert c["max_rel_diff"] <= 1e-9 and c["median_s"] > 0 and c["first_call_s"] > 0
    assert result["environment"]["cores"] >= 1
    own = {b: sorted({s.framework} - {"numpy"}) for b, s in backends.BACKENDS.items()}  # and nothing else loaded
    assert {c["backend"]: c["frameworks"] for c in cases} == own
    assert "mxnet" in result["workers"]["mxnet-gluon"]["machine_info"]["autodiff_bench"]["versions"]
    readme = (quick / "README.md").read_text()
    assert "## linear (float64)" in readme and "| mxnet-gluon |" in readme and "Failed cases" not in readme


def test_the_short_answer_and_the_chart_come_first(quick):
    result = json.loads((quick / "results.json").read_text())
    readme = (quick / "README.md").read_text()
    top = readme.split("Every backend was timed")[0]  # what comes before how to read the figures
    assert "![summary_float64](plots/summary_float64.png)" in top
    for t in ("linear", "plane", "digits"):
        timed = [c for c in result["cases"] if c["kind"] == "speed" and c["task"] == t]
        line = next(x for x in top.splitlines() if x.startswith(f"- **{t}**: "))
        parts = line.removeprefix(f"- **{t}**: ").split(" · ")
        assert [p.split(" **")[0] for p in parts] == list(backends.MODES)  # the fastest of each kind, in order
        for kind, part in zip(backends.MODES, parts, strict=True):
            fastest = min((c for c in timed if c["mode"] == kind), key=lambda c: c["median_s"])
            assert part.startswith(f"{kind} **{fastest['backend']}** "), part
            assert " faster than " in part or "within noise of" in part


def test_the_results_page_says_where_its_figures_come_from(quick):
    """The host (CPU, cores), the commit and when the run started, near the top of its README."""
    result = json.loads((quick / "results.json").read_text())
    env, began = result["environment"], datetime.datetime.fromisoformat(result["date"])
    assert 0 <= (datetime.datetime.now(datetime.UTC) - began).total_seconds() < result["wall_s"] + 3600
    top = (quick / "README.md").read_text().split("Every backend was timed")[0]
    assert f"These timings were made on {env['cpu']}, {env['cores']} cores, at commit {env['commit'][:12]}" in top
    assert f"on {began:%Y-%m-%d} at {began:%H:%M} UTC" in top


def test_every_backend_s_distance_from_numpy_step_by_step(quick):
    """The agreement plot's data: per sampled step, |a-b| / max(1, |a|+|b|) against numpy's loss, which
    the numpy reference itself meets exactly and every backend within the suite's tolerance."""
    for c in json.loads((quick / "results.json").read_text())["cases"]:
        if c["kind"] != "speed":
            continue
        d = c["loss_diffs"]
        assert d["step"] == c["losses"]["step"] and len(d["loss"]) == len(c["losses"]["loss"])
        assert max(d["loss"]) <= c["max_rel_diff"] <= 1e-9
        if c["backend"] == "numpy":
            assert set(d["loss"]) == {0.0}


def test_matrix_parameters_and_a_tasks_own_figures_reach_the_results(quick):
    """digits: a 64×10 weight kept in its shape, and its held-out accuracy (made in the main process,
    which alone has scikit-learn) beside the loss of every backend, MXNet's included."""
    cases = [c for c in json.loads((quick / "results.json").read_text())["cases"] if c["task"] == "digits"]
    for c in cases:
        assert np.shape(c["params"]["W"]) == (64, 10) and 0.0 <= c["metrics"]["test_accuracy"] <= 1.0
    table = (quick / "README.md").read_text().split("## digits (float64)")[1].split("##")[0]
    assert table.count("test accuracy") == len(backends.BACKENDS)


def refused(out: Path, *args: str, words: list[str], unchanged: bool = True) -> None:
    """The run stops before any work with one line and status 2, and ``out`` is as it was."""
    before = snapshot(out) if unchanged and out.is_dir() else None
    start = time.monotonic()
    done = bench_run("--quick", "--backends", "numpy", "--out", str(out), *args)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert all(w in done.stderr for w in words), done.stderr
    assert time.monotonic() - start < 20, "refused only after doing work"
    if before is not None:
        assert snapshot(out) == before


def test_a_folder_the_tool_did_not_write_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    (tmp_path / "mydata").mkdir()
    refused(tmp_path, words=["did not write", outdir.MARK])


def test_a_marked_folder_whose_own_names_hold_a_users_file_is_refused(tmp_path):
    outdir.write_mark(tmp_path, ["README.md"])
    (tmp_path / "results.json").write_text("the user's, not listed in the mark")
    refused(tmp_path, words=["results.json", "not written by autodiff-bench"])


@pytest.mark.parametrize("plot", ["fit_linear.png", "summary_float64.png", "agreement_linear.png"])
def test_a_plot_the_mark_does_not_list_is_refused_before_any_work(tmp_path, plot):
    """A file named as the tool names its plots, but not in the mark, is refused at the start, not after
    minutes of timing."""
    outdir.write_mark(tmp_path, ["README.md"])
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / plot).write_text("not the tool's")
    refused(tmp_path, "--tasks", "linear", words=[f"plots/{plot}", "not written by autodiff-bench"])


def test_every_file_a_run_writes_is_one_the_tool_calls_its_own(quick):
    """What a run writes (its mark) is what a folder without the mark may not hold (outdir.OWN)."""
    written = outdir.read_mark(quick)
    assert written and all(any(fnmatch.fnmatchcase(name, own) for own in outdir.OWN) for name in written), written


def test_a_mark_that_names_a_path_outside_its_folder_is_refused(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (tmp_path / "precious.txt").write_text("outside")
    (out / outdir.MARK).write_text(json.dumps({"files": ["../precious.txt"]}))
    refused(out, words=["mark"])
    assert (tmp_path / "precious.txt").exists()


@pytest.mark.parametrize(
    "where, words",
    [("file", ["is not a folder"]), ("/", ["filesystem root"]), ("checkout", ["checkout"]), ("above", ["checkout"])],
)
def test_a_file_the_root_or_the_checkout_is_refused(tmp_path, where, words):
    target = {"file": tmp_path / "f.txt", "/": Path("/"), "checkout": envs.ROOT, "above": envs.ROOT.parent}[where]
    if where == "file":
        target.write_text("a file")
    refused(target, words=words, unchanged=where == "file")  # the others are too big to snapshot
    if where == "file":
        assert target.read_text() == "a file"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--backends", "nope"], ["unknown backend 'nope'", "mxnet-gluon"]),
        (["--tasks", "linear,nope"], ["unknown task 'nope'"]),
        (["--tasks", ""], ["--tasks", "empty name"]),
        (["--tasks", "linear,"], ["--tasks", "empty name"]),
        (["--tasks", "quadratic,quadratic"], ["'quadratic' is named twice"]),
        (["--backends", "numpy,numpy"], ["'numpy' is named twice"]),
        (["--dtype", "float16"], ["unknown dtype"]),
        (["--threads", "0"], ["--threads", "between 1 and"]),
        (["--threads", "1000"], ["--threads", "between 1 and"]),
        (["--timeout", "-5"], ["--timeout", "greater than 0"]),
        (["--timeout", "0"], ["--timeout", "greater than 0"]),
        (["--timeout", "nan"], ["--timeout"]),
        (["--device", "tpu"], ["unknown device 'tpu'", "cuda"]),
        (["--sizes", "100,ten"], ["--sizes", "'ten' is not a whole number"]),
        (["--sizes", "0"], ["--sizes", "1 or more"]),
        (["--sizes", "1.5"], ["--sizes", "'1.5'"]),
        (["--sizes", "1e4,10000"], ["--sizes", "'10000' is named twice"]),
        (["--sizes", ""], ["--sizes", "''"]),
        (["--widths", "0"], ["--widths: '0' is not a whole number of hidden units, 1 or more"]),
        (["--widths", "abc"], ["--widths: 'abc' is not a whole number"]),
        (["--widths", "16,64,16"], ["--widths", "'16' is named twice"]),
        (["--tasks", "none", "--sizes", "none", "--widths", "none"], ["nothing to time"]),
        (["--jobs", "0"], ["--jobs 0", "must be between 1 and"]),
        (["--jobs", "1000"], ["--jobs 1000", "must be between 1 and"]),
        (["--jobs", "1000", "--threads", "1"], ["--jobs 1000 × --threads 1"]),
        (["--jobs", "1"], ["--jobs is for timings"]),  # refused() runs --quick
        (["--count", "--operators"], ["--operators is for timings"]),
    ],
)
def test_bad_run_options_are_one_line(tmp_path, args, words):
    refused(tmp_path / "r", *args, words=words)
    assert not (tmp_path / "r").exists()


def test_cuda_without_a_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = bench_run("--device", "cuda", "--quick", "--out", str(tmp_path / "r"))
    assert done.returncode == 1 and done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
    assert "no CUDA GPU is visible" in done.stderr and not (tmp_path / "r").exists()


def test_a_run_where_every_case_fails_exits_1_and_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "r"
    earlier_results(out)
    before = snapshot(out)
    done = bench_run("--quick", "--backends", "jax", "--tasks", "linear", "--timeout", "0.5", "--out", str(out))
    assert done.returncode == 1, done.stderr
    assert "timed out after 0.5 s" in done.stderr and done.stderr.strip().splitlines()[-1].endswith("unchanged")
    assert snapshot(out) == before


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in words:
            found.append(words)
    return found


def start_run(out: Path, *args: str) -> subprocess.Popen[str]:
    """A run whose jax worker (several seconds) is under way when this returns."""
    # SIGINT as a terminal delivers it, even where this suite was started in the background (`cmd &` in a
    # script ignores SIGINT, an ignored signal stays ignored across exec, and Python then installs no
    # handler for it): caught here while the run starts, it is reset to the default in the run
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--tasks", "linear", "--backends", "jax",
                                 "--dtype", "float32", "--out", str(out), *args], cwd=envs.ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while not processes_mentioning(f"{out}/{outdir.STAGING}"):
        assert proc.poll() is None and time.monotonic() < deadline, "the worker never started"
        time.sleep(0.2)
    time.sleep(1)
    return proc


def test_workers_run_several_at_once_and_answer_in_order():
    together = threading.Barrier(2, timeout=10)  # broken unless two calls wait on it at the same time

    def call(i: int, delay: float) -> int:
        time.sleep(delay)
        together.wait()
        return i

    assert timing.Workers(2).map(call, [(0, 0.3), (1, 0.0), (2, 0.0), (3, 0.2)]) == [0, 1, 2, 3]
    assert Settings(quick=True).jobs == procs.cpus() and Settings().jobs == 1


# --quick runs its workers one per CPU at once (bench.campaign.Workers): each is ended, the others too
@pytest.mark.parametrize("args", [[], ["--quick", "--backends", "jax,jax-jit,torch-compile"]], ids=["run", "quick"])
def test_ctrl_c_leaves_the_folder_byte_for_byte_and_ends_the_worker(tmp_path, args):
    out = tmp_path / "r"
    earlier_results(out)
    before = snapshot(out)
    proc = start_run(out, *args)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stdout == ""
    assert stderr.strip().splitlines()[-1] == f"error: interrupted; {out} unchanged" and "Traceback" not in stderr
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == sorted(os.listdir(out))
    assert not [p for p in out.iterdir() if p.name.startswith(outdir.STAGING)]
    assert not processes_mentioning(str(out)), "the worker outlived the run"


def test_what_a_killed_run_leaves_is_cleared_by_the_next(tmp_path):
    out = tmp_path / "r"
    proc = start_run(out)
    proc.kill()
    proc.communicate()
    deadline = time.monotonic() + 10
    while processes_mentioning(str(out)):  # the kernel ends the worker with its parent
        assert time.monotonic() < deadline, "the worker outlived a killed run"
        time.sleep(0.2)
    assert [p for p in out.iterdir() if p.name.startswith(outdir.STAGING)], "nothing left: the test proves nothing"
    done = bench_run("--quick", "--backends", "numpy", "--tasks", "linear", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(outdir.STAGING)]


def quick_options(out: Path, backends: list[str]) -> Options:
    return Options(out=out, tasks=["linear"], backends=backends, dtypes=["float64"], threads=1, device="cpu",
                       quick=True, timeout=120.0, repeats=2, sizes=[10**2, 10**4])  # fmt: skip


FLOOR = {"bytes_per_s": 1e10, "kernel": "a stand-in", "kernels": {}}


def test_a_worker_that_dies_names_its_signal_and_last_output_and_the_others_go_on(tmp_path, monkeypatch, capsys):
    real = remote.Remote.command
    crash = "import os, sys; print('starting', file=sys.stderr); print('last words', file=sys.stderr); os.abort()"

    def command(self):
        return [sys.executable, "-c", crash] if self.calls[0][1]["backend"] == "torch" else real(self)

    monkeypatch.setattr(remote.Remote, "command", command)
    monkeypatch.setattr(bench_floor, "bandwidth", lambda threads, **read: FLOOR)
    assert run.run(quick_options(tmp_path / "r", ["numpy", "torch"])) == 1
    cases = json.loads((tmp_path / "r" / "results.json").read_text())["cases"]
    torch = [c for c in cases if c["backend"] == "torch"]
    assert torch and all("killed by SIGABRT" in c["error"] and "last words" in c["error"] for c in torch)
    assert all("error" not in c for c in cases if c["backend"] == "numpy")
    assert "## Failed cases" in (tmp_path / "r" / "README.md").read_text()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: 3 of 6 cases failed") and "killed by SIGABRT" in err[-2]


def test_a_plot_or_a_floor_that_fails_is_a_line_not_a_lost_run(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ValueError("cannot draw this")

    def no_floor(threads, **read):
        raise BenchError("bench.floor failed: terminate called without an active exception")

    monkeypatch.setattr(plots, "fit_plot", broken)
    monkeypatch.setattr(bench_floor, "bandwidth", no_floor)
    assert run.run(quick_options(tmp_path / "r", ["numpy"])) == 0
    out = tmp_path / "r"
    result = json.loads((out / "results.json").read_text())
    assert result["cases"] and result["read_bandwidth_bytes_per_s"] is None
    assert result["floor"].pop("wall_s") >= 0
    assert result["floor"] == {"error": "bench.floor failed: terminate called without an active exception",
                               "measured_gb_s": []}  # fmt: skip
    assert (out / "results.csv").read_text().count("\n") == 2
    readme = (out / "README.md").read_text()
    assert "plot fit_linear.png not drawn: ValueError: cannot draw this" in readme and "## linear (float64)" in readme
    assert "Memory floor not measured: bench.floor failed: terminate called without an active exception." in readme
    assert "| memory floor not measured |" in readme and (out / "plots" / "scaling.png").exists()
    assert not (out / "plots" / "fit_linear.png").exists() and (out / "plots" / "loss_linear.png").exists()
    assert "not drawn" in capsys.readouterr().out


def test_the_sweep_s_sizes_reach_the_cases_and_the_command(tmp_path):
    def options(**kw):
        return Options(out=tmp_path, tasks=[], backends=["numpy"], dtypes=["float64"], threads=1, device="cpu",
                           quick=False, timeout=600.0, **kw)  # fmt: skip

    assert options().sizes == [10**2, 10**4, 10**6] and "--sizes" not in options().command()
    assert options(count=True).sizes[-1] == 10**7 and "--sizes" not in options(count=True).command()
    o = options(sizes=[10**3, 10**7])
    assert [c.n for c in asked_cases(o) if c.kind == "scaling"] == [10**3, 10**7]
    assert "--sizes 1000,10000000" in o.command()
    assert not [c for c in asked_cases(options(sizes=[])) if c.kind == "scaling"]
    assert "--sizes none" in options(sizes=[]).command()


@pytest.mark.skipif(procs.cpus() < 2, reason="two workers at a time need two CPUs")
def test_two_timing_workers_at_a_time_each_have_a_cpu_of_their_own(tmp_path):
    cases = [Case("speed", "linear", b, "float64") for b in ("numpy", "torch")]
    settings = Settings(repeats=1, workers=2)
    assert timing.cpu_sets(settings) == [str(c) for c in procs.pinned(2)]
    found = timing.time_cases(cases, settings)
    held = [found[c]["cpus"][0] for c in cases]
    assert all(len(cpus) == 1 for cpus in held) and held[0] != held[1], held
    o = Options(out=tmp_path, tasks=[], backends=["numpy"], dtypes=["float64"], threads=1, device="cpu",
                    quick=False, timeout=600.0, jobs=2)  # fmt: skip
    assert "--jobs 2" in o.command() and o.settings.workers == 2 and o.settings.jobs == 2


def test_the_command_names_a_folder_inside_the_clone_as_any_clone_would():
    def command(out: Path, **kw) -> str:
        return Options(out=out, tasks=[], backends=["numpy"], dtypes=["float64"], threads=1, device="cpu",
                           quick=False, timeout=600.0, **kw).command()  # fmt: skip

    assert command(envs.ROOT / "results" / "count", count=True).endswith(" --out results/count")
    assert "--out" not in command(envs.ROOT / "results")
    assert command(Path("/elsewhere/r")).endswith(" --out /elsewhere/r")


def writable(folder: Path) -> bool:
    try:
        (folder / ".probe").mkdir()
        (folder / ".probe").rmdir()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """Nothing can be written in ``folder`` while in the block: its mode, and where that does not stop this
    process (root), the immutable flag (``chattr +i``); skipped where neither does."""
    mode, flagged = folder.stat().st_mode, False
    folder.chmod(0o555)
    try:
        if writable(folder) and shutil.which("chattr"):
            flagged = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if writable(folder):
            pytest.skip("nothing here stops this process writing in a folder")
        yield
    finally:
        if flagged:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(mode)


@pytest.mark.parametrize("which", ["the folder", "a new folder in it", "its plots"])
def test_a_folder_that_cannot_be_written_is_one_line_before_any_work_and_left_as_it_was(tmp_path, which):
    out = tmp_path / "r"
    earlier_results(out)
    before = snapshot(out)
    target = out / "new" if which == "a new folder in it" else out
    words = ["cannot write in its plots/"] if which == "its plots" else ["cannot write there"]
    with unwritable(out / "plots" if which == "its plots" else out):
        refused(target, words=[f"--out {target}", *words])
    assert snapshot(out) == before and not (out / "new").exists()


def test_a_file_where_the_folder_should_be_is_one_line(tmp_path):
    (tmp_path / "f").write_text("a file")
    refused(tmp_path / "f" / "r", words=[f"--out {tmp_path / 'f' / 'r'}", "cannot write there (Not a directory)"])
    assert (tmp_path / "f").read_text() == "a file"


def test_results_that_cannot_be_put_in_place_leave_the_old_ones(tmp_path, monkeypatch):
    """A file that cannot be replaced at the end (a read-only plots/, a full disk): the files already moved in
    are taken back, the old ones restored, and the error names the file."""
    out = tmp_path / "r"
    earlier_results(out)
    before = snapshot(out)
    real = os.replace

    def replace(src, dst):
        if Path(dst) == out / "results.csv":
            raise PermissionError(1, "Operation not permitted", str(dst))
        return real(src, dst)

    with outdir.ResultsFolder(out) as folder:
        staged = folder.staging / "results"
        (staged / "plots").mkdir(parents=True)
        for name in ("README.md", "results.json", "results.csv", "plots/fit_linear.png"):
            (staged / name).write_text(f"this run's {name}")
        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(BenchError) as e:
            folder.commit(staged)
    assert str(e.value) == f"results not written: {out / 'results.csv'}: Operation not permitted; {out} is as it was"
    assert snapshot(out) == before and not [p for p in out.iterdir() if p.name.startswith(outdir.STAGING)]


def test_a_divergence_names_the_task_s_own_step_in_timing_and_correctness(tmp_path, monkeypatch, user_task):
    """Its step from the start of the schedule, as ``bench train`` names it: where a timing process's first
    slice finds it (step 7, within the 10 steps of a --quick round), and where only the training for the
    correctness columns reaches it (step 22), never the step of the timing's last round."""
    early = user_task(cubic_task(tmp_path, "early", lr="0.5 if e < 5 else 1e200"))
    late = user_task(cubic_task(tmp_path, "late", lr="0.5 if e < 20 else 1e200"))
    for name in (early, late):
        with pytest.raises(Diverged) as trained:
            train(name, "numpy")
        assert trained.value.step == {early: 7, late: 22}[name]
    monkeypatch.setattr(bench_floor, "bandwidth", lambda threads, **read: FLOOR)
    o = Options(out=tmp_path / "r", tasks=[early, late], backends=["numpy", "mxnet"], dtypes=["float64"],
                    threads=1, device="cpu", quick=True, timeout=120.0, repeats=1, sizes=[100])  # fmt: skip
    assert run.run(o) == 1
    errors = {
        (c["task"], c["backend"]): c.get("error") for c in json.loads((o.out / "results.json").read_text())["cases"]
    }
    assert errors == {("early", "numpy"): "diverged at step 7: the loss is not finite",
                      ("early", "mxnet"): "diverged at step 7: the loss is not finite",
                      ("late", "numpy"): "diverged at step 22: the loss is not finite",
                      ("late", "mxnet"): "diverged at step 22: the loss is not finite",
                      ("quadratic", "numpy"): None, ("quadratic", "mxnet"): None}  # fmt: skip


def test_a_case_a_backend_cannot_run_is_listed_apart_with_why(tmp_path):
    """MXNet 1.9.1 has no Hessian, so mxnet cannot train logistic-newton (its class's lacks): the run says so in a
    section of its own and in the case's row, not among the failures, and numpy's case is timed beside it."""
    out = tmp_path / "r"
    got = bench("run", "--quick", "--tasks", "logistic-newton", "--backends", "numpy,mxnet", "--sizes", "none",
                "--out", str(out))  # fmt: skip
    assert got.returncode == 0, got.stdout + got.stderr
    cases = {c["backend"]: c for c in json.loads((out / "results.json").read_text())["cases"]}
    assert "error" not in cases["numpy"] and cases["numpy"]["max_rel_diff"] <= 1e-9
    assert cases["mxnet"]["cannot"] and "cannot train with newton" in cases["mxnet"]["error"]
    readme = (out / "README.md").read_text()
    assert "## What a backend cannot run" in readme and "## Failed cases" not in readme
    assert f"- **mxnet** {cases['mxnet']['error'].removeprefix('mxnet ')}: *logistic-newton*, float64" in readme


def test_operators_are_timed_and_reported_in_a_section_a_csv_and_a_plot(tmp_path):
    """--operators adds a case per operator of each operator task the run times, on each mode (here eager numpy
    and torch on logistic): each timed, its value held to the hand-derived one, in the README's Operators
    section, operators.csv and plots/operators_float64.png."""
    out = tmp_path / "r"
    got = bench_run("--quick", "--operators", "--tasks", "logistic", "--backends", "numpy,torch", "--sizes", "none",
                    "--out", str(out))  # fmt: skip
    assert got.returncode == 0, got.stdout + got.stderr
    cases = [c for c in json.loads((out / "results.json").read_text())["cases"] if c["kind"] == "operator"]
    assert len(cases) == 2 * 8 and all(c["verdict"] == "agrees" and c["samples_s"] for c in cases)
    assert {c["operator"] for c in cases if c.get("objective_samples_s")} == set(operators.OPERATORS) - {"loss"}
    readme = (out / "README.md").read_text()
    assert "## Operators (float64)" in readme and "### logistic (float64, θ of 3 entries)" in readme
    assert "**Values**: 16 of 16 first calls agree with the reference." in readme
    assert len((out / "operators.csv").read_text().splitlines()) == 1 + 16
    assert (out / "plots" / "operators_float64.png").is_file()
    assert "plots/operators_float64.png" in outdir.read_mark(out)
