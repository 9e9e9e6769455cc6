"""The hand-written loops (bench.worker.handwritten), the adapters' yardsticks, train quadratic as the numpy
reference backend does: the same parameters after the same steps."""

from __future__ import annotations

from typing import Any

import pytest

import backends
import tasks
from bench.campaign.remote import call_many, train
from bench.core.agreement import TOL, rel_diff
from bench.core.cases import DTYPES
from bench.core.errors import BenchError
from bench.host import envs
from bench.worker import handwritten, training

STEPS = 50
CASES = [(b, d) for b in backends.BACKENDS for d in DTYPES]
LR_DTYPE = {"mxnet-gluon": "float32"}
# the modes of the frameworks that have a compiled step and a compiled loop, each to be held against its own kind
LOOPED = {s.framework for s in backends.BACKENDS.values() if s.mode == backends.LOOP}
BOTH_KINDS = [b for b, s in backends.BACKENDS.items() if s.framework in LOOPED and s.mode != backends.EAGER]


@pytest.fixture(scope="session")
def loops() -> dict[tuple[str, str], Any]:
    """Every loop's parameters, the MXNet ones from a worker in their environment running meanwhile."""
    calls = [("handwritten", {"task": "quadratic", "backend": b, "dtype": d, "steps": STEPS}) for b, d in CASES]
    return dict(zip(CASES, call_many(calls), strict=True))


@pytest.mark.parametrize("backend, dtype", CASES, ids=["-".join(c) for c in CASES])
def test_handwritten_loop_ends_at_numpys_parameters(loops, backend, dtype):
    got = loops[backend, dtype]
    if isinstance(got, BenchError):
        raise got
    # Gluon's SGD holds the learning rate as a C float: the reference runs with the same float32 rate
    ref = train("quadratic", "numpy", dtype, epochs=STEPS, lr_dtype=LR_DTYPE.get(backend))
    assert got.keys() == ref.params.keys()
    for k, v in ref.params.items():
        assert rel_diff(got[k], v) <= TOL[dtype], k
    assert rel_diff(got["w"], tasks.get("quadratic").init["w"]) > 1e-3  # it trained


def test_the_float32_learning_rate_is_what_sets_gluon_apart(loops):
    """Against numpy with the float64 learning rate the Gluon loop differs by more than 1e-9: the comparison
    above, with the float32 rate, is not a loose one."""
    ref = train("quadratic", "numpy", "float64", epochs=STEPS)
    assert rel_diff(loops["mxnet-gluon", "float64"]["w"], ref.params["w"]) > 1e-9


def test_only_quadratic_has_handwritten_loops():
    with pytest.raises(ValueError, match="quadratic only"):
        handwritten.make("numpy", tasks.get("linear"), "float64")
    assert list(handwritten.LOOPS) == list(backends.BACKENDS)


@pytest.mark.parametrize("backend", BOTH_KINDS)
def test_a_compiled_modes_loop_is_of_its_kind(backend):
    """A compiled step's hand-written loop calls its compiled step once a step from Python and keeps each call's
    loss; a compiled loop's runs every step in one call, which returns all their losses as one array."""
    if backends.BACKENDS[backend].env != envs.current():
        pytest.skip(f"{backend} runs in another environment")
    loop = handwritten.make(backend, training.make_task("quadratic"), "float64")
    loop.run(5)
    if backends.BACKENDS[backend].mode == backends.STEP:
        assert isinstance(loop.losses, list) and len(loop.losses) == 5
    else:
        assert not isinstance(loop.losses, list) and tuple(loop.losses.shape) == (5,)
