"""Each backend's environment as its workers see it: versions, the BLAS each loads and its kernel."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import backends
from bench.core.options import Options
from bench.host import envs, machine

PROBE_LOADS = {"mxnet": ("mxnet",)}  # frameworks that bring a BLAS of their own (MXNet's OpenBLAS)


def worker_environments(o: Options) -> dict[str, Any]:
    """Each backend's environment as its workers see it (the versions differ between environments; so do
    the BLAS each loads and its kernel, and under --native-blas the variables that choose it)."""
    seen: dict[str, Any] = {}
    for env in {backends.BACKENDS[b].env for b in o.backends}:
        load = PROBE_LOADS.get(env, ())
        probe = (
            f"import json; from bench.host.machine import environment; print(json.dumps(environment(load={load!r})))"
        )
        variables = {**machine.thread_settings(o.threads), **machine.allocator_settings(),
                     **machine.pinned_blas(env, o.native_blas)}  # fmt: skip
        out = subprocess.run([envs.python(env), "-c", probe], cwd=envs.ROOT, capture_output=True, text=True,
                             env=machine.environ_with(variables))  # fmt: skip
        seen[env] = json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr.strip()[-300:]}
    return {b: {"machine_info": {"autodiff_bench": seen[backends.BACKENDS[b].env]}} for b in o.backends}
