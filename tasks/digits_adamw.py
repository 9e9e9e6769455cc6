"""digits' softmax regression, trained by AdamW (Loshchilov & Hutter 2019) instead of plain SGD."""

from __future__ import annotations

from tasks import AdamW, Task, digits


def make() -> Task:
    base = digits.make()
    return Task(
        name="digits-adamw",
        source="digits (softmax regression on sklearn's 8×8 digits) with AdamW, rate 0.01, weight decay 0.01",
        x=base.x,
        y=base.y,
        init=base.init,
        model=digits.model,
        loss=digits.loss,
        loss_and_grad=digits.loss_and_grad,
        lr=lambda epoch: 0.01,
        epochs=base.epochs,
        batch_size=base.batch_size,
        shuffle_seed=base.shuffle_seed,
        metrics=digits.metrics,
        metric_floors=base.metric_floors,
        optimizer=AdamW(weight_decay=0.01),
    )
