"""``python -m bench diff OLD NEW``: what changed between two runs, their environments first, then case by case.

A case timed in R processes carries ``samples_s`` (each process's figure per step) and ``sigma_log`` (the
process-to-process spread of its backend's cases in that run) and ``drift_log`` (what moves a whole run:
bench.core.noise_model.drift); its verdict is ``bench.core.stats.verdict`` of the two sample sets, with both spreads
and the larger drift where both runs have them. A case from before samples were kept
(only ``median_s``) has no interval: its medians are compared and its verdict is "no samples", never a
significant change.

A *Whole run* line gives the median NEW/OLD over the cases timed in both and the calibration kernels' own
(``shift_lines``): what every backend shares is the host between the runs.

A case counted by ``bench run --count`` carries ``instructions_per_step``, which a rerun of the same software
reproduces to far under COUNT_THRESHOLD: where both runs have a count, a change by more than COUNT_THRESHOLD is
slower or faster, anything less within noise.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backends
from bench.core import cases, noise_model, stats
from bench.core.errors import UsageError
from bench.host import envs, machine
from bench.report.formatting import aligned_table, duration, instructions, power
from bench.report.timings import levels

ALPHA = 0.05
NO_SAMPLES = "no samples"
COUNT_THRESHOLD = 0.005  # a count that moved by more than this fraction has changed (reruns agree far closer)


@dataclass
class Figures:
    """One case of a results.json: its figures, or why it has none."""

    key: tuple[Any, ...]
    name: str
    backend: str = ""
    median: float | None = None
    samples: list[float] | None = None
    sigma: float | None = None  # the process-to-process spread of its backend in that run (bench.core.stats)
    drift: float = 0.0  # what moves a whole run (bench.core.noise_model.drift); 0 in a run from before it was kept
    error: str | None = None
    count: float | None = None  # instructions per step (bench run --count)


@dataclass
class Results:
    """One results.json, read and checked; ``renamed``, the backends of its rows that measured what another
    name measures now (``backends.RENAMED``), each by the name it has now."""

    path: Path
    data: dict[str, Any]
    cases: dict[tuple[Any, ...], Figures] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    """One case in both runs, compared."""

    name: str
    old: float
    new: float
    ratio: float
    low: float | None
    high: float | None
    verdict: str


def load(given: str, which: str) -> Results:
    """A results folder (with results.json in it) or a results.json file, read and checked: every problem
    a UsageError naming ``which`` (OLD or NEW) and the path."""
    path = Path(given)
    if path.is_dir():
        path = path / "results.json"
        if not path.is_file():
            raise UsageError(f"{which}: {given} has no results.json")
    elif not path.exists():
        raise UsageError(f"{which}: {given} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"{which}: cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{which}: {path} is not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{which}: {path} is not JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise UsageError(f"{which}: {path} has no cases (not the results.json of `python -m bench run`)")
    results = Results(path, data)
    for i, raw in enumerate(data["cases"]):
        if isinstance(raw, dict) and raw.get("backend") in backends.RENAMED and raw.get("mode") in backends.OLD_MODES:
            results.renamed[raw["backend"]] = now = backends.RENAMED[raw["backend"]]
            raw = {**raw, "backend": now}
        case = read_case(raw, f"{which}: {path}: case {i + 1}")
        if case.key in results.cases:
            raise UsageError(f"{which}: {path}: case {case.name} appears twice")
        results.cases[case.key] = case
    return results


def read_case(raw: Any, where: str) -> Figures:
    if not isinstance(raw, dict):
        raise UsageError(f"{where} is not an object")
    kind = raw.get("kind")
    needed = {"speed": ("task", "backend", "dtype"), "scaling": ("task", "n", "backend", "dtype"),
              "width": ("task", "n", "backend", "dtype"),
              "operator": ("task", "operator", "backend", "dtype")}.get(kind)  # fmt: skip
    if needed is None:
        raise UsageError(f"{where} has kind {kind!r}, neither 'speed', 'scaling', 'width' nor 'operator'")
    missing = [k for k in needed if k not in raw]
    if missing:
        raise UsageError(f"{where} has no {', '.join(repr(k) for k in missing)}")
    key = (kind, *(raw[k] for k in needed))
    name = f"{raw['task']} {raw['backend']} {raw['dtype']}"
    if kind in ("scaling", "width") or (kind == "operator" and raw.get("n") is not None):
        if not number(raw["n"]):
            raise UsageError(f"{where} has n {raw['n']!r}, not a number")
        size = f"N={power(int(raw['n']))}" if kind == "scaling" else f"width {int(raw['n']):,}"
        name = f"{raw['task']} {size} {raw['backend']} {raw['dtype']}"
    if kind == "operator":  # (operator, task, operator, backend, dtype, n): n None but on wide-mlp's width sweep
        key = (*key, raw.get("n"))
        name = name.replace(f" {raw['backend']} ", f" {raw['operator']} {raw['backend']} ", 1)
    case = Figures(tuple(str(k) if not isinstance(k, int | float) else k for k in key), name, str(raw["backend"]))
    if "error" in raw:
        case.error = str(raw["error"])
        return case
    samples = raw.get("samples_s")
    if samples is not None:
        if not (isinstance(samples, list) and samples and all(number(s) and s > 0 for s in samples)):
            raise UsageError(f"{where} ({name}): samples_s is not a list of positive durations")
        case.samples = [float(s) for s in samples]
    sigma = raw.get("sigma_log")
    if sigma is not None:
        if not (number(sigma) and sigma >= 0):
            raise UsageError(f"{where} ({name}): sigma_log {sigma!r} is not a spread (a number of 0 or more)")
        case.sigma = float(sigma)
    drift = raw.get("drift_log", 0.0)
    if not (number(drift) and drift >= 0):
        raise UsageError(f"{where} ({name}): drift_log {drift!r} is not a spread (a number of 0 or more)")
    case.drift = float(drift)
    median = raw.get("median_s")
    if median is not None and not (number(median) and median > 0):
        raise UsageError(f"{where} ({name}): median_s {median!r} is not a positive duration")
    case.median = float(median) if median is not None else None
    if case.median is None and case.samples:
        case.median = statistics.median(case.samples)
    count = raw.get("instructions_per_step")
    if count is not None and not (number(count) and count > 0):
        raise UsageError(f"{where} ({name}): instructions_per_step {count!r} is not a positive number")
    case.count = float(count) if count is not None else None
    if case.median is None and case.count is None:
        case.error = "no median_s, samples_s or instructions_per_step"
    return case


def number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


# The environments ------------------------------------------------------------------------------------------------

FIELDS = ("cpu", "cores", "threads", "python", "platform", "device", "commit")


def environment(r: Results) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The run's machine (FIELDS) and, per environment (main, mxnet...), its packages' versions: the main
    process's from ``environment.versions``, each worker's from its ``machine_info``."""
    env = r.data.get("environment")
    env = env if isinstance(env, dict) else {}
    machine = {f: env.get(f) for f in FIELDS}
    for f in ("threads", "device"):  # what the run was asked for, where it says
        if r.data.get(f) is not None:
            machine[f] = r.data[f]
    packages: dict[str, dict[str, str]] = {}
    if isinstance(env.get("versions"), dict):
        packages[str(env.get("environment") or "main")] = {str(k): str(v) for k, v in env["versions"].items()}
    workers = r.data.get("workers")
    for w in (workers or {}).values() if isinstance(workers, dict) else ():
        mine = (w.get("machine_info") or {}).get("autodiff_bench") if isinstance(w, dict) else None
        if isinstance(mine, dict) and isinstance(mine.get("versions"), dict):
            found = packages.setdefault(str(mine.get("environment") or "main"), {})
            found.update({str(k): str(v) for k, v in mine["versions"].items()})
    return machine, packages


