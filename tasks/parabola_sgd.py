"""The parabola with one sample a step, in data order: 80,000 tiny steps, all overhead."""

from __future__ import annotations

from tasks import Task, parabola


def make() -> Task:
    return parabola.make(name="parabola-sgd", batch_size=1, shuffle_seed=None)
