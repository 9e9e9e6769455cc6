"""Optimisers, defined once: what a task trains with, and the reference update of each, in numpy.

A task names its optimiser (``Task.optimizer``); its learning rate is the task's per-epoch schedule
(``Task.lr``), so an optimiser holds everything else. Each backend maps the definition onto its
framework's own optimiser (``torch.optim``, optax, Keras, ``mx.optimizer``); the numpy reference backend
runs the updates below, each written from its published definition, line by line:

- ``SGD``: the pseudocode of PyTorch's documentation of ``torch.optim.SGD``
  (https://pytorch.org/docs/stable/generated/torch.optim.SGD.html), with dampening τ = 0;
- ``Adam``: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 1, with
  ``weight_decay`` as L2 regularisation added to the gradient (Loshchilov & Hutter 2019, Algorithm 2,
  "Adam with L2 regularization", line 6; also PyTorch's ``torch.optim.Adam``);
- ``AdamW``: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2
  with the decoupled term (line 12).

Notation. γ (``lr``) is the task's rate of the step's epoch. Loshchilov & Hutter write the step as
η_t·α with α a base rate and η_t the schedule's multiplier, and decay by η_t·λ; here one rate
γ = η_t·α, and ``weight_decay`` is their λ/α, so that the decay of a step is γ·weight_decay·θ: the
convention of PyTorch, optax and Keras, whose argument is called ``weight_decay`` in all three.

Frameworks whose optimisers follow another formula (Keras, MXNet) are in ``tasks.formulas``.
Importing this module imports no framework.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent, with (heavy-ball or Nesterov) momentum and L2 weight decay.
    ``SGD()`` is plain SGD, θ ← θ − γ·g: every task's default."""

    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    name: ClassVar[str] = "sgd"
    decoupled: ClassVar[bool] = False  # the weight decay is added to the gradient

    @property
    def plain(self) -> bool:
        return self.momentum == 0 and self.weight_decay == 0


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015), ``weight_decay`` as L2 regularisation added to the gradient."""

    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    name: ClassVar[str] = "adam"
    plain: ClassVar[bool] = False
    decoupled: ClassVar[bool] = False  # the weight decay: added to the gradient (False) or to the step (True)


@dataclass(frozen=True)
class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019); torch's default decay of 0.01."""

    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.01
    name: ClassVar[str] = "adamw"
    plain: ClassVar[bool] = False
    decoupled: ClassVar[bool] = True


@dataclass(frozen=True)
class Newton:
    """Newton's method, damped: the step d solves (∇²L + λI)·d = ∇L on the step's batch, and θ ← θ − γ·d (γ = 1,
    Newton's own step). The damping λ ≥ 0 keeps the system solvable where ∇²L is singular. A backend computes
    ∇²L with its framework's Hessian and solves with its framework's linear solve (``tasks.operators``)."""

    damping: float = 0.0
    name: ClassVar[str] = "newton"
    plain: ClassVar[bool] = False
    decoupled: ClassVar[bool] = False
    weight_decay: ClassVar[float] = 0.0  # none: a task that wants one writes it into its loss


Optimizer = SGD | Adam | AdamW | Newton
KINDS: dict[str, type[Optimizer]] = {k.name: k for k in (SGD, Adam, AdamW, Newton)}
Spec = Optimizer | str | Mapping[str, Any]  # an optimiser, its name, or {"name": ..., setting: value, ...}


class OptimizerError(ValueError):
    """A task's optimiser that cannot be trained with: the message is one line saying why."""


def settings(opt: Optimizer) -> dict[str, Any]:
    return {f.name: getattr(opt, f.name) for f in dataclasses.fields(opt)}


def to_json(spec: Spec) -> Any:
    """What ``parse`` reads back: {"name": ..., every setting}, or the spec as given where it does not parse."""
    try:
        opt = parse(spec)
    except OptimizerError:
        return spec if isinstance(spec, str) else dict(spec)  # type: ignore[arg-type]
    return {"name": opt.name, **settings(opt)}


