"""Release order: a later assignment restates earlier answers (one engine), so it is released only
after the due dates of the assignments whose answers it restates.

    python -m coursetools.release_order                    # the table, as detected from the notebooks
    python -m coursetools.release_order release NAME [--force] [--course DIR]   (make release-assignment A=NAME)

RESTATES is the table (checked against the notebooks by tests/test_release_order.py): for each
assignment, the earlier exercises whose model answer its release contains in lecture cells (the
review cell that restates the engine, or lecture code that does the exercise's work). `detect()`
finds them: an exercise is restated when at least MIN_SHARE of the lines of its solution region
(whitespace normalised, comments and docstrings left out), and at least MIN_LINES of them, appear in
the later release outside its answer cells.

`release` refuses, with the reason, to run `nbgrader release_assignment NAME` while an assignment
whose answers NAME restates has no due date in the gradebook or a due date still ahead; --force
releases anyway. The self-study edition (notebooks/) contains every notebook and so every answer
that a later notebook restates.
"""
from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from .common import ROOT, assignments, is_answer_cell, nbgrader, nbgrader_meta, release_notebook, source_notebook

MIN_SHARE, MIN_LINES = 0.6, 3

RESTATES: dict[str, tuple[str, ...]] = {
    "73_backprop_scalar": ("72.1", "72.2"),
    "74_backprop_matrix": ("70.1",),
    "75_training_loop": ("74.2", "74.3", "74.4"),
    "76_gradient_pathology": ("74.2", "74.3", "75.1", "75.2", "75.3"),
}


def exercise_of(grade_id: str) -> str:
    """"ex75_2-answer" -> "75.2"."""
    match = re.match(r"ex(\d+)_(\d+)-", grade_id)
    return f"{int(match[1])}.{int(match[2])}" if match else grade_id


def assignment_of(exercise: str, names: list[str] | None = None) -> str:
    number = exercise.split(".")[0]
    return next(name for name in (names or assignments()) if name.startswith(number))


def _lines(text: str) -> list[str]:
    """Code lines, whitespace normalised, without comments, blank lines and docstrings."""
    text = re.sub(r'"""(?:.|\n)*?"""', "", text)
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0] if "#" in line and "'" not in line and '"' not in line else line
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            out.append(line)
    return out


def solution_lines(name: str, root: Path = ROOT) -> dict[str, list[str]]:
    """{exercise: the lines of its solution regions} of one source notebook."""
    out = {}
    for cell in nbformat.read(source_notebook(name, root), as_version=4).cells:
        if is_answer_cell(cell) and cell.cell_type == "code":
            regions = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, flags=re.S)
            out[exercise_of(nbgrader_meta(cell)["grade_id"])] = _lines("\n".join(regions))
    return out


def lecture_lines(name: str, root: Path = ROOT) -> set[str]:
    """The lines of a release notebook's code cells other than its answer cells."""
    found = set()
    for cell in nbformat.read(release_notebook(name, root), as_version=4).cells:
        if cell.cell_type == "code" and not is_answer_cell(cell):
            found.update(_lines(cell.source))
    return found


def detect(root: Path = ROOT) -> dict[str, dict[str, float]]:
    """{later assignment: {earlier exercise: share of its solution lines in the later release}}."""
    names = assignments(root)
    solutions = {name: solution_lines(name, root) for name in names}
    found: dict[str, dict[str, float]] = {}
    for i, later in enumerate(names[1:], start=1):
        lecture = lecture_lines(later, root)
        for earlier in names[:i]:
            for exercise, lines in solutions[earlier].items():
                hits = sum(1 for line in lines if line in lecture)
                if lines and hits >= MIN_LINES and hits / len(lines) >= MIN_SHARE:
                    found.setdefault(later, {})[exercise] = hits / len(lines)
    return found


def blockers(course: Path, name: str, now: datetime | None = None) -> list[str]:
    """Why NAME may not be released yet: one line per assignment whose answers it restates and whose
    due date is missing or still ahead (read from the course's gradebook)."""
    from nbgrader.api import Gradebook, MissingEntry

    now = now or datetime.now(timezone.utc)
    problems = []
    earlier = sorted({assignment_of(e) for e in RESTATES.get(name, ())})
    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}") as gb:
        for other in earlier:
            exercises = ", ".join(e for e in RESTATES[name] if assignment_of(e) == other)
            try:
                due = gb.find_assignment(other).duedate
            except MissingEntry:
                due = None
            if due is None:
                problems.append(f"{name} contains the answers of {exercises} ({other}), and {other} has no due date "
                                f"in the gradebook: set it first (formgrader, or nbgrader db assignment add {other} "
                                f"--duedate=...)")
                continue
            due_utc = due.replace(tzinfo=timezone.utc) if due.tzinfo is None else due
            if due_utc > now:
                problems.append(f"{name} contains the answers of {exercises} ({other}), which is due "
                                f"{due_utc:%Y-%m-%d %H:%M} UTC: release {name} after that")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    release = sub.add_parser("release", help="nbgrader release_assignment NAME, if the release order allows it")
    release.add_argument("name")
    release.add_argument("--force", action="store_true", help="release even though answers would be handed out")
    release.add_argument("--course", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    if args.command != "release":
        for later, found in sorted(detect().items()):
            listed = set(RESTATES.get(later, ()))
            for exercise, share in sorted(found.items()):
                mark = "" if exercise in listed else "   NOT IN RESTATES"
                print(f"{later:<26} restates {exercise:<6} ({share:.0%} of its solution lines){mark}")
        return 0
    problems = blockers(args.course, args.name)
    if problems and not args.force:
        print(f"not releasing {args.name}: it would hand out answers of assignments not yet due.", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        print(f"(release anyway: make release-assignment A={args.name} FORCE=1)", file=sys.stderr)
        return 1
    for line in problems:
        print(f"released although: {line}")
    nbgrader(["release_assignment", args.name, "--force"], args.course, quiet=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