def recorded(r: Results) -> dict[str, dict[str, Any]]:
    """Each environment's record (bench.host.machine.environment): the workers' where they reported, else the
    main process's."""
    found: dict[str, dict[str, Any]] = {}
    workers = r.data.get("workers")
    for w in (workers or {}).values() if isinstance(workers, dict) else ():
        mine = (w.get("machine_info") or {}).get("autodiff_bench") if isinstance(w, dict) else None
        if isinstance(mine, dict) and isinstance(mine.get("versions"), dict):
            found.setdefault(str(mine.get("environment") or "main"), mine)
    env = r.data.get("environment")
    if isinstance(env, dict):
        found.setdefault(str(env.get("environment") or "main"), env)
    return found


def blas(info: dict[str, Any]) -> dict[str, str] | None:
    """What chose an environment's kernels, for comparing: each BLAS library with its version and kernel,
    every BLAS-choosing variable (``unset`` where it was), the CPU's SIMD flags. None for a run from before
    these were recorded."""
    if "blas" not in info:
        return None
    libs = info["blas"] if isinstance(info["blas"], list) else []
    found = {f"BLAS {lib.get('package') or lib.get('file')}": f"{lib.get('internal_api')} {lib.get('version')}"
             + (f" ({lib['architecture']} kernel)" if lib.get("architecture") else "")
             for lib in libs if isinstance(lib, dict)}  # fmt: skip
    if not isinstance(info["blas"], list):
        found["BLAS"] = str(info["blas"])
    variables = info.get("blas_variables") if isinstance(info.get("blas_variables"), dict) else {}
    found |= {str(k): "unset" if v is None else str(v) for k, v in variables.items()}
    if isinstance(info.get("cpu_flags"), list):
        found["CPU SIMD flags"] = machine.simd_summary(info["cpu_flags"])
    return found


