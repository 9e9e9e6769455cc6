"""Create or update the project's environments: ``python3 -m bench.setup [--upgrade [ENV ...]]``.

Each environment in ``bench.host.envs.ENVS`` gets the pyproject extra of its name and the project itself
(editable), every package at the version its constraints file, ``constraints/ENV.txt``, names
(``pip install -c``): a fresh clone gets the packages its results were timed with. A stamp in the
environment skips the work when neither pyproject.toml nor the constraints file has changed since.

``--upgrade`` moves to newer versions: it makes each environment named (default: all) afresh without
constraints (torch stays at the pyproject's pin), then rewrites its constraints file from ``pip freeze``.

torch comes first, as its CPU build (``2.13.0+cpu``): from pip's own indexes and find-links where they have
it, else from PyTorch's CPU index (``CPU_INDEX``), the only public index that serves it (PyPI's Linux torch
pulls GBs of CUDA packages). Uses the standard library only: it runs before any environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from pathlib import Path

from bench.host.envs import ENVS, ROOT, venv_python

FIRST = {"main": ["torch==2.13.0"]}  # before the rest: torch's CPU build, not the CUDA one (see first_install)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # PyTorch's own index, the only one with torch's +cpu wheels
CHECK_TIMEOUT = 300  # seconds: the check takes about 1 s, or as long as a download where an index lacks metadata
CONSTRAINTS = ROOT / "constraints"
STAMP = ".autodiff-bench-stamp"
SEED = ("setuptools", "wheel")  # in every fresh venv: constrained only where some package requires them


def constraints_file(env: str) -> Path:
    return CONSTRAINTS / f"{env}.txt"


def pip(env: str, *args: str) -> None:
    command = [venv_python(env), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    subprocess.run(command, cwd=ROOT, check=True)


def pip_output(env: str, *args: str) -> str:
    command = [venv_python(env), "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def wanted(env: str) -> str:
    """What the stamp holds: a digest of pyproject.toml and of the environment's constraints file."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    path = constraints_file(env)
    digest.update(b"\0" + (path.read_bytes() if path.exists() else b"no constraints"))
    return digest.hexdigest()


def pins(text: str) -> dict[str, str]:
    """``name==version`` lines (comments and blank lines skipped) as {normalized name: version}."""
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[name.strip().lower().replace("_", "-").replace(".", "-")] = version.strip()
    return found


def frozen(env: str) -> list[str]:
    """``pip freeze --all --exclude-editable`` of the environment, less pip itself, and less setuptools and
    wheel where nothing installed requires them (they come with every venv; constraining them would only
    get in the way of building the project)."""
    lines = []
    for line in pip_output(env, "freeze", "--all", "--exclude-editable").splitlines():
        name = line.split("==", 1)[0].split(" @ ", 1)[0].strip().lower()
        if not line.strip() or line.startswith("#") or name == "pip":
            continue
        if "==" not in line:  # installed from a URL or a folder: pip takes no such constraint
            lines.append(f"# {name}: not pinned, installed as {line.strip()}")
            continue
        if name in SEED and not required_by(env, name):
            continue
        lines.append(line.strip())
    return lines


def required_by(env: str, package: str) -> list[str]:
    for line in pip_output(env, "show", package).splitlines():
        if line.startswith("Required-by:"):
            return [p.strip() for p in line.split(":", 1)[1].split(",") if p.strip()]
    return []


def write_constraints(env: str) -> tuple[dict[str, str], dict[str, str]]:
    """Rewrite ``constraints/ENV.txt`` from the environment as it is; the pins before and after."""
    path = constraints_file(env)
    before = pins(path.read_text()) if path.exists() else {}
    python = venv_python(env)
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
    header = [
        f"# Constraints of {ENVS[env]}/ (pyproject extra [{env}]): `python3 -m bench.setup` installs with",
        f"# `-c constraints/{env}.txt`, so every package gets the version below.",
        "# Made by `python3 -m bench.setup --upgrade` on Python "
        + f"{version}, {platform.system()} {platform.machine()}: a fresh environment",
        "# installed without constraints, then `pip freeze --all --exclude-editable` less pip (and less setuptools",
        "# and wheel where no package requires them). Do not edit by hand: run the upgrade again.",
    ]
    lines = frozen(env)
    CONSTRAINTS.mkdir(exist_ok=True)
    path.write_text("\n".join(header + lines) + "\n")
    return before, pins("\n".join(lines))


