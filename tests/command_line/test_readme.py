"""The README and docs/ name only what exists: every task and backend of their tables is registered (and
every registered one is in them), every ``python -m bench`` command they show is one, every option they
name is one of the project's, pytest-benchmark's, or a tool's they quote, and every link leads to a file
(and heading) that is there. The README fits a screen, its docs index lists every docs file, and neither
holds a path under /tmp or a commit hash: docs say what holds now, and history belongs in git."""

from __future__ import annotations

import importlib.util
import re

import pytest

import backends
import tasks
from bench import cli
from bench.host import envs

ROOT = envs.ROOT
README = (ROOT / "README.md").read_text()
DOCS = {f"docs/{p.name}": p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
TEXTS = {"README.md": README, **DOCS}
CONFTEST = {
    o
    for f in ("tests/conftest.py", "bench/commands/pytest_plugin.py")
    for o in re.findall(r'addoption\("(--[a-z-]+)"', (ROOT / f).read_text())
}
PLUGIN = "--benchmark-"  # pytest-benchmark's own
QUOTED = {"--tool", "--instr-atstart", "--xla"}  # valgrind's options and XLA_FLAGS=--xla_..., quoted as used
SETUP = {"--upgrade"}  # python3 -m bench.setup
FLOOR = set(re.findall(r'add_argument\("(--[a-z-]+)"', (ROOT / "bench/worker/floor.py").read_text()))  # its own
# The files other documents link to by name: each must be there.
REQUIRED = ["installing", "commands", "results", "fair-timing", "trust", "counts", "tasks", "backends", "optimisers",
            "equivalence"]  # fmt: skip
START, END = "<!-- results:start -->", "<!-- results:end -->"
LIMIT, OUTSIDE_BLOCK = 220, 175  # README lines in all, and outside the block `bench run` writes


def table(text: str, heading: str) -> list[str]:
    """The first column's names (in backticks) of the table whose header row starts so."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    names = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        names.append(re.match(r"\| `([^`]+)` \|", line).group(1))
    return names


@pytest.mark.parametrize("where", ["README.md", "docs/backends.md"])
def test_the_backend_table_is_the_registry(where):
    assert sorted(table(TEXTS[where], "| backend | how it trains |")) == sorted(backends.BACKENDS)


@pytest.mark.parametrize("where", ["README.md", "docs/tasks.md"])
def test_the_task_table_is_the_registry(where):
    assert sorted(table(TEXTS[where], "| task | from |")) == sorted(tasks.TASKS)


def subcommands() -> dict[str, set[str]]:
    actions = cli.parser()._subparsers._group_actions[0].choices  # noqa: SLF001 (argparse keeps them there)
    return {name: {o for a in p._actions for o in a.option_strings} for name, p in actions.items()}


def shown(pattern: str) -> list[tuple[str, str]]:
    return sorted({(where, found) for where, text in TEXTS.items() for found in re.findall(pattern, text)})


# `python -m bench run`, and `bench diff` in prose
@pytest.mark.parametrize("where, command", shown(r"(?:python3? -m |`)bench ([a-z]+)"))
def test_every_command_shown_is_one(where, command):
    assert command in subcommands(), f"{where} shows `bench {command}`, which is no subcommand"


@pytest.mark.parametrize("where, module", shown(r"python3? -m (bench(?:\.\w+)+)"))
def test_every_module_run_is_one(where, module):
    assert importlib.util.find_spec(module) is not None, f"{where} runs `python -m {module}`, which is not there"


@pytest.mark.parametrize("where", TEXTS)
def test_every_option_named_is_one(where):
    known = set().union(*subcommands().values()) | CONFTEST | QUOTED | SETUP | FLOOR
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", TEXTS[where]))
    unknown = sorted(o for o in named if o not in known and not o.startswith(PLUGIN))
    assert not unknown, f"{where} names options nothing takes: {unknown}"


def test_the_readme_fits_a_screen():
    lines = README.splitlines()
    block = lines[lines.index(START) : lines.index(END) + 1]
    assert len(lines) <= LIMIT, f"README.md has {len(lines)} lines, more than {LIMIT}"
    assert len(lines) - len(block) <= OUTSIDE_BLOCK, f"README.md has {len(lines) - len(block)} lines outside the block"


def test_a_link_to_the_full_results_follows_the_block():
    after = README.split(END, 1)[1].lstrip("\n").splitlines()[0]
    assert "(results/README.md)" in after and "(docs/results.md)" in after


def index() -> list[str]:
    """The docs the README's *Documentation* section links to."""
    section = README.split("\n## Documentation\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"\]\((docs/[^)#]+)\)", section)


def test_the_docs_index_lists_every_docs_file_and_only_those():
    listed = index()
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(DOCS), "the README's docs index and docs/ differ"
    assert [f"docs/{name}.md" for name in REQUIRED if f"docs/{name}.md" not in DOCS] == []


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # a '#' comment in a code block is no heading
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def links() -> list[tuple[str, str]]:
    """Every relative Markdown link of the README and docs/: (where, target)."""
    found = []
    for where, text in TEXTS.items():
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        found += [(where, t) for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]
    return sorted(set(found))


@pytest.mark.parametrize("where, target", links())
def test_every_link_leads_somewhere(where, target):
    path, _, anchor = target.partition("#")
    file = (ROOT / where).parent / path if path else ROOT / where
    assert file.exists(), f"{where} links to {target}, which is not there"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file.read_text()), f"{where} links to {target}: no such heading"


def written(text: str) -> str:
    """The text less the block `bench run` writes (its machine line names the commit it timed)."""
    if START in text:
        text = text.split(START, 1)[0] + text.split(END, 1)[1]
    return text


def history(text: str) -> list[str]:
    """What only a history holds: paths under /tmp (a run someone made once), commit hashes given as
    evidence, a session's story."""
    found = re.findall(r"\S*/tmp/\S*", text)
    found += [h for h in re.findall(r"\b[0-9a-f]{7,40}\b", text) if re.search(r"[a-f]", h) and re.search(r"\d", h)]
    return found + re.findall(r"\bsessions? \d+", text, flags=re.I)


@pytest.mark.parametrize("where", TEXTS)
def test_no_history(where):
    assert history(written(TEXTS[where])) == [], f"{where} tells a history"


def test_the_checks_see_what_they_look_for():
    story = "Session 7 ran `bench run --out /tmp/pA` at 22e6dcd, 1.0010000000475 s, beside deadbeef."
    assert history(story) == ["/tmp/pA`", "22e6dcd", "Session 7"]
    assert history(written(f"a\n{START}\nCommit 68b4c43de870.\n{END}\nb")) == []
    assert slug("How the timing is kept fair") == "how-the-timing-is-kept-fair"
    assert slug("pytest --benchmark-only") == "pytest---benchmark-only"
    assert slug("The environment in results.json") == "the-environment-in-resultsjson"