def shown(field_name: str, value: Any) -> str:
    if value is None:
        return "—"
    if field_name == "commit":
        commit, _, changes = str(value).partition("+")
        return commit[:12] + (f"+{changes}" if changes else "")
    return str(value)


def environment_lines(old: Results, new: Results) -> list[str]:
    """What differs between the two runs' environments, one line each; ["same environment"] when nothing does."""
    (om, op), (nm, np_) = environment(old), environment(new)
    lines = []
    for env in sorted(op.keys() | np_.keys(), key=lambda e: (e != "main", e)):
        where = f"{envs.ENVS.get(env, env)}/"
        if env not in np_ or env not in op:
            lines.append(f"- {where}: only {'OLD' if env in op else 'NEW'} has its versions (no worker ran there)")
            continue
        for pkg in sorted(op[env].keys() | np_[env].keys()):
            a, b = op[env].get(pkg), np_[env].get(pkg)
            if a != b:
                lines.append(f"- {pkg} in {where}: {a or 'not installed'} → {b or 'not installed'}")
    ob, nb = recorded(old), recorded(new)
    for env in sorted(ob.keys() & nb.keys(), key=lambda e: (e != "main", e)):
        a, b = blas(ob[env]), blas(nb[env])
        if a is None or b is None:  # a run from before the BLAS was recorded: nothing to compare
            continue
        for key in sorted(a.keys() | b.keys(), key=lambda k: (not k.startswith("BLAS"), k)):
            if a.get(key, "unset") != b.get(key, "unset"):
                lines.append(f"- {key} in {envs.ENVS.get(env, env)}/: {a.get(key, 'unset')} → {b.get(key, 'unset')}")
    native = [bool(r.data.get("native_blas")) for r in (old, new)]
    if native[0] != native[1]:
        lines.append(f"- --native-blas: {'on' if native[0] else 'off'} → {'on' if native[1] else 'off'}")
    for f in FIELDS:
        if shown(f, om[f]) != shown(f, nm[f]):
            lines.append(f"- {f}: {shown(f, om[f])} → {shown(f, nm[f])}")
    return lines or ["same environment"]


# The cases -------------------------------------------------------------------------------------------------------


def compare(old: Figures, new: Figures) -> Row:
    assert old.median is not None and new.median is not None
    if old.samples is None or new.samples is None:
        return Row(new.name, old.median, new.median, new.median / old.median, None, None, NO_SAMPLES)
    drift = max(old.drift, new.drift)
    if old.sigma is not None and new.sigma is not None:
        ratio, low, high, _ = stats.shift_p(old.samples, new.samples, old.sigma, new.sigma, drift)
    else:
        ratio, low, high = stats.ratio_ci(new.samples, old.samples, level=1 - ALPHA)
    said = stats.verdict(old.samples, new.samples, ALPHA, old_sigma=old.sigma, new_sigma=new.sigma, drift=drift)
    return Row(new.name, old.median, new.median, ratio, low, high, said)


