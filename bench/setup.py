"""Create or update the project's environments: ``python3 -m bench.setup``.

Each environment in ``bench.envs.ENVS`` gets the pyproject extra of its name and the project itself
(editable). A stamp in the environment skips the work when pyproject.toml has not changed since.
Uses the standard library only: it runs before any environment exists.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv

from bench.envs import ENVS, ROOT, venv_python

FIRST = {"main": ["torch==2.13.0"]}  # before the rest: the local CPU wheel, not the CUDA build


def pip(env: str, *args: str) -> None:
    command = [venv_python(env), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    subprocess.run(command, cwd=ROOT, check=True)


def setup(env: str) -> None:
    folder = ROOT / ENVS[env]
    stamp = folder / ".autodiff-bench-stamp"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        print(f"{ENVS[env]}/ is up to date")
        return
    print(f"setting up {ENVS[env]}/ ...", flush=True)
    if not venv_python(env).exists():
        venv.EnvBuilder(with_pip=True).create(folder)
    if env in FIRST:
        pip(env, *FIRST[env])
    pip(env, "-e", f".[{env}]")
    stamp.write_text(want)


def main() -> int:
    try:
        for env in ENVS:
            setup(env)
    except subprocess.CalledProcessError as e:
        print(f"setup failed: {' '.join(map(str, e.cmd))} exited with {e.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