def check_installed(env: str) -> None:
    """Every constrained package that is installed has its constrained version, or setup fails saying so."""
    path = constraints_file(env)
    if not path.exists():
        return
    have = pins(pip_output(env, "freeze", "--all", "--exclude-editable"))
    off = [f"{name} {have[name]} (constraints: {v})" for name, v in pins(path.read_text()).items()
           if name in have and have[name] != v]  # fmt: skip
    if off:
        raise SetupError(f"{ENVS[env]}/ has {', '.join(off)}: delete {ENVS[env]}/ and run `python3 -m bench.setup`")


class SetupError(Exception):
    pass


def cpu_torch(env: str, constrained: bool) -> str | None:
    """The torch the environment needs, ``torch==VERSION+cpu``: the version the constraints file pins (or,
    without constraints, the pyproject's pin in FIRST). None where the environment gets no torch."""
    first = pins("\n".join(FIRST.get(env, [])))
    if "torch" not in first:
        return None
    path = constraints_file(env)
    pinned = pins(path.read_text()).get("torch") if constrained and path.exists() else None
    return f"torch=={(pinned or first['torch']).split('+')[0]}+cpu"


def offered(env: str, requirement: str) -> bool:
    """Whether pip as configured (its indexes, find-links and constraints) has ``requirement`` for this
    interpreter and platform: a dry run without dependencies, which installs nothing. About 1 s: a wheel in
    a local folder is read in place, and an index that lacks it answers with its list of versions."""
    command = [venv_python(env), "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--retries", "1", "--timeout", "15", requirement]  # fmt: skip
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def first_install(env: str, limits: list[str]) -> list[str]:
    """``pip install`` arguments for what the environment gets before the rest ([] where nothing): torch from
    pip as configured where that has its CPU build; else torch alone (its dependencies come with the rest,
    from pip's own indexes) from PyTorch's CPU index, which is then said in one line."""
    if env not in FIRST:
        return []
    build = cpu_torch(env, bool(limits))
    if build is None or offered(env, build):
        return [*FIRST[env], *limits]
    print(f"{build} is in none of pip's indexes or find-links: it comes from PyTorch's CPU index, {CPU_INDEX}",
          flush=True)  # fmt: skip
    return ["--no-deps", "--index-url", CPU_INDEX, *FIRST[env], *limits]