def compare_counts(old: Figures, new: Figures) -> Row:
    """Counts are exact: a ratio beyond 1 ± COUNT_THRESHOLD is a change, and there is no interval."""
    assert old.count is not None and new.count is not None
    ratio = new.count / old.count
    verdict = stats.NOISE if abs(ratio - 1) <= COUNT_THRESHOLD else stats.SLOWER if ratio > 1 else stats.FASTER
    return Row(new.name, old.count, new.count, ratio, None, None, verdict)


def ratio_text(row: Row) -> str:
    if row.low is None or row.high is None:
        return f"{row.ratio:.3f}"
    return f"{row.ratio:.3f} [{row.low:.3f}, {row.high:.3f}]"


def power_lines(old: Results, new: Results) -> list[str]:
    """What the verdicts can see: for the typical case (the median spread and process count of each run),
    how often a true 5 % and 10 % slowdown would be called slower."""
    pairs = [(o, new.cases[k]) for k, o in old.cases.items() if k in new.cases]
    known = [(o, n) for o, n in pairs if o.sigma is not None and n.sigma is not None and o.samples and n.samples]
    if not known:
        return []
    so, sn = statistics.median(o.sigma for o, _ in known), statistics.median(n.sigma for _, n in known)
    no, nn = statistics.median(len(o.samples) for o, _ in known), statistics.median(len(n.samples) for _, n in known)
    drift = statistics.median(max(o.drift, n.drift) for o, n in known)
    odds = ", ".join(f"{100 * (r - 1):.0f} % with probability "
                     f"{stats.power(r, int(no), int(nn), so, sn, ALPHA, drift=drift):.0%}"
                     for r in (1.05 + 1e-9, 1.10, 1.20))  # fmt: skip
    return [f"Power: with {int(no)} and {int(nn)} processes, spreads σ of {100 * so:.1f} % and {100 * sn:.1f} % and "
            f"a drift between runs of {100 * drift:.1f} % (the median case), a true slowdown is called slower: "
            f"{odds}."]  # fmt: skip


DRIFTS = [i / 400 for i in range(41)]  # the drifts rerun_lines tries: 0 to 10 % in steps of 0.25 %


def drift_of(key: tuple[Any, ...]) -> float:
    """bench.core.noise_model.drift of the case a results key names: (kind, task, backend, dtype), (kind, task,
    n, backend, dtype) or (operator, task, operator, backend, dtype, n)."""
    kind, task, *rest = key
    if kind == cases.OPERATOR:
        return noise_model.drift(cases.Case(kind, task, rest[1], rest[2], rest[3], rest[0]))
    return noise_model.drift(cases.Case(kind, task, *rest[-2:], rest[0] if kind != "speed" else None))


def rerun_lines(old: Results, new: Results) -> list[str]:
    """Whether OLD's intervals, as this version makes them (bench.core.stats.rerun_interval of OLD's samples
    and spread, the case's drift and how far the machine moved within OLD), held NEW's medians as often
    as they claim; how many NEW medians are within 5 % of OLD's; and for each class of case, the least
    drift between runs at which they would have held this rerun: the figure behind bench.core.noise_model.DRIFT."""
    pairs = [(o, new.cases[k]) for k, o in old.cases.items() if k in new.cases]
    pairs = [(o, n) for o, n in pairs if o.samples and o.sigma is not None and o.median and n.median]
    if not pairs:
        return []

    run = noise_model.moved(old.data["cases"])  # how far the machine moved within OLD (0 in a run of one round)

    def held(mine: list[tuple[Figures, Figures]], drift: float | None = None) -> int:
        """How many of NEW's medians fall inside OLD's intervals: with each case's drift and OLD's movement,
        as bench.campaign.timing makes them, or with ``drift`` alone."""
        drifts = (math.hypot(drift_of(o.key), run) if drift is None else drift for o, _ in mine)
        intervals = (stats.rerun_interval(o.samples, o.sigma, drift=d) for (o, _), d in zip(mine, drifts, strict=True))
        return sum(lo <= n.median <= hi for (_, n), (_, lo, hi) in zip(mine, intervals, strict=True))

    level, close = stats.RERUN_LEVEL, sum(abs(n.median / o.median - 1) <= 0.05 for o, n in pairs)
    by: dict[float, list[tuple[Figures, Figures]]] = {}
    for o, n in pairs:
        by.setdefault(drift_of(o.key), []).append((o, n))
    least = []
    for d, mine in sorted(by.items()):
        t = next((t for t in DRIFTS if held(mine, t) >= level * len(mine)), None)
        where = "in cache" if d == noise_model.DRIFT else "streaming memory"
        least.append(f"{'over 10' if t is None else f'{100 * t:g}'} % for the {len(mine)} cases {where} "
                     f"(drift used: {100 * d:g} %)")  # fmt: skip
    inside = held(pairs)
    return [
        f"Reruns: {inside} of {len(pairs)} of NEW's medians inside OLD's {100 * level:g} % intervals "
        f"({100 * inside / len(pairs):.0f} %; the intervals as this version makes them from OLD's processes), "
        f"{close} within 5 % of OLD's median.",
        f"Least drift at which OLD's intervals would hold {100 * level:g} % of NEW's medians: {'; '.join(least)}.",
    ]


