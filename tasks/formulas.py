"""The formulas of framework optimisers that differ from the published definitions (``tasks.optimizers``).

Not the reference: each rule here is a framework's own update, transcribed from its source, so that the
suite can check the framework against what it says it computes, and ``bench compare`` can say why it
parts from the reference. A backend names its framework's formula (``Backend.optimizer_formula``); the
numpy backend runs any of them (``bench.campaign.remote.train(..., formula=...)``).

- ``keras`` (Keras 3.15, ``keras/src/optimizers/``): ``ops.cast(setting, dtype)`` of a Python float goes
  through float32 on TensorFlow, so momentum, weight decay and the β of the bias corrections are float32
  values even in a float64 model (``1 - beta_1`` and ε stay doubles); weight decay is decoupled in every optimiser,
  θ ← θ − θ·λ·γ before the update (``BaseOptimizer._apply_weight_decay``), so ``Adam(weight_decay=λ)``
  is AdamW, and SGD's decay does not enter the velocity; SGD's velocity is kept in units of the rate,
  v ← μv − γg, θ ← θ + v (Nesterov: θ ← θ + μv − γg), so after the rate changes it still carries the
  old rate; Adam folds the bias corrections into the rate and leaves ε outside them (Kingma & Ba's
  ε̂, the form before their section 2.1): α = γ·√(1 − β2^t)/(1 − β1^t), θ ← θ − α·m/(√v + ε).
- ``mxnet`` (MXNet 1.9.1, ``mxnet/optimizer/optimizer.py`` and ``src/operator/optimizer_op-inl.h``):
  every setting reaches the kernels as a C ``float`` (γ, μ, λ, β1, β2, ε rounded to float32); SGD's and
  NAG's momentum are kept in units of the rate, as Keras's; NAG's kernel writes the weight in place and
  then reads it again for the velocity's decay term λw (the new weight, where PyTorch's uses the old);
  Adam folds the bias corrections into the rate as Keras does (γ·√(1 − β2^t)/(1 − β1^t) computed in
  double, then rounded to float32), with L2 decay added to the gradient; MXNet 1.9.1 has no AdamW
  optimiser, only the ``adamw_update`` kernel (θ ← θ − η(γ'·m/(√v + ε) + λθ)), which ``backends.mxnet``
  drives with η = γ and γ' the same bias factor √(1 − β2^t)/(1 − β1^t).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tasks import optimizers
from tasks.optimizers import Optimizer

FORMULAS = ("reference", "keras", "mxnet")


def differences(formula: str, opt: Optimizer) -> list[str]:
    """How the formula's update of ``opt`` differs from the reference's by definition (none: it does not,
    and the framework is checked against the reference itself)."""
    if formula == "reference" or opt.plain or opt.name == "newton":  # Newton's step is no framework optimiser's
        return []
    sgd = opt.name == "sgd"
    found = []
    if formula == "mxnet":
        found.append("settings rounded to float32 (C float kernel parameters)")
    if formula == "keras":
        found.append("μ, λ and the β of the bias corrections rounded to float32 (keras.ops.cast of a Python float)")
    if sgd and opt.momentum > 0:
        found.append("velocity in units of the rate: v ← μv − γg, θ ← θ + v (the old rate persists after a change)")
    if formula == "keras" and opt.weight_decay > 0 and (not sgd or opt.momentum > 0) and not opt.decoupled:
        found.append("weight decay decoupled, θ ← θ − γλθ, not added to the gradient")
    if formula == "mxnet" and sgd and opt.nesterov and opt.weight_decay > 0:
        found.append("NAG's velocity takes λw from the weight it has just written (nag_mom_update, out=weight)")
    if not sgd:
        found.append("ε outside the bias correction: θ ← θ − γ√(1−β2ᵗ)/(1−β1ᵗ)·m/(√v + ε)")
    return found


def rule(formula: str, opt: Optimizer, params: Mapping[str, np.ndarray]) -> optimizers.Rule | KerasRule | MxnetRule:
    """The update of ``opt`` as the formula's framework computes it."""
    if not differences(formula, opt):
        return optimizers.reference(opt, params)
    return {"keras": KerasRule, "mxnet": MxnetRule}[formula](opt, params)


def cast(like: np.ndarray, value: float) -> np.floating:
    """``keras.ops.cast(value, like.dtype)`` of a Python float on TensorFlow: through float32."""
    return like.dtype.type(np.float32(value))