def install_first(env: str, args: list[str]) -> None:
    """Run ``first_install``'s arguments; a failure to get torch from PyTorch's CPU index is one line."""
    if "--index-url" not in args:
        pip(env, *args)
        return
    index = args[args.index("--index-url") + 1]
    # not --quiet: pip says why it could not fetch an index at its default level only (the output is kept)
    command = [venv_python(env), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode == 0:
        return
    output = done.stdout + done.stderr
    build = cpu_torch(env, "-c" in args)
    errors = [line.removeprefix("ERROR:").strip() for line in output.splitlines() if line.startswith("ERROR:")]
    none = any(s in e for e in errors for s in ("No matching distribution", "ResolutionImpossible"))
    if why := unreachable(output) or (cannot_reach(index) if none else None):
        raise SetupError(f"PyTorch's CPU index {index} cannot be reached ({why}), and pip's own indexes and "
                         f"find-links lack {build}: connect to that index, or put the wheel in a folder and "
                         "name the folder in PIP_FIND_LINKS")  # fmt: skip
    if none:
        where = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
        raise SetupError(f"PyTorch's CPU index {index} has no {build} for this machine ({where})")
    said = errors[-1] if errors else (output.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    raise SetupError(f"getting {build} from PyTorch's CPU index {index} failed: {said}")


def unreachable(output: str) -> str | None:
    """Why pip could not reach an index, from its output: the cause its last retry or failed fetch names
    ("Name or service not known", "Read timed out", ...). None where no connection failed."""
    failed = [line for line in output.splitlines()
              if "Retrying (" in line or "Could not fetch URL" in line or "urllib3.exceptions" in line]  # fmt: skip
    if not failed:
        return None
    cause = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", failed[-1]) or re.search(
        r"(Read timed out|\w*Timeout\w*|ProxyError|SSLError|CERTIFICATE_VERIFY_FAILED)", failed[-1]
    )
    return cause.group(1).strip() if cause else "no connection"


def cannot_reach(index: str) -> str | None:
    """Why the index's page for torch cannot be fetched (pip retried 0 times says nothing); None where it
    answers, with anything, or is not an http(s) address."""
    if not index.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(f"{index.rstrip('/')}/torch/", timeout=15):
            return None
    except urllib.error.HTTPError:  # it answered
        return None
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return getattr(reason, "strerror", None) or str(reason)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def setup(env: str) -> None:
    folder = ROOT / ENVS[env]
    stamp = folder / STAMP
    want = wanted(env)
    if stamp.exists() and stamp.read_text() == want:
        print(f"{ENVS[env]}/ is up to date")
        return
    path = constraints_file(env)
    limits = ["-c", str(path.relative_to(ROOT))] if path.exists() else []
    if limits:
        print(f"setting up {ENVS[env]}/ with {limits[1]} ...", flush=True)
    else:
        print(f"setting up {ENVS[env]}/ without constraints ({path.relative_to(ROOT)} is missing) ...", flush=True)
    if not venv_python(env).exists():
        venv.EnvBuilder(with_pip=True).create(folder)
    if first := first_install(env, limits):
        install_first(env, first)
    pip(env, "-e", f".[{env}]", *limits)
    check_installed(env)
    stamp.write_text(want)


def upgrade(env: str) -> None:
    """Make the environment afresh without constraints, then write its constraints file from it."""
    folder = ROOT / ENVS[env]
    print(f"making {ENVS[env]}/ afresh with the newest versions ...", flush=True)
    if folder.exists():
        shutil.rmtree(folder)
    venv.EnvBuilder(with_pip=True).create(folder)
    if first := first_install(env, []):
        install_first(env, first)
    pip(env, "-e", f".[{env}]")
    before, after = write_constraints(env)
    (folder / STAMP).write_text(wanted(env))
    changed = [f"{n} {before.get(n, 'new')} → {after.get(n, 'gone')}" for n in sorted(before.keys() | after.keys())
               if before.get(n) != after.get(n)]  # fmt: skip
    where = constraints_file(env).relative_to(ROOT)
    news = ", ".join(changed) if before and changed else "no version changed" if before else "its first version"
    print(f"wrote {where} ({len(after)} packages): {news}")


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python3 -m bench.setup", description="create or update the environments")
    p.add_argument("--upgrade", nargs="*", metavar="ENV", choices=list(ENVS),
                   help=f"make these environments ({', '.join(ENVS)}; default: all) afresh without constraints "
                        "and rewrite their constraints/ENV.txt")  # fmt: skip
    a = p.parse_args(argv)
    if a.upgrade is not None and any(Path(sys.prefix).resolve() == (ROOT / f).resolve() for f in ENVS.values()):
        print(f"error: --upgrade remakes {sys.prefix}: run it with python3, not this interpreter", file=sys.stderr)
        return 2
    try:
        for env in ENVS:
            if a.upgrade is None:
                setup(env)
            elif not a.upgrade or env in a.upgrade:
                upgrade(env)
    except subprocess.CalledProcessError as e:
        print(f"setup failed: {' '.join(map(str, e.cmd))} exited with {e.returncode}", file=sys.stderr)
        return 1
    except SetupError as e:
        print(f"setup failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
