"""The optimiser definitions (tasks.optimizers): the reference updates against hand-computed steps and
closed forms, the settings ``bench check`` refuses, and what the frameworks' formulas (tasks.formulas)
say about them. Every optimiser on every backend is in tests/equivalence/test_equivalence.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tasks
from bench.core import taskdata
from bench.core.errors import UsageError
from bench.host import envs
from bench.worker import serve
from tasks import formulas, optimizers
from tasks.optimizers import SGD, Adam, AdamW, Newton


def steps(opt: optimizers.Optimizer, w0: float, grads: list[float], lr: float) -> list[float]:
    """The reference's parameter after each step, for a one-element parameter and given gradients."""
    p = {"w": np.array([w0])}
    rule = optimizers.reference(opt, p)
    out = []
    for g in grads:
        rule.update(p, {"w": np.array([g])}, lr)
        out.append(float(p["w"][0]))
    return out


def test_adam_first_two_steps_by_hand():
    """Kingma & Ba's Algorithm 1 worked by hand: g = 0.5 then -0.25, β1 = 0.9, β2 = 0.999, ε = 1e-8."""
    w1, w2 = steps(Adam(), 1.0, [0.5, -0.25], lr=0.1)
    # m1 = 0.05, v1 = 0.00025: m̂1 = 0.5, v̂1 = 0.25, so the first step is lr·0.5/(0.5 + ε), about lr
    assert w1 == pytest.approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)
    # m2 = 0.045 - 0.025 = 0.02, v2 = 0.00024975 + 0.0000625 = 0.00031225; 1 - β1² = 0.19, 1 - β2² = 0.001999
    m_hat, v_hat = 0.02 / 0.19, 0.00031225 / 0.001999
    assert w2 == pytest.approx(w1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8), rel=1e-14)
    assert w2 < w1  # the gradient changed sign, but m̂2 = 2/19 has not: the step still goes the first way


def test_adam_l2_and_adamw_decay_differently():
    """Adam's L2 decay enters the moments (and is normalised away on the first step); AdamW's does not."""
    (l2,) = steps(Adam(weight_decay=0.1), 2.0, [0.5], lr=0.1)
    (w,) = steps(AdamW(weight_decay=0.1), 2.0, [0.5], lr=0.1)
    g = 0.5 + 0.1 * 2.0  # L2: the decay is part of the gradient, and the first step is lr·g/(|g| + ε)
    assert l2 == pytest.approx(2.0 - 0.1 * g / (g + 1e-8), rel=1e-15)
    assert w == pytest.approx(2.0 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.1 * 2.0), rel=1e-15)  # Loshchilov & Hutter


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_in_closed_form(nesterov):
    """A constant gradient g: PyTorch's buffer is b_t = g(1 - μ^t)/(1 - μ), and each step moves by γ·b_t
    (Nesterov: γ(g + μ·b_t))."""
    mu, g, lr = 0.9, 0.3, 0.05
    got = steps(SGD(momentum=mu, nesterov=nesterov), 1.0, [g] * 20, lr)
    w = 1.0
    for t in range(1, 21):
        b = g * (1 - mu**t) / (1 - mu)
        w -= lr * (g + mu * b if nesterov else b)
        assert got[t - 1] == pytest.approx(w, rel=1e-13), t


def test_sgd_weight_decay_is_the_gradient_of_l2():
    (w,) = steps(SGD(weight_decay=0.5), 2.0, [0.25], lr=0.1)
    assert w == pytest.approx(2.0 - 0.1 * (0.25 + 0.5 * 2.0), rel=1e-15)


def test_every_task_trains_the_default_unless_it_names_another():
    for name in tasks.TASKS:
        t = tasks.get(name)
        assert optimizers.parse(t.optimizer) == {"mlp-momentum": SGD(0.9, False, 1e-4),
                                                 "digits-adamw": AdamW(weight_decay=0.01),
                                                 "logistic-newton": Newton(),
                                                 "poisson-newton": Newton()}.get(name, SGD())  # fmt: skip
    assert SGD().plain and not SGD(momentum=0.9).plain and not Adam().plain


@pytest.mark.parametrize(
    "spec, problem",
    [
        ({"name": "adamx"}, "unknown optimiser 'adamx'; choose from: sgd, adam, adamw, newton"),
        ({"name": "adam", "beta2": 0.99}, "adam has no setting 'beta2'; its settings: b1, b2, eps, weight_decay"),
        (Adam(b2=1.0), "adam b2 is 1, not in (0, 1)"),
        (Adam(b2=0.0), "adam b2 is 0, not in (0, 1)"),
        (AdamW(weight_decay=-0.01), "adamw weight_decay is -0.01, not ≥ 0 (a negative rate grows the weights)"),
        (SGD(momentum=-0.5), "sgd momentum is -0.5, not in [0, 1)"),
        (SGD(nesterov=True), "sgd nesterov needs a momentum > 0"),
        (Adam(eps=float("nan")), "adam eps is nan, not a finite number"),
    ],
)
def test_settings_that_cannot_train_are_named_in_a_line(spec, problem):
    assert optimizers.problems(spec) == [problem]


