"""logistic's problem (two seeded Gaussian blobs, the stable loss) trained by Newton's method on the whole set:
each step solves ∇²L·d = ∇L with the framework's own Hessian and linear solve, and θ ← θ − d."""

from __future__ import annotations

import dataclasses

from tasks import Newton, Task, logistic


def make() -> Task:
    task = logistic.make()
    return dataclasses.replace(
        task,
        name="logistic-newton",
        source="logistic (seeded Gaussian blobs) by Newton's method, full batch: (∇²L) d = ∇L, θ ← θ − d",
        optimizer=Newton(),
        lr=lambda epoch: 1.0,
        epochs=8,
        batch_size=None,
        shuffle_seed=None,
        # the maximum likelihood estimate by scikit-learn 1.9.1's LogisticRegression(penalty=None,
        # solver="newton-cholesky", tol=1e-13; its gradient there is 1e-17), to 11 decimals;
        # scipy.optimize.minimize(method="BFGS") on the same loss ends within 1e-10 of it
        expected={"w": [1.87684262993, 1.77531886105], "b": 0.09003528770},
        expected_tol=1e-9,
    )
