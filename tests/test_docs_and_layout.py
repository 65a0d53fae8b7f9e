"""What keeps the docs current and the layout plain: a short README, no commit hashes in prose, short
module docstrings, the benchmark table rendered from its data, no sys.path edits outside tests."""

from __future__ import annotations

import ast
import re
import subprocess

from bench import report
from devstack.procs import REPO

HEX = re.compile(r"\b[0-9a-f]{7,40}\b")


def tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, check=True, capture_output=True, text=True).stdout
    return [p for p in out.splitlines() if (REPO / p).is_file()]


def python_modules() -> list[str]:
    return [p for p in tracked("*.py") if not p.startswith("tools/")]


def module_docstring(path: str) -> str:
    return ast.get_docstring(ast.parse((REPO / path).read_text()), clean=False) or ""


def commits(tokens: set[str]) -> set[str]:
    """The tokens that name a commit of this repository."""
    ordered = sorted(tokens)
    out = subprocess.run(["git", "cat-file", "--batch-check"], cwd=REPO, input="".join(f"{t}^{{commit}}\n" for t in ordered),
                         capture_output=True, text=True, check=True).stdout
    return {t for t, line in zip(ordered, out.splitlines()) if not line.endswith("missing")}


def test_the_readme_is_read_in_ten_minutes():
    lines = (REPO / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; deeper material goes beside what it describes"


def test_no_markdown_file_or_docstring_names_a_commit():
    found = {}
    for path in tracked("*.md"):
        found.update({t: path for t in HEX.findall((REPO / path).read_text())})
    for path in python_modules():
        found.update({t: path for t in HEX.findall(module_docstring(path))})
    named = {t: found[t] for t in commits(set(found))}
    assert not named, f"commit hashes in prose: {named}"


def test_the_commit_check_finds_a_commit():
    head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    assert commits({head, "deadbeef0"}) == {head}


def test_module_docstrings_say_why_in_three_lines_at_most():
    long = {p: n for p in python_modules() if (n := len(module_docstring(p).strip().splitlines())) > 3}
    assert not long, long


def test_bench_and_scripts_do_not_edit_sys_path():
    edits = [p for p in tracked("bench/*.py", "scripts/*.py") if "sys.path" in (REPO / p).read_text()]
    assert not edits, edits


def test_the_benchmark_table_is_rendered_from_the_results_file():
    assert report.rendered_readme() == report.README.read_text(), "run `python -m bench.report` (make bench does)"
