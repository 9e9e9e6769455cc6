"""The packages import no framework, and every registry name is the one name of its thing."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import backends
import tasks
from bench.host import envs


def test_importing_the_packages_imports_no_framework():
    code = (
        "import sys, tasks, tasks.contract, backends, bench.worker.training, bench.core.agreement, bench.cli\n"
        "import bench.commands.run, bench.commands.count, bench.campaign.timing, bench.report.timings\n"
        "import bench.worker.handwritten\n"
        "[tasks.get(n) for n in tasks.TASKS]\n"
        "print(' '.join(m for m in ('torch', 'jax', 'jaxlib', 'mxnet', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=envs.ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_registry_names_match_modules_and_classes():
    for name, spec in backends.BACKENDS.items():
        assert spec.target.split(":")[0] == "backends." + name.replace("-", "_")
        assert name == spec.name
    for name, module in tasks.TASKS.items():
        assert module == "tasks." + name.replace("-", "_")
        assert tasks.get(name).name == name


def test_every_backend_module_has_the_same_shape():
    """Loaded where its framework lives: the classes in this environment are checked here."""
    for name, spec in backends.BACKENDS.items():
        if spec.env != envs.current():
            continue
        cls = backends.load(name)
        assert cls.name == name
        assert spec.mode == cls.mode, name  # what the registry says of it, without importing it
        assert spec.compiles == (cls.mode != "eager"), name
        assert importlib.import_module(spec.target.split(":")[0]).__doc__


def test_the_registry_says_which_backends_compile_in_every_environment():
    """``Spec.mode`` (the plots' marker) is each class's mode, and ``Spec.compiles`` (which orders the processes)
    follows it, in the other environments too."""
    for env in {s.env for s in backends.BACKENDS.values()} - {envs.current()}:
        mine = [n for n, s in backends.BACKENDS.items() if s.env == env]
        code = f"import backends, json; print(json.dumps([backends.load(n).mode for n in {mine!r}]))"  # "compiled loop"
        out = subprocess.run([envs.python(env), "-c", code], cwd=envs.ROOT, capture_output=True, text=True, check=True)
        modes = dict(zip(mine, json.loads(out.stdout), strict=True))
        assert {n: backends.BACKENDS[n].mode for n in mine} == modes
        assert {n: backends.BACKENDS[n].compiles for n in mine} == {n: m != "eager" for n, m in modes.items()}
