"""The project's errors: each is reported as one line, with its exit status."""

from __future__ import annotations

import tasks


class BenchError(Exception):
    """An expected failure: reported as one line, with this exit status."""

    exit_status = 1


class UsageError(BenchError):
    exit_status = 2


class Unavailable(BenchError):
    pass


class Unanswered(BenchError):
    """A call a worker never answered: it ended (crashed, or ran past its time) before it, or while ``on`` it."""

    def __init__(self, message: str, on: bool = False) -> None:
        super().__init__(message)
        self.on = on


class Diverged(BenchError):
    def __init__(self, step: int) -> None:
        super().__init__(f"diverged at step {step}: the loss is not finite")
        self.step = step


class Failed(BenchError):
    """An unexpected exception in one call, kept as that call's outcome: its type and message."""

    @classmethod
    def of(cls, e: BaseException) -> Failed:
        """Its type and what it says in one line, with where a task's code raised it (``tasks.error_line``)."""
        return cls(tasks.error_line(e))


class Unsupported(BenchError):
    """What a backend cannot do (an operator, an optimiser), with the reason its class gives (``Backend.lacks``)."""


ERRORS: dict[str, type[BenchError]] = {
    c.__name__: c for c in (BenchError, UsageError, Unavailable, Failed, Unsupported)
}


class Missing(BenchError):
    """What counting needs is not installed: one line naming the package."""


class Interrupted(BenchError):
    exit_status = 130
