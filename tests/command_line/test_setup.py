"""bench.setup: the constraints files pin every package of each environment, and a change to one is seen."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
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


# Where torch comes from. The checks run pip's own dry run on .venv/'s pip, with no network (the indexes
# below are empty local folders, or a port nothing listens on).

MAIN = ["-c", "constraints/main.txt"]


def bare_pip(monkeypatch, tmp_path: Path) -> Path:
    """pip as on a machine with no local wheels: no configuration files, no PIP_* variables but these, its
    index an empty local folder (PyPI has no torch +cpu wheel either) and its find-links folder empty (it
    is returned: a test may put wheels there)."""
    for name in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(name)
    (tmp_path / "index").mkdir()
    (tmp_path / "links").mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip then reads no configuration file at all
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "index").as_uri())
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "links"))
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return tmp_path / "links"


def fake_wheel(folder: Path, version: str) -> None:
    """A wheel of "torch" VERSION holding only its metadata: enough for pip to choose it in a dry run."""
    info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(folder / f"torch-{version}-py3-none-any.whl", "w") as z:
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", f"{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")


@pytest.fixture
def main_venv():
    if not Path(envs.venv_python("main")).exists():
        pytest.skip(f"no {envs.ENVS['main']}/: the checks run its pip")


def test_the_torch_wanted_is_the_pins_cpu_build(tmp_path, monkeypatch):
    monkeypatch.setattr(setup, "CONSTRAINTS", tmp_path)
    (tmp_path / "main.txt").write_text("numpy==2.4.6\ntorch==2.12.1+cpu\n")
    assert setup.cpu_torch("main", constrained=True) == "torch==2.12.1+cpu"  # what pip install -c will want
    assert setup.cpu_torch("main", constrained=False) == "torch==2.13.0+cpu"  # --upgrade: the pyproject's pin
    (tmp_path / "main.txt").unlink()
    assert setup.cpu_torch("main", constrained=True) == "torch==2.13.0+cpu"
    assert setup.cpu_torch("mxnet", constrained=True) is None


def test_without_local_wheels_torch_comes_from_pytorchs_cpu_index(main_venv, tmp_path, monkeypatch, capsys):
    bare_pip(monkeypatch, tmp_path)
    assert setup.CPU_INDEX == "https://download.pytorch.org/whl/cpu"
    # torch alone from that index; its dependencies come with the project, from pip's own indexes
    cpu = ["--no-deps", "--index-url", setup.CPU_INDEX, "torch==2.13.0"]
    assert setup.first_install("main", MAIN) == [*cpu, *MAIN]
    assert setup.first_install("main", []) == cpu  # --upgrade, made without constraints
    assert setup.first_install("mxnet", []) == []
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 2 and all("torch==2.13.0+cpu" in line and setup.CPU_INDEX in line for line in said)


@pytest.mark.parametrize("version, offered", [("2.13.0+cpu", True), ("2.13.0", False), ("2.14.0+cpu", False)])
def test_only_the_pinned_cpu_build_keeps_torch_off_the_cpu_index(main_venv, tmp_path, monkeypatch, capsys,
                                                                  version, offered):  # fmt: skip
    """A folder pip knows (find-links) with the pinned +cpu wheel is enough; PyPI's plain 2.13.0 (the CUDA
    build, on Linux) or another version is not."""
    fake_wheel(bare_pip(monkeypatch, tmp_path), version)
    assert setup.offered("main", "torch==2.13.0+cpu") is offered
    args = setup.first_install("main", MAIN)
    assert (setup.CPU_INDEX not in args) is offered
    assert (capsys.readouterr().out == "") is offered


def test_this_machines_pip_has_the_pinned_torch(main_venv):
    """Where pip's configuration names a local folder holding the pinned wheel, setup keeps to it."""
    pin = setup.pins(setup.constraints_file("main").read_text())["torch"]
    config = subprocess.run([envs.venv_python("main"), "-m", "pip", "config", "list"], capture_output=True,
                            text=True).stdout  # fmt: skip
    values = [line.split("=", 1)[1].strip("'") for line in config.splitlines() if ".find-links=" in line]
    folders = [*os.environ.get("PIP_FIND_LINKS", "").split(), *" ".join(values).split()]
    if not any(Path(f).is_dir() and any(Path(f).glob(f"torch-{pin}-*.whl")) for f in folders):
        pytest.skip(f"pip's find-links here hold no torch {pin} wheel")
    assert setup.first_install("main", MAIN) == ["torch==2.13.0", *MAIN]
    assert setup.first_install("main", []) == ["torch==2.13.0"]


@pytest.mark.parametrize("retries", ["0", "1"])
def test_an_unreachable_cpu_index_is_one_line(main_venv, tmp_path, monkeypatch, retries):
    """Retried, pip says why it could not connect; not retried, it says nothing, and setup asks itself."""
    bare_pip(monkeypatch, tmp_path)
    monkeypatch.setenv("PIP_RETRIES", retries)
    if retries != "0":  # pip's own words suffice
        monkeypatch.setattr(setup, "cannot_reach", lambda index: pytest.fail(f"asked {index} again"))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(setup, "CPU_INDEX", f"http://127.0.0.1:{port}/whl/cpu")
    args = setup.first_install("main", MAIN)
    with pytest.raises(setup.SetupError) as e:
        setup.install_first("main", ["--dry-run", "--ignore-installed", *args])  # a dry run: installs nothing
    said = str(e.value)
    assert "\n" not in said and setup.CPU_INDEX in said and "cannot be reached (Connection refused)" in said
    assert "PIP_FIND_LINKS" in said


def test_unreachable_reads_pips_retries():
    retry = ("WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection "
             "broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed "
             "to establish a new connection: [Errno -2] Name or service not known')': /whl/cpu/torch/")  # fmt: skip
    assert setup.unreachable(f"{retry}\nERROR: No matching distribution found for torch==2.13.0") == (
        "Name or service not known"
    )
    assert setup.unreachable("ERROR: No matching distribution found for torch==2.13.0") is None
    assert setup.unreachable("ERROR: Could not install packages due to an OSError: [Errno 28] No space left") is None


def test_a_cpu_index_without_the_version_is_one_line(main_venv, tmp_path, monkeypatch):
    bare_pip(monkeypatch, tmp_path)
    (tmp_path / "cpu").mkdir()
    monkeypatch.setattr(setup, "CPU_INDEX", (tmp_path / "cpu").as_uri())
    args = setup.first_install("main", MAIN)
    with pytest.raises(setup.SetupError) as e:
        setup.install_first("main", ["--dry-run", "--ignore-installed", *args])
    assert str(e.value).startswith(f"PyTorch's CPU index {setup.CPU_INDEX} has no torch==2.13.0+cpu for this machine")
    assert "\n" not in str(e.value)
