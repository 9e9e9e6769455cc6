"""The project's virtual environments: which exist, which one we are in, which runs a backend.

Standard library only: ``python -m bench`` checks its interpreter with it before importing numpy.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# environment -> its folder; each is created by ``python3 -m bench.setup`` from pyproject's extra of that name
ENVS: dict[str, str] = {"main": ".venv", "mxnet": ".venv-mxnet"}
SETUP_COMMAND = "python3 -m bench.setup"


def venv_python(env: str) -> Path:
    return ROOT / ENVS[env] / "bin" / "python"


def python(env: str) -> Path:
    """The interpreter that runs ``env``'s backends: this one, where this process is that environment."""
    return Path(sys.executable) if env == current() else venv_python(env)


def current() -> str:
    """The environment this interpreter belongs to ("main" for any interpreter but the others')."""
    here = Path(sys.prefix).resolve()
    return next((env for env, folder in ENVS.items() if here == (ROOT / folder).resolve()), "main")


def wrong_interpreter() -> str | None:
    """Why the command line should not run on this interpreter, or None. Outside ``.venv/`` it runs only
    where there is no ``.venv/`` and this interpreter has what it needs (a prepared GPU machine, say)."""
    main = ROOT / ENVS["main"]
    if Path(sys.prefix).resolve() == main.resolve():
        return None
    use = f"{ENVS['main']}/bin/python -m bench"
    if venv_python("main").exists():
        return f"this is {sys.executable}, not the project's environment: run `{use}`"
    if importlib.util.find_spec("numpy") is None:
        return f"there is no {ENVS['main']}/: run `{SETUP_COMMAND}`, then `{use}`"
    return None


def missing(framework: str, env: str) -> str | None:
    """Why ``framework`` cannot be imported in ``env``, or None when it can."""
    hint = f"run `{SETUP_COMMAND}` to create {ENVS[env]}/"
    if env == current():
        return None if importlib.util.find_spec(framework) else f"{framework} is not installed here: {hint}"
    if not python(env).exists():
        return f"{framework} lives in {ENVS[env]}/, which does not exist: {hint}"
    check = f"import importlib.util, sys; sys.exit(7 if importlib.util.find_spec({framework!r}) is None else 0)"
    try:
        done = subprocess.run([python(env), "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{ENVS[env]}/bin/python does not start ({e}): {hint}"
    if done.returncode == 7:
        return f"{framework} is not installed in {ENVS[env]}/: {hint}"
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"{ENVS[env]}/bin/python does not start ({last}): {hint}"
    return None
