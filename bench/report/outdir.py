"""The results folder: the tool replaces and deletes there only what it wrote itself.

A results folder carries a mark, ``.autodiff-bench``, that lists the files the tool wrote into it. A
run stages its files in a hidden folder inside it, then moves each into place and deletes only the
files that the earlier mark lists and this run did not write again; anything else (a user's files, a
nested ``gpu/`` results folder) is never touched. An existing folder that holds anything but has no
mark is refused before any work, as are a file, ``/``, and the checkout or any folder containing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import shutil
import tempfile
from pathlib import Path

from bench.core.errors import BenchError, UsageError
from bench.host import procs
from bench.host.envs import ROOT

MARK = ".autodiff-bench"
STAGING = ".autodiff-bench-staging-"
# what a run may write, as bench/report/timings.py and bench/report/plots.py name it: a file of these names that
# the mark does not list is a user's, and the folder is refused before any work rather than at the end
OWN = ("README.md", "results.json", "results.csv", "scaling.csv", "widths.csv", "counts.csv", "break_even.csv",
       "operators.csv", "plots/fit_*.png", "plots/loss_*.png", "plots/agreement_*.png", "plots/summary_*.png",
       "plots/scaling.png", "plots/widths.png", "plots/operators_*.png")  # fmt: skip


def read_mark(out: Path) -> list[str] | None:
    """The files the mark lists, or None when there is no mark."""
    try:
        mark = json.loads((out / MARK).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UsageError(f"--out {out}: its {MARK} mark cannot be read ({e})") from None
    files = mark.get("files") if isinstance(mark, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) and inside(f) for f in files):
        raise UsageError(f"--out {out}: its {MARK} mark is not one this tool wrote")
    return files


def inside(name: str) -> bool:
    """A plain relative path that stays in the folder (a mark never sends a deletion elsewhere)."""
    path = Path(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def write_mark(out: Path, files: list[str]) -> None:
    tmp = out / f"{MARK}.tmp"
    tmp.write_text(json.dumps({"written_by": "autodiff-bench", "files": sorted(files)}, indent=1) + "\n")
    os.replace(tmp, out / MARK)


def check(out: Path) -> Path:
    """``out`` made absolute, or a UsageError saying why the tool may not write there (one that cannot be
    read too)."""
    try:
        return checked(out)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot read it ({e.strerror or e})") from None


def checked(out: Path) -> Path:
    out = Path(out).expanduser().resolve()
    if out == Path(out.anchor):
        raise UsageError(f"--out {out}: refusing to write results into the filesystem root")
    if out == ROOT or out in ROOT.parents:
        raise UsageError(f"--out {out}: refusing the checkout itself or a folder that contains it")
    if ROOT / ".git" in (out, *out.parents):
        raise UsageError(f"--out {out}: refusing a folder inside .git/")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if not out.is_dir():
        return out
    listed = read_mark(out)
    if listed is None:
        if any(out.iterdir()):
            raise UsageError(f"--out {out}: a folder that autodiff-bench did not write (no {MARK} mark) and not empty")
        return out
    present = [p for folder in (out, out / "plots") if folder.is_dir() for p in folder.iterdir()]
    for path in present:
        name = path.relative_to(out).as_posix()
        if name not in listed and any(fnmatch.fnmatchcase(name, own) for own in OWN):
            raise UsageError(f"--out {out}: its {name} was not written by autodiff-bench; move it or choose another")
    if (out / "plots").exists() and not (out / "plots").is_dir():
        raise UsageError(f"--out {out}: its plots is not a folder; move it or choose another")
    return out


class ResultsFolder:
    """``with ResultsFolder(out) as f``: a locked folder with an empty ``f.staging`` inside; ``f.commit``
    moves staged files into place. On leaving, the staging is gone and, unless something was committed,
    the folder is as it was (a folder this run created is removed again)."""

    def __init__(self, out: Path) -> None:
        self.out = check(out)
        self.committed = False

    def __enter__(self) -> ResultsFolder:
        self.created = not self.out.exists()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.lock = os.open(self.out, os.O_RDONLY)
        except OSError as e:
            raise UsageError(f"--out {self.out}: cannot write there ({e.strerror})") from None
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock)
            raise UsageError(f"--out {self.out}: another `bench run` is writing there") from None
        try:
            self.marked = read_mark(self.out) is not None
            if not self.marked:
                write_mark(self.out, [])
            for stale in self.out.glob(STAGING + "*"):  # left by a killed run: a live one would hold the lock
                shutil.rmtree(stale)
            self.staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=self.out))
            if (self.out / "plots").is_dir():  # where the plots go: written in too, before any work
                try:
                    os.rmdir(tempfile.mkdtemp(prefix=STAGING, dir=self.out / "plots"))
                except OSError as e:
                    raise UsageError(f"--out {self.out}: cannot write in its plots/ ({e.strerror or e})") from None
        except OSError as e:  # a folder it may not write in: before any work, and left as it was
            self.__exit__()
            raise UsageError(f"--out {self.out}: cannot write there ({e.strerror or e})") from None
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "staging"):
            shutil.rmtree(self.staging, ignore_errors=True)
        if not self.committed and not getattr(self, "marked", True):
            with contextlib.suppress(OSError):
                (self.out / MARK).unlink(missing_ok=True)
            if self.created:
                with contextlib.suppress(OSError):
                    self.out.rmdir()
        os.close(self.lock)

    def commit(self, staged: Path) -> None:
        """Move every file under ``staged`` into the folder; delete what the old mark lists and this run
        did not write. The mark lists a superset of the tool's files on disk at every moment. Where a file
        cannot be put in place, every one put in place so far is taken back and the old ones restored: the
        folder is as it was, and a BenchError says which file could not be written."""
        new = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
        old = read_mark(self.out) or []
        clash = next((f for f in new if f not in old and (self.out / f).exists()), None)
        if clash:
            raise BenchError(f"results not written: {self.out / clash} is not autodiff-bench's; move it and rerun")
        with procs.signals_deferred():
            self.replace(staged, new, old)
            kept = []  # what the old mark lists and cannot be deleted: still the tool's, so still listed
            for f in set(old) - set(new):
                try:
                    (self.out / f).unlink()
                except (FileNotFoundError, IsADirectoryError):  # a folder there is not ours
                    pass
                except OSError:
                    kept.append(f)
            for folder in sorted({Path(f).parent for f in old} - {Path(".")}, key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):  # only if empty: a user's file in it keeps it
                    (self.out / folder).rmdir()
            with contextlib.suppress(OSError):  # else the mark lists the old files too: a superset still
                write_mark(self.out, [*new, *kept])
            self.committed = True

    def replace(self, staged: Path, new: list[str], old: list[str]) -> None:
        """Each staged file in place, the file it replaces kept aside until all are; on a failure, the
        folder put back as it was (``commit``)."""
        placed: list[str] = []  # in place, in order
        aside: list[str] = []  # earlier files moved aside into ``backup``
        made: list[Path] = []  # folders made for them
        try:
            backup = Path(tempfile.mkdtemp(prefix=STAGING, dir=self.out))  # a killed run's is cleared by the next
        except OSError as e:
            raise BenchError(f"results not written: {self.out}: {e.strerror or e}; it is as it was") from None
        try:
            write_mark(self.out, [*{*old, *new}])
            for f in new:
                target = self.out / f
                if not target.parent.is_dir():
                    target.parent.mkdir(parents=True)
                    made.append(target.parent)
                if target.exists():
                    (backup / f).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(target, backup / f)
                    aside.append(f)
                os.replace(staged / f, target)
                placed.append(f)
        except OSError as e:
            for f in reversed(placed):
                with contextlib.suppress(OSError):
                    (self.out / f).unlink()
            for f in reversed(aside):
                with contextlib.suppress(OSError):
                    os.replace(backup / f, self.out / f)
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            with contextlib.suppress(OSError):
                write_mark(self.out, old)
            where = e.filename or self.out
            raise BenchError(f"results not written: {where}: {e.strerror or e}; {self.out} is as it was") from None
        finally:
            shutil.rmtree(backup, ignore_errors=True)
