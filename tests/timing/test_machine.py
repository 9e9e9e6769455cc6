"""The environment a run records (bench.host.machine): each environment's BLAS and the kernel it runs, the
variables that chose it, the CPU's flags; and ``bench run --native-blas``, under which the main
environment's timing workers run without the variables that pin OpenBLAS's kernel."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import backends
from bench.campaign import counting, timing
from bench.campaign.environments import worker_environments
from bench.core.cases import Settings
from bench.core.options import Options, default_tasks
from bench.host import envs, machine
from bench.report import timings

PINNED = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}


def probe(env: str, changes: dict[str, str | None], load: tuple[str, ...] = ()) -> dict:
    code = f"import json; from bench.host.machine import environment; print(json.dumps(environment(load={load!r})))"
    out = subprocess.run([envs.python(env), "-c", code], cwd=envs.ROOT, capture_output=True, text=True, check=True,
                         env=machine.environ_with(changes))  # fmt: skip
    return json.loads(out.stdout)


def test_the_variables_are_recorded_as_set_and_none_where_unset():
    found = machine.blas_variables({"OPENBLAS_CORETYPE": "Haswell", "MKL_VERBOSE": "1", "HOME": "/root"})
    assert found["OPENBLAS_CORETYPE"] == "Haswell" and found["MKL_VERBOSE"] == "1"
    assert found["OPENBLAS_L2_SIZE"] is None and found["XLA_FLAGS"] is None and found["ATEN_CPU_CAPABILITY"] is None
    assert "HOME" not in found


def test_the_cpu_flags_and_their_simd_summary():
    assert machine.simd_summary(["fpu", "avx2", "sse4_2", "avx512f", "amx_tile"]) == "sse4_2, avx2, avx512f, amx_tile"
    flags = machine.cpu_flags()
    assert not Path("/proc/cpuinfo").exists() or "sse2" in flags


def test_native_blas_unsets_the_pinned_variables_for_main_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    main = machine.environ_with(machine.pinned_blas("main", native=True))
    assert "OPENBLAS_CORETYPE" not in main and "OPENBLAS_L2_SIZE" not in main and "PATH" in main
    for env, native in (("mxnet", True), ("main", False), ("mxnet", False)):
        kept = machine.environ_with(machine.pinned_blas(env, native))
        assert kept["OPENBLAS_CORETYPE"] == "Haswell" and kept["OPENBLAS_L2_SIZE"] == "1048576", (env, native)


def test_the_campaigns_workers_get_the_unsetting(monkeypatch):
    seen: dict[str, dict] = {}

    class Remote:
        def __init__(self, env, calls, environ=None):
            seen[env] = environ

        def results(self, timeout, answered):
            return []

        def stop(self):
            pass

    settings = Settings(native_blas=True)
    for backend in ("numpy", "mxnet"):
        timing.processes(backend, [("measure", {})], {"X": "1"}, settings, None, "", [], remote=Remote)
    assert seen["main"] == {"X": "1", "OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}
    assert seen["mxnet"] == {"X": "1"}


def test_openblas_reports_the_kernel_the_variable_chose(monkeypatch):
    """numpy 2's OpenBLAS runs the Haswell kernel where OPENBLAS_CORETYPE=Haswell says so, and picks its
    own for this CPU where it is unset (another one on a CPU with AVX-512)."""
    pinned, native = probe("main", PINNED), probe("main", dict.fromkeys(PINNED))
    (a,), (b,) = ([lib for lib in e["blas"] if lib["user_api"] == "blas"] for e in (pinned, native))
    assert a["internal_api"] == b["internal_api"] == "openblas" and a["package"] == "numpy"
    assert a["architecture"] == "Haswell"
    assert pinned["blas_variables"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert native["blas_variables"]["OPENBLAS_CORETYPE"] is None
    if "avx512f" in machine.cpu_flags():
        assert b["architecture"] != "Haswell"
    assert "(Haswell kernel: OPENBLAS_CORETYPE=Haswell set)" in machine.blas_summary(pinned)
    assert f"({b['architecture']} kernel: OPENBLAS_CORETYPE unset)" in machine.blas_summary(native)


@pytest.mark.skipif(not envs.python("mxnet").exists(), reason="no .venv-mxnet")
def test_worker_environments_under_native_blas(monkeypatch, tmp_path):
    """The probes run as the timing workers do: main without the pinned variables, MXNet's with them; MXNet's
    environment has no threadpoolctl, and reads its OpenBLAS libraries (numpy's and MXNet's) through ctypes."""
    for k, v in PINNED.items():
        monkeypatch.setenv(k, v)
    o = Options(out=tmp_path, tasks=["linear"], backends=["numpy", "mxnet"], dtypes=["float64"], threads=1,
                    device="cpu", quick=True, timeout=60.0, native_blas=True)  # fmt: skip
    seen = worker_environments(o)
    main, mx = (seen[b]["machine_info"]["autodiff_bench"] for b in ("numpy", "mxnet"))
    assert main["blas_variables"]["OPENBLAS_CORETYPE"] is None and main["blas_variables"]["OPENBLAS_L2_SIZE"] is None
    assert mx["blas_variables"] == mx["blas_variables"] | PINNED
    assert {lib["package"]: lib["architecture"] for lib in mx["blas"]} == {"numpy": "Haswell", "mxnet": "Haswell"}
    line = timings.blas_line({}, seen, o.native_blas)
    assert line.startswith(f".venv/: numpy {main['versions']['numpy']} with OpenBLAS ")
    assert "OPENBLAS_CORETYPE unset" in line
    assert ".venv-mxnet/: numpy 1.23.5 with OpenBLAS 0.3.20 (Haswell kernel: OPENBLAS_CORETYPE=Haswell set)" in line
    assert "mxnet's OpenBLAS" in line and "ran without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE; " in line
    held = f"MALLOC_MMAP_THRESHOLD_={32 * 2**20}, MALLOC_TRIM_THRESHOLD_={2**30}"
    assert line.endswith(f"glibc's allocator held ({held}).")


def test_the_option_is_in_the_command_line_and_the_campaigns_settings(tmp_path):
    o = Options(out=envs.ROOT / "results", tasks=default_tasks(False), backends=list(backends.BACKENDS),
                    dtypes=["float64", "float32"], threads=1, device="cpu", quick=False, timeout=600.0)  # fmt: skip
    assert "--native-blas" not in o.command() and not o.settings.native_blas
    o.native_blas = True
    assert o.command().endswith("--native-blas") and o.settings.native_blas


def test_a_workers_compile_caches_are_the_campaigns_and_a_users_xla_flags_are_kept(monkeypatch, tmp_path):
    """Every worker of a run shares its compile caches (torch's Inductor, jax's, TensorFlow's XLA), in the
    run's scratch folder; a TF_XLA_FLAGS the user set comes first, and a counting worker has it alone."""

    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    env = timing.environ(Settings(), {}, tmp_path)
    assert env["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={tmp_path / 'tensorflow'}"
    assert env["TORCHINDUCTOR_CACHE_DIR"].startswith(str(tmp_path))
    assert env["JAX_COMPILATION_CACHE_DIR"].startswith(str(tmp_path))
    counted = counting.environ(Settings(), {}, tmp_path, tmp_path / "shim")
    assert "TF_XLA_FLAGS" not in counted and "JAX_COMPILATION_CACHE_DIR" not in counted


def test_a_timing_worker_holds_glibcs_allocator_and_a_users_own_setting_is_kept(monkeypatch, tmp_path):
    """A timing worker reuses memory under 32 MiB (glibc's mmap threshold held at its ceiling, its heap's top
    kept): at N = 10⁶ a numpy step, whose temporaries are 8 MB each, is handed a few fresh pages once the heap
    has grown, where glibc's own rules hand it hundreds a step (how many follows the process's history). A
    variable the user set is theirs; a counting worker runs the allocator by glibc's rules."""

    env = timing.environ(Settings(), {}, tmp_path)
    assert env["MALLOC_MMAP_THRESHOLD_"] == str(32 * 2**20) and env["MALLOC_TRIM_THRESHOLD_"] == str(2**30)
    probe = ("from bench.worker.timer import measure; "
             "f = [measure('quadratic', 'numpy', n=10**6, steps=10, round_time=0.0, min_rounds=5, objective=False,"
             " visit=v, visits=2).faults_per_step for v in range(2)]; print(f[-1])")  # fmt: skip

    def pages(variables: dict[str, str | None]) -> float:
        out = subprocess.run([envs.python("main"), "-c", probe], cwd=envs.ROOT, capture_output=True, text=True,
                             env=machine.environ_with(variables), check=True)  # fmt: skip
        return float(out.stdout)

    assert pages(env) < 10 and pages(env | dict.fromkeys(machine.ALLOCATOR)) > 100
    assert not set(machine.ALLOCATOR) & set(counting.environ(Settings(), {}, tmp_path, tmp_path / "shim"))
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert timing.environ(Settings(), {}, tmp_path)["MALLOC_TRIM_THRESHOLD_"] == "0"