def test_an_optimizer_by_name_or_mapping_and_back():
    assert optimizers.parse("adam") == Adam()
    assert optimizers.parse({"name": "sgd", "momentum": 0.5}) == SGD(momentum=0.5)
    for opt in (SGD(0.9, True, 1e-3), Adam(0.8, 0.99, 1e-6, 0.1), AdamW()):
        assert optimizers.parse(optimizers.to_json(opt)) == opt
    assert tasks.get("linear").optimizer == SGD()


def test_a_task_with_an_unusable_optimizer_is_refused_before_training(tmp_path, monkeypatch):
    """A bad setting travels as given (bench check reports it) and training refuses it in one line."""
    import dataclasses

    made = taskdata.made
    bad = dataclasses.replace(tasks.get("linear"), optimizer={"name": "adam", "b2": 2.0})
    assert optimizers.problems(bad.optimizer) == ["adam b2 is 2, not in (0, 1)"]
    monkeypatch.setattr(taskdata, "made", lambda name, n=None: bad if name == "linear" else made(name, n))
    out = serve.call_here("train", {"task": "linear", "backend": "numpy"})
    assert isinstance(out, UsageError) and str(out) == "task linear: adam b2 is 2, not in (0, 1)"
    assert serve.call_here("gradient", {"task": "linear", "backend": "numpy"}) == {"w": [-30.0]}


def test_what_each_formula_says_it_changes():
    """tasks.formulas names a difference only where a framework's update is defined otherwise."""
    assert all(formulas.differences(f, SGD()) == [] for f in formulas.FORMULAS)
    assert all(formulas.differences("reference", o) == [] for o in (SGD(0.9), Adam(), AdamW()))
    keras_adamw = " ".join(formulas.differences("keras", AdamW()))
    assert "ε outside the bias correction" in keras_adamw and "decoupled" not in keras_adamw  # AdamW is decoupled
    assert "decoupled" in " ".join(formulas.differences("keras", Adam(weight_decay=0.01)))
    assert "decoupled" not in " ".join(formulas.differences("mxnet", Adam(weight_decay=0.01)))  # L2, as defined
    assert "NAG" in " ".join(formulas.differences("mxnet", SGD(0.9, True, 0.01)))


def test_the_frameworks_formulas_part_from_the_published_definition_where_they_say():
    """Keras's and MXNet's velocity in units of the rate (v ← μv − γg, w ← w + v) equals PyTorch's buffer
    (b ← μb + g, w ← w − γb) at a constant rate, and parts from it once the rate is cut."""
    mu, grads, rates = 0.9, [0.3, -0.1, 0.2, 0.4], [0.05, 0.05, 0.01, 0.01]
    theirs = ours = 1.0
    v = b = 0.0
    for g, lr in zip(grads, rates, strict=True):
        v = mu * v - lr * g
        theirs += v
        b = mu * b + g
        ours -= lr * b
    p = {"w": np.array([1.0])}
    rule = optimizers.reference(SGD(momentum=mu), p)
    for g, lr in zip(grads, rates, strict=True):
        rule.update(p, {"w": np.array([g])}, lr)
    assert float(p["w"][0]) == pytest.approx(ours, rel=1e-14)
    for name in ("keras", "mxnet"):
        p = {"w": np.array([1.0])}
        rule = formulas.rule(name, SGD(momentum=mu), p)
        for g, lr in zip(grads, rates, strict=True):
            rule.update(p, {"w": np.array([g])}, lr)
        assert float(p["w"][0]) == pytest.approx(theirs, rel=1e-7), name  # their float32 μ: 1e-8 relative
    assert abs(theirs - ours) > 1e-3  # 0.9·(0.05 - 0.01)·b2 of the old rate, still in the velocity


@pytest.mark.skipif(envs.missing("torch", envs.current()) is not None, reason="torch lives in the main environment")
@pytest.mark.xfail(strict=True, reason="torch 2.13's inductor compiles (a @ b).add(c, alpha=λ) as a @ b + c")
def test_torch_compile_keeps_the_alpha_of_an_add_after_a_matmul():
    """Why backends/torch_compile.py writes torch.optim's L2 decay g + λθ out: torch.optim's
    ``grad.add(param, alpha=weight_decay)``, compiled where the gradient is a matmul, loses its λ. When this
    passes (a torch that compiles it right), the workaround can go."""
    import torch

    a, b, c = (torch.linspace(-1, 1, n, dtype=torch.float64).reshape(shape) for n, shape in
               ((12, (4, 3)), (15, (3, 5)), (20, (4, 5))))  # fmt: skip
    torch._dynamo.reset()
    eager = (a @ b).add(c, alpha=1e-3)
    compiled = torch.compile(lambda a, b, c: (a @ b).add(c, alpha=1e-3))(a, b, c)
    assert torch.allclose(compiled, eager, rtol=1e-12, atol=0)
