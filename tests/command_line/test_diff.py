"""``python -m bench diff OLD NEW``: results.json files made by hand, whose verdicts follow from how they are made."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from conftest import bench, one_line_error

# Five processes' medians, within ±2 % of 100 µs. Scaled by 1.5 every new one is above every old one
# (Mann-Whitney: complete separation, p = 2/252 < 0.05) and every resampled ratio of medians is at least
# min(new)/max(old) = 1.485/1.03 > 1.44: "slower" by the rule whatever the bootstrap draws.
TIGHT = [1.00e-4, 1.02e-4, 0.99e-4, 1.01e-4, 1.03e-4]

ENV = {"environment": "main", "python": "3.11.7", "versions": {"numpy": "2.4.6", "torch": "2.13.0+cpu"},
       "cpu": "AMD EPYC", "cores": 2, "threads": 2, "device": "cpu", "platform": "Linux-x86_64",
       "commit": "f290db25a955644b824b4dc3073a07292dc89160"}  # fmt: skip
MXNET_ENV = {**ENV, "environment": "mxnet", "versions": {"numpy": "1.23.5", "mxnet": "1.9.1"}}


def case(task: str, backend: str = "numpy", dtype: str = "float64", samples: list[float] | None = None,
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    c: dict[str, Any] = {"kind": "speed", "task": task, "backend": backend, "dtype": dtype, "mode": "eager"}
    if samples is not None:
        c |= {"samples_s": samples, "median_s": statistics.median(samples), "ci_s": [min(samples), max(samples)]}
    return c | extra


def write(folder: Path, cases: list[dict[str, Any]], env: dict[str, Any] = ENV,
          workers: dict[str, Any] | None = None, **top: Any) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = {"numpy": {"status": "ok", "machine_info": {"autodiff_bench": env}},
                   "mxnet": {"status": "ok", "machine_info": {"autodiff_bench": MXNET_ENV}}}  # fmt: skip
    data = {"environment": env, "threads": env["threads"], "device": env["device"], "quick": False, "cases": cases,
            "workers": workers} | top  # fmt: skip
    (folder / "results.json").write_text(json.dumps(data))
    return folder


def row(stdout: str, name: str) -> list[str]:
    """The cells of the table row of case ``name``."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == name:
            return cells
    raise AssertionError(f"no row for {name!r} in:\n{stdout}")


def environment_section(old: Path, new: Path) -> list[str]:
    """The lines of bench diff's environment section for two results folders."""
    out = bench("diff", str(old), str(new))
    assert out.returncode == 0, out.stderr
    return out.stdout.split("## Environment\n\n")[1].split("\n\n")[0].splitlines()


def count_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if " faster, " in line)


def test_slower_faster_and_noise_each_from_its_construction(tmp_path):
    old = write(tmp_path / "old", [case("linear", samples=TIGHT), case("plane", samples=TIGHT),
                                   case("mlp", samples=TIGHT)])  # fmt: skip
    new = write(tmp_path / "new", [case("linear", samples=[1.5 * t for t in TIGHT]),
                                   case("plane", samples=[t / 2 for t in TIGHT]),
                                   case("mlp", samples=TIGHT[::-1])])  # fmt: skip
    out = bench("diff", str(old), str(new))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    name, old_median, new_median, ratio, verdict = row(out.stdout, "linear numpy float64")
    assert (old_median, new_median, verdict) == ("101 µs", "152 µs", "slower")
    assert ratio.startswith("1.500 [")
    low, high = (float(x) for x in ratio.split("[")[1].rstrip("]").split(","))
    assert 1.485 / 1.03 <= low <= 1.5 <= high <= 1.03 * 1.5 / 0.99
    assert row(out.stdout, "plane numpy float64")[1:3] == ["101 µs", "50.5 µs"]
    assert row(out.stdout, "plane numpy float64")[3].startswith("0.500 [")
    assert row(out.stdout, "plane numpy float64")[4] == "faster"
    _, _, _, ratio, verdict = row(out.stdout, "mlp numpy float64")  # the same five figures in another order
    low, high = (float(x) for x in ratio.split("[")[1].rstrip("]").split(","))
    assert ratio.startswith("1.000 [") and verdict == "within noise"
    assert 0.99 / 1.03 - 5e-4 <= low < 1 < high <= 1.03 / 0.99 + 5e-4  # within the extreme ratios, rounded
    assert count_line(out.stdout) == "1 faster, 1 slower, 1 within noise, 0 without samples"
    assert "same environment" in out.stdout