class KerasRule:
    """Keras 3's SGD, Adam and AdamW (``keras/src/optimizers/{sgd,adam,adamw,base_optimizer}.py``), with
    the learning rate held in the run's dtype (``keras.config.set_floatx``, as a float64 model sets it);
    ``cast`` is ``ops.cast`` of a Python float, through float32."""

    def __init__(self, opt: Optimizer, params: Mapping[str, np.ndarray]) -> None:
        self.opt = opt
        self.m = {k: np.zeros_like(v) for k, v in params.items()}  # SGD's momentums, Adam's momentums
        self.v = {k: np.zeros_like(v) for k, v in params.items()}  # Adam's velocities
        self.iterations = 0

    def update(self, p: dict[str, np.ndarray], g: Mapping[str, np.ndarray], lr: float) -> None:
        o = self.opt
        for k, theta in p.items():
            if o.weight_decay:  # _apply_weight_decay: variable.assign(variable - variable * wd * lr)
                theta -= theta * cast(theta, o.weight_decay) * lr
            if o.name == "sgd":
                self.sgd(k, theta, g[k], lr)
            else:
                self.adam(k, theta, g[k], lr)
        self.iterations += 1

    def sgd(self, k: str, theta: np.ndarray, g: np.ndarray, lr: float) -> None:
        mu = cast(theta, self.opt.momentum)
        m = self.m[k]
        m[...] = m * mu - g * lr  # m = m * momentum - gradient * learning_rate
        if self.opt.nesterov:
            theta += m * mu - g * lr
        else:
            theta += m

    def adam(self, k: str, theta: np.ndarray, g: np.ndarray, lr: float) -> None:
        o, dt = self.opt, theta.dtype.type
        local_step = dt(self.iterations + 1)
        beta_1_power, beta_2_power = cast(theta, o.b1) ** local_step, cast(theta, o.b2) ** local_step
        alpha = dt(lr) * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m, v = self.m[k], self.v[k]
        m += (g - m) * (1 - o.b1)
        v += (np.square(g) - v) * (1 - o.b2)
        theta -= (m * alpha) / (np.sqrt(v) + o.eps)


def kernel_float(dtype: type[np.floating], value: float) -> np.floating:
    """A setting as an MXNet kernel takes it: a C float, then the kernel's DType."""
    return dtype(np.float32(value))


class MxnetRule:
    """MXNet 1.9.1's ``mx.optimizer.SGD`` (``multi_sgd_mom_update``), ``NAG`` (``nag_mom_update``) and
    ``Adam`` (``adam_update``), and the AdamW of ``backends.mxnet`` (``contrib.adamw_update``); every setting
    a float32, as the kernels take them."""

    def __init__(self, opt: Optimizer, params: Mapping[str, np.ndarray]) -> None:
        self.opt = opt
        self.mom = {k: np.zeros_like(v) for k, v in params.items()}  # SGD's momentum, Adam's mean
        self.var = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def update(self, p: dict[str, np.ndarray], g: Mapping[str, np.ndarray], lr: float) -> None:
        self.t += 1
        for k, w in p.items():
            f = functools.partial(kernel_float, w.dtype.type)
            if self.opt.name == "sgd":
                self.sgd(k, w, g[k], f(lr), f)
            else:
                self.adam(k, w, g[k], lr, f)

    def sgd(self, k: str, w: np.ndarray, g: np.ndarray, lr: np.floating, f: Callable[[float], Any]) -> None:
        mu, wd, mom = f(self.opt.momentum), f(self.opt.weight_decay), self.mom[k]
        if self.opt.nesterov:  # NAGMomKernel, out=weight: the last line reads the weight just written
            mom *= mu
            w[...] = w - mom + (mu + 1) * (mom - lr * (g + wd * w))
            mom -= lr * (g + wd * w)
        else:  # MultiSGDKernel with momentum
            mom[...] = mu * mom - lr * wd * w - lr * g
            w += mom

    def adam(self, k: str, w: np.ndarray, g: np.ndarray, lr: float, f: Callable[[float], Any]) -> None:
        o, t, mean, var = self.opt, self.t, self.mom[k], self.var[k]
        b1, b2, eps, wd = f(o.b1), f(o.b2), f(o.eps), f(o.weight_decay)
        factor = np.sqrt(1.0 - o.b2**t) / (1.0 - o.b1**t)  # in Python doubles, the settings unrounded
        if o.decoupled:  # AdamWKernel: w - eta * (lr * mean / (sqrt(var) + epsilon) + wd * w)
            mean[...] = b1 * mean + (1 - b1) * g
            var[...] = b2 * var + (1 - b2) * g * g
            w[...] = w - f(lr) * (f(factor) * mean / (np.sqrt(var) + eps) + wd * w)
        else:  # AdamUpdateKernel, lr *= sqrt(coef2) / coef1 in Python first
            grad = g * 1.0 + w * wd
            mean[...] = b1 * mean + (1 - b1) * grad
            var[...] = b2 * var + (1 - b2) * grad * grad
            w[...] = w - f(lr * factor) * mean / (np.sqrt(var) + eps)
