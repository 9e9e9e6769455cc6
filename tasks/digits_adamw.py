"""digits' softmax regression, trained by AdamW (Loshchilov & Hutter 2019) instead of plain SGD."""

from __future__ import annotations

import dataclasses

from tasks import AdamW, Task, digits


def make() -> Task:
    """Everything of digits but its name, its rate and its optimiser."""
    return dataclasses.replace(
        digits.make(),
        name="digits-adamw",
        source="digits (softmax regression on sklearn's 8×8 digits) with AdamW, rate 0.01, weight decay 0.01",
        lr=lambda epoch: 0.01,
        optimizer=AdamW(weight_decay=0.01),
    )