def kernel_medians(r: Results) -> dict[str, float]:
    """The median over a run's processes of each calibration kernel's time (``machine`` of each case), by
    the kernel's name in bench.worker.calibration (``cpu``, ``memory``)."""
    found: dict[str, list[float]] = {k: [] for k in noise_model.KERNELS}
    for raw in r.data["cases"]:  # each a dict: load checked it
        for m in raw.get("machine") or ():
            for k, seen in found.items():
                if isinstance(m, dict) and number(m.get(k)) and m[k] > 0:
                    seen.append(float(m[k]))
    return {k.removeprefix("calibration_").removesuffix("_s"): statistics.median(v) for k, v in found.items() if v}


def shift_lines(old: Results, new: Results) -> list[str]:
    """How far the whole run moved: the median NEW/OLD over the cases timed in both, its range over the
    backends, the calibration kernels' own ratio, and how each run's rounds of processes moved within it
    (bench.core.noise_model.by_round). A ratio every backend shares is the host between the runs, not the code
    (docs/trust.md); a run whose rounds climbed saw it coming."""
    ratios: dict[str, list[float]] = {}
    for k, o in old.cases.items():
        n = new.cases.get(k)
        if n is not None and o.samples and n.samples and o.median and n.median:
            ratios.setdefault(o.backend, []).append(n.median / o.median)
    if not ratios:
        return []
    whole = statistics.median(r for mine in ratios.values() for r in mine)
    each = [statistics.median(mine) for mine in ratios.values()]
    ko, kn = kernel_medians(old), kernel_medians(new)
    kernels = [f"{k} {kn[k] / ko[k]:.3f}" for k in ko if k in kn]
    rounds = [f"{which} {levels(found)}" for which, r in (("OLD", old), ("NEW", new))
              if (found := noise_model.by_round(r.data["cases"]))]  # fmt: skip
    return [f"Whole run: NEW/OLD {whole:.3f}, the median over {sum(map(len, ratios.values()))} cases "
            f"(per backend {min(each):.3f} to {max(each):.3f})"
            + (f"; the calibration kernels {', '.join(kernels)}" if kernels else "")
            + (f"; within each run, the median case by round of processes against its first: {'; '.join(rounds)}"
               if rounds else "")
            + ". A ratio every backend shares is the host moving between the runs: judge a change by runs "
            "taken side by side."]  # fmt: skip


