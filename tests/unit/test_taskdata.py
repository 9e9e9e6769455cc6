"""Task data are made once, in the main process: every environment trains on those exact bytes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tasks
from bench.campaign.remote import train
from bench.core import taskdata
from bench.core.errors import BenchError
from bench.worker import serve


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_a_saved_task_loads_as_the_same_task(tmp_path, name):
    made = tasks.get(name)
    taskdata.save(made, tmp_path / "t.npz")
    loaded = taskdata.load(tmp_path / "t.npz")
    assert taskdata.digest(loaded) == taskdata.digest(made)
    assert np.array_equal(loaded.lrs(), made.lrs()) and loaded.steps == made.steps
    for f in dataclasses.fields(made):
        if f.name not in taskdata.ARRAYS:
            assert getattr(loaded, f.name) == getattr(made, f.name), f.name


def test_bytes_that_do_not_match_their_digest_are_named(tmp_path, monkeypatch):
    taskdata.save(tasks.get("linear"), tmp_path / "linear.npz")
    z = dict(np.load(tmp_path / "linear.npz"))
    z["x"] = z["x"] + 1e-12
    np.savez(tmp_path / "linear.npz", **z)
    monkeypatch.setenv(taskdata.VARIABLE, str(tmp_path))
    out = serve.call_here("train", {"task": "linear", "backend": "numpy"})
    assert isinstance(out, BenchError) and str(out).startswith("task data differ between environments (")


def test_a_function_another_process_cannot_import_is_refused_in_one_line(tmp_path):
    task = dataclasses.replace(tasks.get("linear"), model=lambda p, x, xp: p["w"] * x)
    with pytest.raises(ValueError, match="define it at the top of its module"):
        taskdata.save(task, tmp_path / "t.npz")


def test_the_mxnet_environment_trains_on_the_main_process_bytes(monkeypatch):
    """The main process's task (here: y + 1) is the one MXNet trains, not one its environment makes."""
    original = tasks.get("linear")
    changed = dataclasses.replace(original, y=original.y + 1)  # linear starts at w = 0: its first loss is y²
    made = taskdata.made
    monkeypatch.setattr(taskdata, "made", lambda name, n=None: changed if name == "linear" else made(name, n))
    mxnet = train("linear", "mxnet", epochs=3)
    numpy = train("linear", "numpy", epochs=3)
    assert mxnet.digest == numpy.digest == taskdata.digest(dataclasses.replace(changed, epochs=3))
    assert mxnet.losses == pytest.approx(numpy.losses, rel=1e-9)
    assert mxnet.losses[0] == pytest.approx(changed.full_loss(changed.init))  # linear trains on all data a step
    assert mxnet.losses[0] != pytest.approx(original.full_loss(original.init))
