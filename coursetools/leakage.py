"""Prove that no solution and no hidden test reaches the student editions.

A student notebook leaks if it contains an nbgrader region marker, or any line that appears
only inside a solution region or a hidden-test region of the source notebook.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from .common import ROOT, assignments, release_notebook, source_notebook

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
KINDS = ("SOLUTION", "HIDDEN TESTS")


def region_pattern(kinds=KINDS):
    """Matches a whole `### BEGIN <kind>` ... `### END <kind>` region; group 2 is its body."""
    alternatives = "|".join(re.escape(kind) for kind in kinds)
    return re.compile(rf"^[ \t]*### BEGIN ({alternatives})[ \t]*\n(.*?)^[ \t]*### END \1[ \t]*$",
                      re.MULTILINE | re.DOTALL)
MIN_LEN = 8  # shorter lines ("else:", "return y") carry no solution on their own


def _sources(nb) -> list[str]:
    return [cell.source for cell in nb.cells]


def secret_lines(source_nb, kinds=KINDS) -> set[str]:
    """Lines that exist only inside the given kinds of regions (default: solutions and hidden tests)."""
    region = region_pattern(kinds)
    secret, public = set(), set()
    for text in _sources(source_nb):
        inside = {line.strip() for m in region.finditer(text) for line in m.group(2).splitlines()}
        outside = {line.strip() for line in region.sub("", text).splitlines()}
        secret |= inside
        public |= outside
    return {line for line in secret - public if len(line) >= MIN_LEN and not line.startswith("#")}


def find_leaks(student_path: Path, secrets: set[str]) -> list[str]:
    nb = nbformat.read(student_path, as_version=4)
    problems = []
    for index, text in enumerate(_sources(nb)):
        for marker in MARKERS:
            if marker in text:
                problems.append(f"{student_path}: cell {index} contains the marker '{marker}'")
        for line in text.splitlines():
            if line.strip() in secrets:
                problems.append(f"{student_path}: cell {index} contains a secret line: {line.strip()!r}")
    return problems


def student_editions(name: str, root: Path) -> list[Path]:
    return [release_notebook(name, root), root / "notebooks" / f"{name}.ipynb"]


def check(root: Path = ROOT, source_root: Path = ROOT) -> list[str]:
    """All leaks in release/ and notebooks/ under root, judged against source/ under source_root."""
    problems = []
    for name in assignments(source_root):
        secrets = secret_lines(nbformat.read(source_notebook(name, source_root), as_version=4))
        for path in student_editions(name, root):
            if not path.is_file():
                problems.append(f"{path}: missing (run `make release`)")
            else:
                problems.extend(find_leaks(path, secrets))
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print("LEAK:", problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} leak(s): the student editions must not contain solutions or hidden tests",
              file=sys.stderr)
        return 1
    print(f"leakage check: {len(assignments())} assignment(s), no solution or hidden test in the student editions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