def diff(old_path: str, new_path: str, fail_above: float | None = None) -> tuple[list[str], list[str], int]:
    """The report (stdout lines), the complaints (stderr lines) and the exit status."""
    old, new = load(old_path, "OLD"), load(new_path, "NEW")
    out = [f"OLD: {old.path}", f"NEW: {new.path}"]
    quick = [w for w, r in (("OLD", old), ("NEW", new)) if r.data.get("quick")]
    if quick:
        out.append(f"{' and '.join(quick)}: a --quick run, whose timings are not to be read")
    out += ["", "## Environment", "", *environment_lines(old, new), ""]
    renamed = [f"- {which}'s {then} measured a compiled loop, which is {now} now: its cases are compared as {now}'s; "
               f"{then} is now one compiled call a step, another measurement"
               for which, r in (("OLD", old), ("NEW", new)) for then, now in r.renamed.items()]  # fmt: skip
    if renamed:
        out += ["## Renamed", "", *renamed, ""]

    rows, counted, failed, apart = [], [], [], []
    for key, o in old.cases.items():
        n = new.cases.get(key)
        if n is None:
            continue
        if o.error is not None or n.error is not None:
            why = "; ".join(f"failed in {w}: {c.error}" for w, c in (("OLD", o), ("NEW", n)) if c.error is not None)
            failed.append(f"- {n.name}: {why}")
            continue
        if o.median is not None and n.median is not None:
            rows.append(compare(o, n))
        if o.count is not None and n.count is not None:
            counted.append(compare_counts(o, n))
        elif o.median is None or n.median is None:
            apart.append(f"- {n.name}: {'OLD' if o.median is None else 'NEW'} has counts, the other timings")
    only_old = [c.name for k, c in old.cases.items() if k not in new.cases]
    only_new = [c.name for k, c in new.cases.items() if k not in old.cases]

    level = f"{100 * (1 - ALPHA):g} %"
    header = ["case", "OLD median", "NEW median", f"NEW/OLD [{level} CI]", "verdict"]
    table = [[r.name, duration(r.old), duration(r.new), ratio_text(r), r.verdict] for r in rows]
    if rows or not counted:
        out += ["## Cases", "", *(aligned_table(header, table) if rows else ["no case is in both runs"]), ""]
    if counted:
        header = ["case", "OLD instructions/step", "NEW instructions/step", "NEW/OLD",
                  f"verdict (beyond ±{100 * COUNT_THRESHOLD:g} %)"]  # fmt: skip
        table = [[r.name, instructions(r.old), instructions(r.new), f"{r.ratio:.4f}", r.verdict] for r in counted]
        out += ["## Instruction counts", "", *aligned_table(header, table), ""]
    for title, names in (("Only in OLD", only_old), ("Only in NEW", only_new)):
        if names:
            out += [f"## {title}", "", *(f"- {name}" for name in names), ""]
    if failed:
        out += ["## Failed, not compared", "", *failed, ""]
    if apart:
        out += ["## No figure in both, not compared", "", *apart, ""]

    count = {v: sum(r.verdict == v for r in rows) for v in (stats.FASTER, stats.SLOWER, stats.NOISE, NO_SAMPLES)}
    line = (f"{count[stats.FASTER]} faster, {count[stats.SLOWER]} slower, {count[stats.NOISE]} within noise, "
            f"{count[NO_SAMPLES]} without samples")  # fmt: skip
    extra = [(len(failed), "failed"), (len(only_old), "only in OLD"), (len(only_new), "only in NEW")]
    if rows or not counted:  # a run of counts alone has no timings to tally
        out.append(line + "".join(f", {k} {what}" for k, what in extra if k))
    if count[NO_SAMPLES]:
        out.append("(without samples: a run from before samples_s; medians compared, no verdict)")
    if counted:
        tally = {v: sum(r.verdict == v for r in counted) for v in (stats.FASTER, stats.SLOWER, stats.NOISE)}
        out.append(f"instruction counts: {tally[stats.FASTER]} faster, {tally[stats.SLOWER]} slower, "
                   f"{tally[stats.NOISE]} within noise (±{100 * COUNT_THRESHOLD:g} %)"
                   + ("" if rows else "".join(f", {k} {what}" for k, what in extra if k)))  # fmt: skip
    out += power_lines(old, new) + rerun_lines(old, new) + shift_lines(old, new)

    if fail_above is None:
        return out, [], 0
    over = [r for r in rows + counted if r.verdict == stats.SLOWER and r.ratio > 1 + fail_above / 100]
    if not over:
        return out, [], 0
    err = [f"slower by {100 * (r.ratio - 1):.1f} %: {r.name} ({ratio_text(r)})" for r in over]
    err.append(f"error: {len(over)} case{'s' if len(over) != 1 else ''} slower by more than {fail_above:g} %")
    return out, err, 1