def test_a_results_json_file_may_stand_for_its_folder(tmp_path):
    old = write(tmp_path / "old", [case("linear", samples=TIGHT)])
    out = bench("diff", str(old / "results.json"), str(old))
    assert out.returncode == 0, out.stderr
    assert row(out.stdout, "linear numpy float64")[4] == "within noise"


def test_fail_above_names_the_cases_slower_by_more(tmp_path):
    old = write(tmp_path / "old", [case("linear", samples=TIGHT), case("plane", samples=TIGHT),
                                   case("mlp", samples=TIGHT)])  # fmt: skip
    new = write(tmp_path / "new", [case("linear", samples=[1.5 * t for t in TIGHT]),
                                   case("plane", samples=[1.2 * t for t in TIGHT]),
                                   case("mlp", samples=[t / 2 for t in TIGHT])])  # fmt: skip
    out = bench("diff", str(old), str(new), "--fail-above", "30")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2, out.stderr
    assert lines[0].startswith("slower by 50.0 %: linear numpy float64 (1.500 [")
    assert lines[1] == "error: 1 case slower by more than 30 %"
    assert row(out.stdout, "plane numpy float64")[4] == "slower"  # reported, but under 30 %
    out = bench("diff", str(old), str(new), "--fail-above", "10")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == "error: 2 cases slower by more than 10 %"
    out = bench("diff", str(old), str(new), "--fail-above", "60")
    assert out.returncode == 0 and out.stderr == ""


def test_whole_run_line_is_the_shift_every_backend_shares_and_the_kernels_own(tmp_path):
    """NEW 4 % slower in numpy's cases, 2 % and 8 % in torch's (its median 5 %), its CPU kernel 2 % slower
    and its memory kernel 5 % faster: the line gives the median over the cases, the backends' range and
    both kernels."""

    def machine(cpu: float, memory: float) -> list[dict[str, float]]:
        return [{"calibration_cpu_s": cpu, "calibration_memory_s": memory}] * len(TIGHT)

    def run(folder: Path, scale: dict[str, float], cpu: float, memory: float) -> Path:
        cases = [
            case(t, b, samples=[scale[t + b] * s for s in TIGHT], machine=machine(cpu, memory))
            for t, b in (("linear", "numpy"), ("plane", "numpy"), ("linear", "torch"), ("plane", "torch"))
        ]
        return write(folder, cases)

    same = dict.fromkeys(["linearnumpy", "planenumpy", "lineartorch", "planetorch"], 1.0)
    old = run(tmp_path / "old", same, 1e-3, 2e-3)
    new = run(tmp_path / "new", {"linearnumpy": 1.04, "planenumpy": 1.04, "lineartorch": 1.02, "planetorch": 1.08},
              1.02e-3, 1.9e-3)  # fmt: skip
    out = bench("diff", str(old), str(new))
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("Whole run: "))
    assert line.startswith("Whole run: NEW/OLD 1.040, the median over 4 cases (per backend 1.040 to 1.050); "
                           "the calibration kernels cpu 1.020, memory 0.950; within each run, the median case by "
                           "round of processes against its first: OLD +2.0 %, -1.0 %, +1.0 %, +3.0 %; NEW +2.0 %, "
                           "-1.0 %, +1.0 %, +3.0 %. ")  # fmt: skip


def test_old_results_without_samples_compare_medians_only_and_never_fail(tmp_path):
    """results.json from before samples_s (median_s, iqr_s, rounds): no verdict, however large the change."""
    legacy = {"median_s": 1e-4, "iqr_s": 1e-6, "rounds": 40}
    old = write(tmp_path / "old", [case("linear", **legacy), case("plane", samples=TIGHT)])
    new = write(tmp_path / "new", [case("linear", **(legacy | {"median_s": 3e-4})), case("plane", **legacy)])
    out = bench("diff", str(old), str(new), "--fail-above", "5")
    assert out.returncode == 0, out.stderr
    assert row(out.stdout, "linear numpy float64")[1:] == ["100 µs", "300 µs", "3.000", "no samples"]
    assert row(out.stdout, "plane numpy float64")[1:] == ["101 µs", "100 µs", "0.990", "no samples"]
    assert count_line(out.stdout) == "0 faster, 0 slower, 0 within noise, 2 without samples"


