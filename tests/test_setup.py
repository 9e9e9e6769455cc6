"""bench.setup: the constraints files pin every package of each environment, and a change to one is seen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import setup
from bench.host import envs


def test_setup_uses_the_standard_library_only():
    """It runs before any environment exists: here without site-packages (-S), importing nothing outside."""
    code = (
        "import sys; before = set(sys.modules); import bench.setup\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(' '.join(sorted(m for m in new if m not in sys.stdlib_module_names and m != 'bench')))"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=envs.ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_pins_reads_name_equals_version_lines():
    text = "# a comment\n\nJinja2==3.1.6\ntyping_extensions==4.16.0  # why\ntorch==2.13.0+cpu\nzope.interface==7.0\n"
    assert setup.pins(text) == {"jinja2": "3.1.6", "typing-extensions": "4.16.0", "torch": "2.13.0+cpu",
                                "zope-interface": "7.0"}  # fmt: skip


def test_the_stamp_changes_with_the_constraints_file(tmp_path, monkeypatch):
    monkeypatch.setattr(setup, "CONSTRAINTS", tmp_path)
    missing = setup.wanted("main")
    (tmp_path / "main.txt").write_text("numpy==2.4.6\n")
    first = setup.wanted("main")
    (tmp_path / "main.txt").write_text("numpy==2.4.7\n")
    second = setup.wanted("main")
    assert len({missing, first, second}) == 3
    (tmp_path / "main.txt").write_text("numpy==2.4.6\n")
    assert setup.wanted("main") == first


def test_constraints_keep_the_pyprojects_pins():
    main, mxnet = (setup.pins(setup.constraints_file(e).read_text()) for e in ("main", "mxnet"))
    assert main["torch"].split("+")[0] == "2.13.0"
    assert int(main["numpy"].split(".")[0]) >= 2
    assert (mxnet["mxnet"], mxnet["numpy"]) == ("1.9.1", "1.23.5")
    assert "pip" not in main and "pip" not in mxnet


@pytest.mark.parametrize("env", list(envs.ENVS))
def test_each_environment_is_what_its_constraints_file_says(env):
    """Every package installed (but the project and pip) is pinned, at the version installed. Fails when
    pyproject gained a dependency without `python3 -m bench.setup --upgrade`, or an environment was changed
    by hand."""
    python = envs.venv_python(env)
    if not Path(python).exists():
        pytest.skip(f"no {envs.ENVS[env]}/")
    freeze = [python, "-m", "pip", "--disable-pip-version-check", "freeze", "--all", "--exclude-editable"]
    have = setup.pins(subprocess.run(freeze, capture_output=True, text=True, check=True).stdout)
    have = {k: v for k, v in have.items() if k not in ("pip", *setup.SEED)}
    pinned = setup.pins(setup.constraints_file(env).read_text())
    assert {k: v for k, v in pinned.items() if k not in setup.SEED} == have
