"""The project's virtual environments: which exist, which one we are in, which runs a backend."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# environment -> its folder; each is created by ``python3 -m bench.setup`` from pyproject's extra of that name
ENVS: dict[str, str] = {"main": ".venv", "mxnet": ".venv-mxnet"}
SETUP_COMMAND = "python3 -m bench.setup"


def python(env: str) -> Path:
    return ROOT / ENVS[env] / "bin" / "python"


def current() -> str:
    """The environment this interpreter belongs to ("main" for any interpreter but the others')."""
    here = Path(sys.prefix).resolve()
    return next((env for env, folder in ENVS.items() if here == (ROOT / folder).resolve()), "main")


def missing(framework: str, env: str) -> str | None:
    """Why ``framework`` cannot be imported in ``env``, or None when it can."""
    hint = f"run `{SETUP_COMMAND}` to create {ENVS[env]}/"
    if env == current():
        return None if importlib.util.find_spec(framework) else f"{framework} is not installed here: {hint}"
    if not python(env).exists():
        return f"{framework} lives in {ENVS[env]}/, which does not exist: {hint}"
    check = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({framework!r}) is None)"
    if subprocess.run([python(env), "-c", check], cwd=ROOT).returncode:
        return f"{framework} is not installed in {ENVS[env]}/: {hint}"
    return None
