"""Numbers as a reader writes them (three significant figures, ``1.7e-15``, ``10⁶``), Markdown tables, and files
written whole."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SCALES = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


def decimals(x: float) -> int:
    """The decimals that leave three significant figures of ``x``."""
    return 2 - math.floor(math.log10(abs(x))) if x and math.isfinite(x) else 0


def number(x: float) -> str:
    """Three significant figures, written out with thousands separated: ``845``, ``1,770``, ``16.3``,
    ``0.0123`` (never ``1.77e+03``)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{round(x, decimals(x)):,.{max(0, decimals(round(x, decimals(x))))}f}"


def scaled(x: float, scales: tuple[tuple[str, float], ...]) -> tuple[str, float]:
    """The unit of ``x`` (rounded to three figures first: 999.7 ns is 1.00 µs) and its scale."""
    x = round(x, decimals(x))
    return next(((u, k) for u, k in scales if x >= k), scales[-1])


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if abs(seconds) < 5e-13:  # under a thousandth of a nanosecond: nothing (a fitted overhead that is rounding error)
        return "0 ns"
    unit, scale = scaled(seconds, SCALES)
    return f"{number(seconds / scale)} {unit}"


def with_interval(r: dict[str, Any]) -> str:
    """``16.3 µs (15.9–16.8)``: a case's median per step and its rerun interval, in the median's unit; † where a
    process stayed noisy."""
    unit, scale = scaled(r["median_s"], SCALES)
    mark = " †" if any(r.get("noisy", ())) else ""
    low, high = number(r["ci_low_s"] / scale), number(r["ci_high_s"] / scale)
    return f"{number(r['median_s'] / scale)} {unit} ({low}–{high}){mark}"


def instructions(value: float | None) -> str:
    """A count: ``71.8 k``, ``1.07 M``, ``2.34 G``, three significant digits."""
    if value is None or not math.isfinite(value):
        return "—"
    unit, scale = scaled(value, (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0)))
    return f"{number(value / scale)} {unit}".rstrip()


def general(x: float, digits: int = 6) -> str:
    """``digits`` significant figures, an exponent only where ``g`` needs one, unpadded: ``0.0123``,
    ``1.23457e-5`` (not ``1.23457e-05``), ``2.5e8``."""
    text = f"{x:.{digits}g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def scientific(x: float, digits: int = 2) -> str:
    """A figure too small (or large) for :func:`number`, as a reader writes it: ``1.7e-15``, ``2.0e-9``, ``0``
    (not ``2.0e-09``, nor ``0.0e+00``, nor ``0.0000000000000017``)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return mantissa if int(exponent) == 0 else f"{mantissa}e{int(exponent)}"


SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def power(n: int) -> str:
    """A sweep size: ``10²`` for a power of ten, else ``12,345``."""
    digits = str(n)
    if n >= 10 and digits.strip("0") == "1":
        return f"10{str(len(digits) - 1).translate(SUPERSCRIPT)}"
    return f"{n:,}"


def size(n: int) -> str:
    """``N = 10²``: a column's heading."""
    return f"N = {power(n)}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def write_text(path: Path, text: str) -> None:
    """Write aside, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def parameter(values: Any) -> str:
    """A parameter (nested lists): a number, a short vector in full, anything larger by its shape."""
    a = np.asarray(values, dtype="float64")
    if a.size == 1:
        return f"{a.item():.9g}"
    if a.ndim == 1 and a.size <= 4:
        return "[" + ", ".join(f"{v:.9g}" for v in a) + "]"
    return f"<{'×'.join(map(str, a.shape))} array, largest |value| {np.max(np.abs(a)):.3g}>"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain columns, the header underlined: what ``bench compare`` prints."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)


def aligned_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table padded into columns: readable as plain text and as Markdown (``bench diff``)."""
    body = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in body]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines
