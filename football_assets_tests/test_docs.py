"""The docs tell the truth: every command block of README.md, CONTRIBUTING.md and docs/*.md
runs as written in a new shell, or names the test (or script) that runs it; every local link
leads to a file, and to a heading when it names one."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[^\s`]*)")
COVERED_BY = re.compile(r"^\s*<!--\s*covered-by:\s*(?P<names>.+?)\s*-->\s*$")
# Commands a test must never run: installs, servers that run until Ctrl-C, the cloud, Docker,
# the suite itself and the 20-minute benchmark. A block holding one must name its test.
NEVER_RUN = re.compile(
    r"\bpip install\b|\bdg dev\b|\bdagster dev\b|\bfootball-assets ui\b|\bdagster-webserver\b"
    r"|\bdagster-daemon\b|\bdocker\b|\baws\b|\bcfn-lint\b|\bpytest\b|\bbenchmarks\.run\b"
    r"|\.ci/run\b"
)
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
# What a shell keeps of the checkout: everything but installs, caches and what commands write.
NOT_COPIED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "output",
    "test-output",
    ".dagster_home",
    ".football",
    ".env",
    "__pycache__",
    "*.egg-info",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
)


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    covered_by: tuple[str, ...]

    @property
    def where(self) -> str:
        if self.doc.is_relative_to(ROOT):
            return f"{self.doc.relative_to(ROOT).as_posix()}:{self.line}"
        docs = self.doc.parent.name == "docs"  # a made-up checkout
        return f"{'docs/' if docs else ''}{self.doc.name}:{self.line}"

    @property
    def commands(self) -> str:
        """What a user types: a console block's `$ ` lines, any other shell block whole."""
        if self.lang != "console":
            return self.text
        return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ "))


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", root / "CONTRIBUTING.md", *sorted((root / "docs").glob("*.md"))]


def blocks(doc: Path) -> list[Block]:
    """Every fenced block of `doc`, with the covered-by names of the comment right above it."""
    found: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j].lstrip())
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        comment = COVERED_BY.match(lines[k]) if k >= 0 else None
        names = tuple(n.strip() for n in comment["names"].split(",")) if comment else ()
        found.append(Block(doc, i + 1, opening["lang"].lower(), "\n".join(body) + "\n", names))
        i = j + 1
    return found


def shell_blocks(root: Path = ROOT) -> list[Block]:
    return [b for doc in documents(root) for b in blocks(doc) if b.lang in SHELL]


def _without_comment(line: str) -> str:
    return re.sub(r"(^|\s)#.*$", "", line).strip()


def coverage_problems(block: Block, root: Path = ROOT) -> list[str]:
    """Why the names above `block` do not cover it: a file or a test that does not exist, or a
    script that lacks one of the block's lines."""
    problems = []
    for name in block.covered_by:
        path, _, test = name.partition("::")
        source = root / path
        if not source.is_file():
            problems.append(f"{block.where}: covered-by {name}: no file {path}")
        elif test:
            text = source.read_text(encoding="utf-8")
            if not re.search(rf"^\s*(async\s+)?def {re.escape(test)}\(", text, re.MULTILINE):
                problems.append(f"{block.where}: covered-by {name}: {path} has no {test}")
        else:
            script = {_without_comment(x) for x in source.read_text(encoding="utf-8").splitlines()}
            for line in block.commands.splitlines():
                if _without_comment(line) and _without_comment(line) not in script:
                    problems.append(f"{block.where}: covered-by {path}, which lacks `{line}`")
    return problems


def block_problems(root: Path = ROOT) -> list[str]:
    problems = []
    for doc in documents(root):
        for block in blocks(doc):
            if not block.lang:
                problems.append(f"{block.where}: a fence without a language (```text for output)")
    for block in shell_blocks(root):
        if block.covered_by:
            problems += coverage_problems(block, root)
        elif NEVER_RUN.search(block.commands):
            problems.append(f"{block.where}: not to be run by a test, so it must name its test")
    return problems


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation gone, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    text = "\n".join(_outside_code(doc.read_text(encoding="utf-8"), blank_spans=False))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def _outside_code(text: str, *, blank_spans: bool = True) -> Iterator[str]:
    """The lines outside fenced blocks (blank inside them, so numbers hold), with inline code
    spans blanked unless told otherwise."""
    fence = ""
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence:
            if line.strip().startswith(fence):
                fence = ""
            yield ""
            continue
        if opening:
            fence = opening["fence"]
            yield ""
            continue
        yield re.sub(r"`[^`]*`", "``", line) if blank_spans else line


def link_problems(root: Path = ROOT) -> list[str]:
    problems = []
    for doc in documents(root):
        for number, line in enumerate(_outside_code(doc.read_text(encoding="utf-8")), 1):
            for match in LINK.finditer(line):
                target = match["target"]
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    continue
                path, _, anchor = target.partition("#")
                goal = (doc.parent / path).resolve() if path else doc
                name = f"{doc.relative_to(root)}:{number}: link {target}"
                if not goal.exists():
                    problems.append(f"{name}: no such file")
                elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
                    problems.append(f"{name}: no heading #{anchor} in {goal.name}")
    return problems


# --- the checks that need no process --------------------------------------------------------


def test_every_command_block_runs_or_names_its_test() -> None:
    assert shell_blocks(), "no command blocks found: the parser is broken"
    assert block_problems() == []


