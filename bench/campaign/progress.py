"""A progress bar over a campaign's calls."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


class Progress:
    """A tqdm bar over every call of the campaign, naming the process and the case in progress, with the
    elapsed time and an estimate of what is left; on a non-terminal (a CI log), a plain line per process.
    ``quiet`` is a context in which writing to the terminal is allowed (pytest captures otherwise); it
    writes to the process's own stderr, which ``bench run`` leaves alone when it quiets pytest's."""

    def __init__(self, total: int, quiet: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext):
        self.total, self.start, self.bar, self.lock = total, time.monotonic(), None, threading.RLock()
        self.unquiet = quiet
        if sys.__stderr__.isatty():
            from tqdm import tqdm

            with self.quiet():
                self.bar = tqdm(total=total, unit="case", file=sys.__stderr__, dynamic_ncols=True, leave=False)

    @contextlib.contextmanager
    def quiet(self) -> Any:
        with self.lock, self.unquiet():  # one thread at a time: workers can answer at once (Settings.jobs)
            yield

    def process(self, what: str, cases: int) -> None:
        with self.quiet():
            if self.bar is not None:
                self.bar.set_description_str(what, refresh=True)
            else:
                print(f"{what}: {cases} cases ({time.monotonic() - self.start:.0f} s)", file=sys.__stderr__, flush=True)

    def skip(self, calls: int) -> None:
        """Calls counted in the total that will not be made (a case measured as another: ``twins``)."""
        self.total -= calls
        if self.bar is not None:
            with self.quiet():
                self.bar.total = self.total
                self.bar.refresh()

    def answered(self, next_case: str) -> None:
        if self.bar is not None:
            with self.quiet():
                self.bar.set_postfix_str(next_case, refresh=False)
                self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            with self.quiet():
                self.bar.close()