def parse(spec: Spec) -> Optimizer:
    """The optimiser a spec names; ``OptimizerError`` (one line) for an unknown name or setting."""
    if isinstance(spec, SGD | Adam | AdamW | Newton):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise OptimizerError(
            f"an optimiser is SGD(...), Adam(...), AdamW(...), Newton(...), a name or a mapping, not {spec!r}"
        )
    given = dict(spec)
    name = given.pop("name", None)
    if name not in KINDS:
        raise OptimizerError(f"unknown optimiser {name!r}; choose from: {', '.join(KINDS)}")
    kind = KINDS[name]
    known = [f.name for f in dataclasses.fields(kind)]
    unknown = [k for k in given if k not in known]
    if unknown:
        raise OptimizerError(f"{name} has no setting {', '.join(map(repr, unknown))}; its settings: {', '.join(known)}")
    return kind(**given)


def problems(spec: Spec) -> list[str]:
    """Every reason the optimiser cannot be trained with, one line each (none: it can)."""
    try:
        opt = parse(spec)
    except OptimizerError as e:
        return [str(e)]
    found = []
    for k, v in settings(opt).items():
        if k == "nesterov":
            if not isinstance(v, bool):
                found.append(f"{opt.name} nesterov is {v!r}, not True or False")
        elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            found.append(f"{opt.name} {k} is {v!r}, not a finite number")
    if found:
        return found
    ranges = {  # setting -> (test, what it must be)
        "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "weight_decay": (lambda v: v >= 0, "≥ 0 (a negative rate grows the weights)"),
        "b1": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "b2": (lambda v: 0 < v < 1, "in (0, 1)"),
        "eps": (lambda v: v > 0, "> 0"),
        "damping": (lambda v: v >= 0, "≥ 0"),
    }
    for k, v in settings(opt).items():
        if k in ranges and not ranges[k][0](v):
            found.append(f"{opt.name} {k} is {v:g}, not {ranges[k][1]}")
    if opt.name == "sgd" and opt.nesterov and opt.momentum == 0:
        found.append("sgd nesterov needs a momentum > 0")
    return found


def describe(opt: Optimizer) -> str:
    """``adam (b1 0.9, b2 0.999, eps 1e-08, weight_decay 0)``; plain SGD is ``sgd``."""
    if opt.plain and not getattr(opt, "nesterov", False):
        return "sgd"
    return f"{opt.name} ({', '.join(f'{k} {v:g}' for k, v in settings(opt).items() if not isinstance(v, bool))}" + (
        ", nesterov)" if getattr(opt, "nesterov", False) else ")"
    )


# -- the reference updates, in numpy ------------------------------------------------------------------
# Each ``update(p, g, lr)`` takes the parameters (a dict of arrays, updated in place), their gradients
# at p and the step's rate γ. Settings stay Python floats: numpy then computes in the parameters' dtype
# (float32 stays float32) under NEP 50 and under numpy 1's value-based casting alike.


class ReferenceSGD:
    """PyTorch's documented algorithm for ``torch.optim.SGD`` (dampening τ = 0, maximize off):

    g_t ← ∇f(θ_{t−1})
    if λ ≠ 0:  g_t ← g_t + λ θ_{t−1}
    if μ ≠ 0:
        if t > 1:  b_t ← μ b_{t−1} + (1 − τ) g_t
        else:      b_t ← g_t
        if nesterov:  g_t ← g_t + μ b_t
        else:         g_t ← b_t
    θ_t ← θ_{t−1} − γ g_t
    """

    def __init__(self, opt: SGD, params: Mapping[str, np.ndarray]) -> None:
        self.mu, self.nesterov, self.wd = opt.momentum, opt.nesterov, opt.weight_decay
        self.b: dict[str, np.ndarray] = {}  # b_{t−1}; none before the first step

    def update(self, p: dict[str, np.ndarray], g: Mapping[str, np.ndarray], lr: float) -> None:
        for k, theta in p.items():
            g_t = g[k]
            if self.wd != 0:
                g_t = g_t + self.wd * theta
            if self.mu != 0:
                if k in self.b:
                    b_t = self.mu * self.b[k] + g_t
                else:
                    b_t = g_t
                self.b[k] = b_t
                if self.nesterov:
                    g_t = g_t + self.mu * b_t
                else:
                    g_t = b_t
            theta -= lr * g_t


