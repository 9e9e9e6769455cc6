"""The README names only what exists: every task and backend of its tables is registered (and every
registered one is in them), every ``python -m bench`` command it shows is one, and every option it names
is one of the project's, pytest-benchmark's, or a tool's it quotes."""

from __future__ import annotations

import re

import pytest

import backends
import tasks
from bench import cli
from bench.host import envs

README = (envs.ROOT / "README.md").read_text()
CONFTEST = {
    o
    for f in ("tests/conftest.py", "bench/commands/pytest_plugin.py")
    for o in re.findall(r'addoption\("(--[a-z-]+)"', (envs.ROOT / f).read_text())
}
PLUGIN = "--benchmark-"  # pytest-benchmark's own
QUOTED = {"--tool", "--instr-atstart", "--xla"}  # valgrind's options and XLA_FLAGS=--xla_..., quoted as used
SETUP = {"--upgrade"}  # python3 -m bench.setup


def table(heading: str) -> list[str]:
    """The first column's names (in backticks) of the README's table whose header row starts so."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    names = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        names.append(re.match(r"\| `([^`]+)` \|", line).group(1))
    return names


def test_the_backend_table_is_the_registry():
    assert sorted(table("| backend | how it trains |")) == sorted(backends.BACKENDS)


def test_the_task_table_is_the_registry():
    assert sorted(table("| task | from |")) == sorted(tasks.TASKS)


def subcommands() -> dict[str, set[str]]:
    actions = cli.parser()._subparsers._group_actions[0].choices  # noqa: SLF001 (argparse keeps them there)
    return {name: {o for a in p._actions for o in a.option_strings} for name, p in actions.items()}


@pytest.mark.parametrize("command", sorted(set(re.findall(r"python -m bench (\w+)", README))))
def test_every_command_shown_is_one(command):
    assert command in subcommands()


def test_every_option_named_is_one():
    known = set().union(*subcommands().values()) | CONFTEST | QUOTED | SETUP
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", README))
    unknown = sorted(o for o in named if o not in known and not o.startswith(PLUGIN))
    assert not unknown, f"the README names options nothing takes: {unknown}"