def test_every_local_link_leads_somewhere() -> None:
    assert link_problems() == []


def test_the_checks_catch_a_dangling_name_a_bare_fence_and_a_dead_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "run.sh").write_text("make all\n", encoding="utf-8")
    (tmp_path / "CONTRIBUTING.md").write_text("# Contributing\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "# Title\n\n"
        "<!-- covered-by: football_assets_tests/test_cli.py::test_no_such_test -->\n"
        "```bash\nfootball-assets refresh\n```\n\n"
        "<!-- covered-by: run.sh -->\n```bash\nmake all   # fine\nmake install\n```\n\n"
        "```\nfootball-assets status\n```\n\n"
        "```bash\npip install -e .\n```\n\n"
        "[gone](docs/gone.md), [here](README.md#title), [nowhere](README.md#no-such-heading)\n",
        encoding="utf-8",
    )
    (tmp_path / "football_assets_tests").mkdir()
    (tmp_path / "football_assets_tests" / "test_cli.py").write_text(
        "def test_real() -> None:\n    pass\n", encoding="utf-8"
    )

    problems = block_problems(tmp_path)
    assert any("has no test_no_such_test" in p for p in problems), problems
    assert any("lacks `make install`" in p for p in problems), problems
    assert not any("make all" in p for p in problems), problems
    assert any("a fence without a language" in p for p in problems), problems
    assert any("must name its test" in p for p in problems), problems
    links = link_problems(tmp_path)
    assert links == [
        "README.md:22: link docs/gone.md: no such file",
        "README.md:22: link README.md#no-such-heading: no heading #no-such-heading in README.md",
    ]


def test_headings_become_githubs_anchors() -> None:
    assert slug("`football-assets status`: what is there, and how old") == (
        "football-assets-status-what-is-there-and-how-old"
    )
    assert slug("Dagster's own CLI: `dg` (and `dagster`)") == "dagsters-own-cli-dg-and-dagster"


# --- the blocks, run ------------------------------------------------------------------------


def user_shell(home: Path) -> dict[str, str]:
    """A new login's environment: this virtualenv on PATH (as after `. .venv/bin/activate`),
    a fresh home and state folder, and none of this process's settings."""
    venv_bin = Path(sys.executable).parent
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "LANG": "C.UTF-8",
        "VIRTUAL_ENV": str(venv_bin.parent),
    }


def checkout_copy(where: Path) -> Path:
    """The checkout as a user has it after the install: its files and its `.venv`."""
    work = where / "football_assets"
    shutil.copytree(ROOT, work, ignore=NOT_COPIED, symlinks=True)
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return work


def run_block(block: Block, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`block` in a new bash that stops at the first failing command; killed with its process
    group if it outlives ten minutes (a server that does not stop)."""
    process = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", block.commands],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def failure(block: Block, result: subprocess.CompletedProcess[str]) -> str:
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
    return f"{block.where}: exit {result.returncode}\n{block.commands}--- last lines:\n{tail}"


REFRESH = "football-assets refresh\n"
RUNNABLE = {
    doc.relative_to(ROOT).as_posix(): [
        b for b in shell_blocks() if b.doc == doc and not b.covered_by
    ]
    for doc in documents()
}


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d, found in RUNNABLE.items() if found])
def test_each_documents_commands_run_as_written_in_a_new_shell(doc: str, tmp_path: Path) -> None:
    """A reader following one page top to bottom in one checkout, each block in a new shell.
    The pages under docs/ start where the README's Start left off: after one refresh."""
    work = checkout_copy(tmp_path)
    env = user_shell(tmp_path / "home")
    (tmp_path / "home").mkdir()
    start = [] if doc == "README.md" else [Block(ROOT / "README.md", 0, "bash", REFRESH, ())]
    try:
        for block in [*start, *RUNNABLE[doc]]:
            result = run_block(block, work, env)
            assert result.returncode == 0, failure(block, result)
    finally:
        # The embedded PostgreSQL the commands may have started in this copy.
        stop = Block(ROOT / doc, 0, "bash", "football-assets db stop\n", ())
        run_block(stop, work, env)


@pytest.mark.slow
def test_a_wrong_command_fails_its_block(tmp_path: Path) -> None:
    work = checkout_copy(tmp_path)
    env = user_shell(tmp_path)
    wrong = Block(ROOT / "README.md", 1, "bash", "football-assets refrsh\necho reached\n", ())
    result = run_block(wrong, work, env)
    assert result.returncode != 0
    assert "reached" not in result.stdout  # the block stopped at the wrong command
    assert "README.md:1: exit" in failure(wrong, result)


@pytest.mark.slow
def test_the_documented_lanes_select_tests() -> None:
    """CONTRIBUTING.md's lanes: each marker expression collects tests, and fewer than all."""
    env = user_shell(Path(os.environ.get("HOME", "/tmp")))
    counts = {}
    for lane in ("", "not slow", "not browser"):
        args = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        result = subprocess.run(
            [*args, *(["-m", lane] if lane else [])],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        counts[lane] = int(
            re.findall(r"(\d+)(?:/\d+)? tests? (?:collected|selected)", result.stdout)[-1]
        )
    assert 0 < counts["not slow"] < counts[""]
    assert 0 < counts["not browser"] < counts[""]