class ReferenceAdam:
    """Kingma & Ba (2015), Algorithm 1; L2 weight decay as in Loshchilov & Hutter (2019), Algorithm 2
    line 6 (``decoupled`` False), or AdamW's decoupled decay, their line 12 (``decoupled`` True):

        g_t ← ∇f(θ_{t−1})  (+ λ θ_{t−1}, Adam's L2 regularisation)
        m_t ← β1 m_{t−1} + (1 − β1) g_t
        v_t ← β2 v_{t−1} + (1 − β2) g_t²
        m̂_t ← m_t / (1 − β1^t)
        v̂_t ← v_t / (1 − β2^t)
        θ_t ← θ_{t−1} − γ m̂_t / (√v̂_t + ε)               (Adam)
        θ_t ← θ_{t−1} − γ (m̂_t / (√v̂_t + ε) + λ θ_{t−1})  (AdamW)

    with m_0 = v_0 = 0 and t counting steps from 1.
    """

    def __init__(self, opt: Adam | AdamW, params: Mapping[str, np.ndarray]) -> None:
        self.b1, self.b2, self.eps, self.wd = opt.b1, opt.b2, opt.eps, opt.weight_decay
        self.decoupled = opt.decoupled
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def update(self, p: dict[str, np.ndarray], g: Mapping[str, np.ndarray], lr: float) -> None:
        self.t += 1
        t = self.t
        for k, theta in p.items():
            g_t = g[k]
            if self.wd != 0 and not self.decoupled:
                g_t = g_t + self.wd * theta
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g_t
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g_t * g_t
            m_hat = self.m[k] / (1 - self.b1**t)
            v_hat = self.v[k] / (1 - self.b2**t)
            if self.decoupled:
                theta -= lr * (m_hat / (np.sqrt(v_hat) + self.eps) + self.wd * theta)
            else:
                theta -= lr * m_hat / (np.sqrt(v_hat) + self.eps)


class ReferenceNewton:
    """Damped Newton: d ← (H + λI)⁻¹ g by LAPACK's solve (numpy.linalg.solve: LU with partial pivoting),
    θ_t ← θ_{t−1} − γ d, over the parameters flattened in their order (``tasks.operators.flatten``). ``update``
    takes H, the Hessian of the step's batch loss at θ_{t−1} (the task's own, ``Task.hessian``)."""

    def __init__(self, opt: Newton, params: Mapping[str, np.ndarray]) -> None:
        self.damping = opt.damping

    def update(self, p: dict[str, np.ndarray], g: Mapping[str, np.ndarray], lr: float, hessian: np.ndarray) -> None:
        flat = np.concatenate([np.ravel(g[k]) for k in p])
        dtype = flat.dtype
        system = hessian + self.damping * np.eye(len(flat), dtype=dtype) if self.damping else hessian
        d = np.linalg.solve(system.astype(dtype, copy=False), flat)
        at = 0
        for theta in p.values():
            theta -= lr * d[at : at + theta.size].reshape(theta.shape)
            at += theta.size


Rule = ReferenceSGD | ReferenceAdam | ReferenceNewton


def reference(opt: Optimizer, params: Mapping[str, np.ndarray]) -> Rule:
    """The reference update of ``opt`` for parameters shaped as ``params``."""
    if opt.name == "newton":
        return ReferenceNewton(opt, params)
    return ReferenceSGD(opt, params) if opt.name == "sgd" else ReferenceAdam(opt, params)