def test_a_width_case_is_compared_by_its_width(tmp_path):
    width = {"kind": "width", "task": "wide-mlp", "n": 1024, "backend": "jax", "dtype": "float64"}
    small = width | {"n": 16, "samples_s": TIGHT}
    old = write(tmp_path / "old", [width | {"samples_s": TIGHT}, small])
    new = write(tmp_path / "new", [width | {"samples_s": [2 * t for t in TIGHT]}, small])
    out = bench("diff", str(old), str(new), "--fail-above", "0")
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().splitlines()[0].startswith("slower by 100.0 %: wide-mlp width 1,024 jax float64")
    assert row(out.stdout, "wide-mlp width 1,024 jax float64")[4] == "slower"
    assert row(out.stdout, "wide-mlp width 16 jax float64")[4] == "within noise"


def test_failed_cases_are_listed_not_compared_and_so_are_cases_in_one_run_only(tmp_path):
    scaling = {"kind": "scaling", "task": "quadratic", "n": 1000000, "backend": "jax", "dtype": "float32"}
    old = write(tmp_path / "old", [case("linear", samples=TIGHT), case("plane", samples=TIGHT),
                                   scaling | {"samples_s": TIGHT}])  # fmt: skip
    new = write(tmp_path / "new", [case("linear", error="RuntimeError: boom"), case("digits", samples=TIGHT),
                                   scaling | {"samples_s": [2 * t for t in TIGHT]}])  # fmt: skip
    out = bench("diff", str(old), str(new), "--fail-above", "0")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[0].startswith("slower by 100.0 %: quadratic N=10⁶ jax float32")
    assert row(out.stdout, "quadratic N=10⁶ jax float32")[4] == "slower"
    text = out.stdout
    assert "## Only in OLD\n\n- plane numpy float64\n" in text
    assert "## Only in NEW\n\n- digits numpy float64\n" in text
    assert "- linear numpy float64: failed in NEW: RuntimeError: boom" in text
    with pytest.raises(AssertionError):
        row(text, "linear numpy float64")
    assert count_line(text) == "0 faster, 1 slower, 0 within noise, 0 without samples, 1 failed, 1 only in OLD, " \
        "1 only in NEW"  # fmt: skip


def test_environment_differences_one_line_each(tmp_path):
    new_env = ENV | {"versions": {"numpy": "2.5.0", "torch": "2.13.0+cpu", "jax": "0.11.0"}, "cpu": "Intel Xeon",
                     "threads": 1, "commit": "0123456789abcdef0123+changes"}  # fmt: skip
    new_workers = {
        "mxnet": {"machine_info": {"autodiff_bench": MXNET_ENV | {"versions": {"numpy": "1.23.5", "mxnet": "1.9.2"}}}}
    }
    old = write(tmp_path / "old", [case("linear", samples=TIGHT)])
    new = write(tmp_path / "new", [case("linear", samples=TIGHT)], env=new_env, workers=new_workers)
    assert environment_section(old, new) == [
        "- jax in .venv/: not installed → 0.11.0",
        "- numpy in .venv/: 2.4.6 → 2.5.0",
        "- mxnet in .venv-mxnet/: 1.9.1 → 1.9.2",
        "- cpu: AMD EPYC → Intel Xeon",
        "- threads: 2 → 1",
        "- commit: f290db25a955 → 0123456789ab+changes",
    ]


def test_a_change_of_blas_kernel_or_of_the_variables_that_chose_it_is_a_line(tmp_path):
    lib = {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31.188.0", "architecture": "Haswell",
           "num_threads": 2, "file": "libscipy_openblas64_.so", "package": "numpy"}  # fmt: skip
    old_env = ENV | {"blas": [lib], "blas_variables": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": None},
                     "cpu_flags": ["sse4_2", "avx2", "avx512f"]}  # fmt: skip
    new_env = old_env | {"blas": [lib | {"architecture": "SkylakeX"}],
                         "blas_variables": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}}  # fmt: skip
    old = write(tmp_path / "old", [case("linear", samples=TIGHT)], env=old_env, workers={})
    new = write(tmp_path / "new", [case("linear", samples=TIGHT)], env=new_env, workers={}, native_blas=True)
    assert environment_section(old, new) == [
        "- BLAS numpy in .venv/: openblas 0.3.31.188.0 (Haswell kernel) → openblas 0.3.31.188.0 (SkylakeX kernel)",
        "- OPENBLAS_CORETYPE in .venv/: Haswell → unset",
        "- --native-blas: off → on",
    ]


