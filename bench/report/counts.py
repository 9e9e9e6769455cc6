"""A count run's results folder: its tables, JSON and CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import formatting, timings

TABLES = {"instructions_per_step": "Instructions per step, the allocators apart",
          "allocations_per_step": "Calls into the allocators per step"}  # fmt: skip


def tables(rows: list[dict[str, Any]], o: Any) -> list[str]:
    """The Markdown tables, for each of TABLES: per dtype, backend × task; per dtype, backend × N of the
    quadratic sweep; per dtype, backend × width of the width sweep (where asked for: ``--widths``)."""
    parts = []
    for value, what in TABLES.items():
        for kind in ("speed", "scaling", "width"):
            mine = [r for r in rows if r["kind"] == kind]
            for d in [d for d in ("float64", "float32") if any(r["dtype"] == d for r in mine)]:
                here = [r for r in mine if r["dtype"] == d]
                key = "task" if kind == "speed" else "n"
                columns = list(dict.fromkeys(r[key] for r in here))
                found = {(r["backend"], r[key]): r for r in here}

                def cell(r: dict[str, Any] | None) -> str:
                    if r is None or "error" not in r:
                        return "—" if r is None else formatting.instructions(r[value])  # noqa: B023
                    return "cannot" if r.get("cannot") else "failed"

                body = [[b, *(cell(found.get((b, col))) for col in columns)] for b in o.backends]
                if kind == "speed":
                    title, header = f"### {what} ({d})", ["backend", *columns]
                elif kind == "width":
                    title = f"### {what}, wide-mlp by width ({d})"
                    header = ["backend", *(f"n = {n:,}" for n in columns)]
                else:
                    title, header = (
                        f"### {what}, quadratic by N ({d})",
                        ["backend", *(formatting.size(n) for n in columns)],
                    )
                parts.append(f"{title}\n\n" + formatting.markdown_table(header, body))
    return parts


def write(out: Path, o: Any, rows: list[dict[str, Any]], wall: float, env: dict[str, Any], counted: dict[str, Any],
          workers: dict[str, Any]) -> str:  # fmt: skip
    """results.json, counts.csv and README.md of a count run; returns the summary."""
    out.mkdir(parents=True)
    result = {"command": o.command(), "date": timings.started(wall), "wall_s": wall, "environment": env,
              "count": counted, "threads": 1, "device": "cpu", "quick": o.quick, "repeats": o.repeats, "cases": rows,
              "workers": workers}  # fmt: skip
    (out / "results.json").write_text(json.dumps(result, indent=1))
    columns = ["kind", "task", "n", "backend", "dtype", "mode", "instructions_per_step", "allocator_per_step",
               "allocations_per_step", "pool_per_step", "steps_counted", "spread", "error"]  # fmt: skip
    formatting.write_csv(out / "counts.csv", rows, columns)
    summary = "\n\n".join([
        f"Instructions per training step, counted by {counted['valgrind']} (callgrind, `Ir`, all threads), one "
        f"thread per framework; {o.repeats} process{'es' if o.repeats != 1 else ''} per backend. A count is the "
        "same on every host with the same software (not on other versions of the packages, nor across ISAs: "
        "torch.compile's kernels are built for AVX2 under valgrind); it is not a time.", *tables(rows, o)])  # fmt: skip
    said = [f"These counts were made on {timings.origin(result)}."]
    try:
        timed = json.loads((o.out.parent / "results.json").read_text())  # a count in results/count: the timings'
    except (OSError, ValueError):
        timed = None
    if isinstance(timed, dict) and "count" not in timed and "environment" in timed:
        said.append(timings.beside(result, timed, "The timings in", "../", "../README.md"))
    summary = " ".join(said) + "\n\n" + summary
    failed = [r for r in rows if "error" in r and not r.get("cannot")]
    cannot = [r for r in rows if r.get("cannot")]
    made = f"Made by `{o.command()}` in {wall / 60:.1f} min. Do not edit: rerun it."
    readme = f"# autodiff-bench instruction counts\n\n{made}\n\n{summary}\n"
    if cannot:
        readme += "\n## What a backend cannot run\n\n" + timings.cannot_list(cannot) + "\n"
    if failed:
        readme += "\n## Failed cases\n\n" + timings.failure_list(failed) + "\n"
    (out / "README.md").write_text(readme)
    return summary
