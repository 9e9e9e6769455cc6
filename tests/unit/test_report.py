"""The results pages, from made-up rows (no timing runs here): numbers as a reader writes them, where each
folder's figures come from, and the short block the top-level README shows."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest

import backends
import tasks
from bench.core.options import Options
from bench.host import envs
from bench.report import counts, timings
from conftest import timed

HERE = {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "commit": "68b4c43de8709f4c7e55d1ccd5c60b87ce19c8a8",
        "versions": {"numpy": "2.4.6"}}  # fmt: skip
ELSEWHERE = {"cpu": "AMD EPYC", "cores": 2, "commit": "7a0f66b149cdf7a94ed256b95b2222576dc5e34f",
             "versions": {"numpy": "2.4.6"}}  # fmt: skip


def options(out: Path, **kw: Any) -> Options:
    given = {"tasks": list(tasks.TASKS), "backends": list(backends.BACKENDS), "dtypes": ["float64"]} | kw
    return Options(out=out, threads=1, device="cpu", quick=False, timeout=600.0, **given)


def test_the_task_table_writes_numbers_as_a_reader_does():
    """The distance from numpy ``1.7e-15`` (not ``1.7e-015``, ``0.0e+00`` or a run of zeros), a final loss
    ``1.23457e-5``, steps a second to three figures."""
    rows = [timed("linear", "numpy", 4.2e-6, final_loss=1.23456789e-5, max_rel_diff=0.0),
            timed("linear", "torch", 5.9e-5, final_loss=0.0623793, max_rel_diff=1.7e-15),
            timed("linear", "jax", 2.4e-3, final_loss=2.5e8, max_rel_diff=2e-9)]  # fmt: skip
    table = {line[0]: line for line in timings.task_table(rows, "linear", "float64")}
    header = timings.TASK_HEADER
    column = {name: header.index(name) for name in ("steps/s", "final loss", "max rel diff from numpy")}
    assert [table[b][column["max rel diff from numpy"]] for b in ("numpy", "torch")] == ["0", "1.7e-15"]
    assert table["jax"][column["max rel diff from numpy"]].startswith("2.0e-9")
    assert [table[b][column["final loss"]] for b in ("numpy", "torch", "jax")] == ["1.23457e-5", "0.0623793", "2.5e8"]
    assert [table[b][column["steps/s"]] for b in ("numpy", "torch", "jax")] == ["238,000", "16,900", "417"]
    for line in table.values():  # no padded exponent, no e+, no run of zeros in any column
        assert not re.search(r"e[+-]0|e\+|0\.0000", " | ".join(line)), line
    assert timings.floor_cell({"floor_ratio": 19.0, "floor_n": 10**6}) == "19.0 at N = 10⁶"
    assert timings.floor_cell({"floor_ratio": 0.5, "floor_n": 10**6}).startswith("beats the floor")
    assert timings.floor_cell({"floor_ratio": 0.5, "floor_n": 10**6, "in_cache": True}) == "0.500 at N = 10⁶ (in cache)"


def test_the_floor_judges_only_arrays_that_outgrow_the_last_level_cache():
    rows = [{"kind": "scaling", "backend": "numpy", "mode": "eager", "dtype": "float64", "n": n, "median_s": 1e-3,
             "bytes_per_step": 16 * n} for n in (100, 10**6)]  # fmt: skip
    assert timings.scaling_fits(rows, 1e10, llc=32 << 20)[0]["in_cache"]  # 16 MB in 32 MiB
    assert not timings.scaling_fits(rows, 1e10, llc=8 << 20)[0]["in_cache"]
    assert not timings.scaling_fits(rows, 1e10)[0]["in_cache"]  # a cache not known: judged


def test_the_results_page_names_the_host_commit_and_date_of_its_timings_and_of_the_count_beside(tmp_path):
    here = {"environment": HERE, "date": "2026-05-10T14:03:12+00:00"}
    assert timings.sources(here, tmp_path) == (
        "These timings were made on Intel(R) Xeon(R) Processor, 2 cores, at commit 68b4c43de870, on 2026-05-10 "
        "at 14:03 UTC."
    )
    (tmp_path / "count").mkdir()
    counted = {"environment": ELSEWHERE, "count": {}, "date": "2026-05-08T09:00:00+00:00"}
    (tmp_path / "count" / "results.json").write_text(json.dumps(counted))
    said = timings.sources(here, tmp_path)
    assert ("The instruction counts in [count/](count/README.md) were made on AMD EPYC, 2 cores, at commit "
            "7a0f66b149cd, on 2026-05-08 at 09:00 UTC: **not the host nor the commit of these**") in said  # fmt: skip
    (tmp_path / "count" / "results.json").write_text(json.dumps(counted | {"environment": HERE}))
    assert timings.sources(here, tmp_path).endswith("on 2026-05-08 at 09:00 UTC: the same host and commit as these.")
    same_host = HERE | {"commit": ELSEWHERE["commit"] + "+changes"}
    (tmp_path / "count" / "results.json").write_text(json.dumps(counted | {"environment": same_host}))
    said = timings.sources(here, tmp_path)
    assert "at commit 7a0f66b149cd with changes not committed" in said and "**not the commit of these**" in said
    del counted["date"]  # a count from before the date was recorded
    (tmp_path / "count" / "results.json").write_text(json.dumps(counted))
    assert "on a date it does not record" in timings.sources(here, tmp_path)


def test_a_run_records_when_it_started():
    began = datetime.datetime.fromisoformat(timings.started(600.0))
    ago = datetime.datetime.now(datetime.UTC) - began
    assert began.tzinfo is not None and 599 <= ago.total_seconds() <= 605


def test_the_count_s_page_names_its_own_host_and_the_timings_beside(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"environment": HERE, "date": "2026-05-10T14:03:12+00:00"}))
    o = options(tmp_path / "count", count=True, repeats=1, backends=["numpy"], tasks=["linear"])
    rows = [{"kind": "speed", "task": "linear", "backend": "numpy", "dtype": "float64", "mode": "eager",
             "instructions_per_step": 33_800.0, "allocations_per_step": 46.4}]  # fmt: skip
    staging = tmp_path / "staging"
    summary = counts.write(staging, o, rows, 60.0, ELSEWHERE, {"valgrind": "valgrind-3.19.0"}, {})
    readme = (staging / "README.md").read_text()
    assert summary in readme and "| numpy | 33.8 k |" in readme
    assert "These counts were made on AMD EPYC, 2 cores, at commit 7a0f66b149cd, on " in readme
    assert ("The timings in [../](../README.md) were made on Intel(R) Xeon(R) Processor, 2 cores, at commit "
            "68b4c43de870, on 2026-05-10 at 14:03 UTC: **not the host nor the commit of these**") in readme  # fmt: skip
    assert datetime.datetime.fromisoformat(json.loads((staging / "results.json").read_text())["date"])


def every_case(names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, t in enumerate(names):
        for j, b in enumerate(backends.BACKENDS):
            rows.append(timed(t, b, 1e-6 * (1 + j) * (1 + i % 3)))
    return rows


@pytest.mark.parametrize("dtypes", [["float64"], ["float64", "float32"]])
def test_the_readme_block_is_short_and_its_links_work_from_the_top(tmp_path, monkeypatch, dtypes):
    """At most 30 lines between the markers: the fastest of each kind per task, by model size, the chart, four
    lines on what a figure is, the link to the full tables; every link relative to the checkout's root; the
    README around it untouched."""
    names = list(tasks.TASKS)
    o = options(tmp_path / "results", dtypes=dtypes)
    rows = every_case(names)
    pictures = [tmp_path / "results" / "plots" / f"summary_{d}.png" for d in dtypes]
    widths = [16, 1024]  # the sweep's ends: the README says both, and where each eager mode crosses over
    rows += [timed("wide-mlp", b, 1e-5 * (1 + j) * (1 if n == 16 else 100), kind="width", n=n, flops_per_step=n * 1e6)
             for n in widths for j, b in enumerate(backends.BACKENDS)]  # fmt: skip
    floor = {"compute": {"by_dtype": {d: {"flop_per_s": 5e10, "kernel": "numpy"} for d in dtypes}}}
    block = timings.readme_block(rows, names, o, {"environment": HERE, "date": "2026-05-10T14:03:12+00:00"}, pictures,
                                 floor)  # fmt: skip
    made = o.command()  # before the checkout moves: this folder is outside it
    readme = tmp_path / "README.md"
    before, after = "# autodiff-bench\n\nIntro [docs](docs/results.md).\n\n", "\n\n## More\n\nkept\n"
    readme.write_text(f"{before}{timings.README_START}\nold\n{timings.README_END}{after}")
    monkeypatch.setattr(envs, "ROOT", tmp_path)
    timings.update_readme(block)
    text = readme.read_text()
    assert text.startswith(before + timings.README_START) and text.endswith(timings.README_END + after)
    inside = text.split(timings.README_START)[1].split(timings.README_END)[0].strip("\n")
    assert len(inside.splitlines()) <= 30, inside
    assert sum(line.startswith("- **") for line in inside.splitlines()) == len(names) + len(widths)
    assert "- **n = 1,024** (1.02 GFLOP a step): eager **numpy** 1.00 ms" in inside  # 1.02e9 / 1 ms: 1,024 GFLOP/s
    assert "the fastest at 1,020 GFLOP/s, 0.0488× the compute floor" in inside
    assert "- Eager modes within 1.2× of the fastest: numpy from n = 16" in inside
    assert "![summary_float64](results/plots/summary_float64.png)" in inside and "summary_float32" not in inside
    for link in ("docs/trust.md", "docs/results.md", "results/README.md"):
        assert f"]({link})" in inside, link
    assert "CPU, one thread, float64" in inside and "commit 68b4c43de870" in inside and "*compiled loop*" in inside
    assert f"UTC, by `{made}`." in inside  # the command that made it, as the results' README says
    assert "jax-scan" in inside.split("*compiled loop*")[1].splitlines()[0]  # what compiled means: which modes
    assert ("float32 too" in inside) == ("float32" in dtypes)
    assert "| numpy |" not in inside and "Noise:" not in inside  # the tables stay in results/README.md


def test_links_are_moved_from_the_results_folder_to_the_root():
    text = "![a](plots/a.png) [t](../docs/trust.md#why) [r](README.md) [w](https://example.org/x) [s](#top)"
    assert timings.rebased(text, "results") == (
        "![a](results/plots/a.png) [t](docs/trust.md#why) [r](results/README.md) [w](https://example.org/x) [s](#top)"
    )


def test_a_mode_far_from_its_yardstick_either_way_is_flagged():
    """Over 1.5 × its hand-written loop, or under 1/1.5 of it (a yardstick of another kind), in bold."""
    base = [1.0, 1.0, 1.0]
    assert timings.ratio([2.0, 2.0, 2.0], base, 1.5, paired=True).endswith("over 1.5")
    assert timings.ratio([0.5, 0.5, 0.5], base, 1.5, paired=True).endswith("under 1/1.5")
    assert "**" not in timings.ratio([1.2, 1.2, 1.2], base, 1.5, paired=True)


def test_what_a_backend_cannot_run_is_a_line_per_reason_with_where_it_holds():
    """One reason given alike by two backends, on two tasks and a sweep's two points, is one line naming both; a
    reason that names no backend first stands as given."""
    no_jvp = "MXNet 1.x's autograd is reverse mode only"
    cannot = [{"kind": "operator", "task": t, "n": n, "backend": b, "dtype": "float64", "cannot": True,
               "error": f"{b} has no jvp: {no_jvp}"}
              for t, n in (("logistic", None), ("mlp", None), ("wide-mlp", 16), ("wide-mlp", 1024))
              for b in ("mxnet", "mxnet-gluon")]  # fmt: skip
    cannot.append({"kind": "speed", "task": "logistic-newton", "backend": "numpy", "dtype": "float32", "cannot": True,
                   "error": "the task defines no Hessian"})  # fmt: skip
    assert timings.cannot_list(cannot).splitlines() == [
        f"- **mxnet, mxnet-gluon** has no jvp: {no_jvp}: *logistic; mlp; wide-mlp (n = 16, 1,024)*, float64",
        "- the task defines no Hessian: *logistic-newton*, float32",
    ]