def test_a_quick_run_is_flagged(tmp_path):
    old = write(tmp_path / "old", [case("linear", samples=TIGHT)])
    new = write(tmp_path / "new", [case("linear", samples=TIGHT)], quick=True)
    out = bench("diff", str(old), str(new))
    assert "NEW: a --quick run, whose timings are not to be read" in out.stdout


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "nowhere", ["does not exist"]),
        (lambda d: d, ["has no results.json"]),
        (lambda d: (d / "results.json").write_text("{not json") and d, ["is not JSON"]),
        (lambda d: (d / "results.json").write_text("{}") and d, ["has no cases"]),
        (lambda d: (d / "results.json").write_text('{"cases": 3}') and d, ["has no cases"]),
        (lambda d: (d / "results.json").write_text("[1, 2]") and d, ["has no cases"]),
        (lambda d: (d / "results.json").write_bytes(b"\xff\xfe\x00") and d, ["is not JSON", "UTF-8"]),
        (lambda d: write(d, [{"kind": "speed", "task": "linear"}]), ["case 1", "'backend'"]),
        (lambda d: write(d, [{"kind": "other"}]), ["case 1", "neither 'speed', 'scaling', 'width' nor 'operator'"]),
        (lambda d: write(d, [case("linear", samples_s=[1e-4, "x"])]), ["linear numpy float64", "samples_s"]),
        (lambda d: write(d, [case("linear", samples_s=[])]), ["samples_s"]),
        (lambda d: write(d, [case("linear", samples_s=[1e-4, -1.0])]), ["samples_s"]),
        (lambda d: write(d, [case("linear", median_s="fast")]), ["median_s"]),
        (lambda d: write(d, [case("linear", samples=TIGHT), case("linear", samples=TIGHT)]), ["twice"]),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, make, words):
    good = write(tmp_path / "good", [case("linear", samples=TIGHT)])
    (tmp_path / "bad").mkdir()
    bad = make(tmp_path / "bad")
    one_line_error(bench("diff", str(bad), str(good)), 2, "OLD", *words)
    one_line_error(bench("diff", str(good), str(bad)), 2, "NEW", *words)


@pytest.mark.parametrize(
    "args, words",
    [
        (["diff"], ["OLD"]),
        (["diff", "results"], ["NEW"]),
        (["diff", "results", "results", "--fail-above", "much"], ["--fail-above", "much"]),
        (["diff", "results", "results", "--fail-above", "-5"], ["--fail-above", "-5"]),
        (["diff", "results", "results", "--fail-above", "nan"], ["--fail-above"]),
    ],
)
def test_bad_usage_is_one_line_and_status_2(args, words):
    one_line_error(bench(*args), 2, *words)


def test_a_name_that_measured_a_compiled_loop_before_the_kinds_is_compared_as_the_loop_it_is_now(tmp_path):
    """OLD's jax-jit (mode "compiled": a chunk of steps in one XLA program) is NEW's jax-scan: its case is
    compared with jax-scan's, said so, and NEW's jax-jit (one jitted call a step) is only in NEW."""
    loop, step = TIGHT, [20 * t for t in TIGHT]  # a step-wise mode 20 times slower: never compared with the loop
    old = write(tmp_path / "old", [case("linear", "jax-jit", samples=loop, mode="compiled")])
    new = write(tmp_path / "new", [case("linear", "jax-jit", samples=step, mode="compiled step"),
                                   case("linear", "jax-scan", samples=loop, mode="compiled loop")])  # fmt: skip
    out = bench("diff", str(old), str(new))
    assert out.returncode == 0, out.stderr
    assert "- OLD's jax-jit measured a compiled loop, which is jax-scan now" in out.stdout
    assert row(out.stdout, "linear jax-scan float64")[-1] == "within noise"
    assert "## Only in NEW\n\n- linear jax-jit float64" in out.stdout
    assert "slower" not in count_line(out.stdout).replace("0 slower", "")
