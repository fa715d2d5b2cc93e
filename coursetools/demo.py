"""The instructor's main job, on the sample class in examples/, in a scratch course.

    python -m coursetools.demo [--workdir build/demo]

Steps: import examples/students.csv (names), generate the assignments (fills the gradebook), copy
examples/submitted/ in, autograde,
generate feedback, export grades.csv, print a score table per student and assignment.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

from nbgrader.api import Gradebook

from .common import ROOT, make_scratch_course, nbgrader


def submitted_assignments(course: Path) -> list[str]:
    return sorted({p.name for p in (course / "submitted").glob("*/*") if p.is_dir()})


def collect_scores(course: Path) -> dict:
    """{student: {assignment: {grade_id: score}}} read back from the gradebook."""
    scores: dict = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in sorted(s.id for s in gb.students):
            for name in submitted_assignments(course):
                try:
                    nb = gb.find_submission_notebook(name, name, student)
                except Exception:
                    continue  # this student did not submit this assignment
                cells = {grade.name: float(grade.score or 0.0) for grade in nb.grades}
                scores.setdefault(student, {})[name] = cells
    return scores


def max_scores(course: Path) -> dict:
    """{assignment: {grade_id: max_score}} from the gradebook."""
    result = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name in submitted_assignments(course):
            notebook = gb.find_notebook(name, name)
            result[name] = {cell.name: float(cell.max_score) for cell in notebook.grade_cells}
    return result


def run_demo(workdir: Path, examples: Path = ROOT / "examples", verbose: bool = True,
             only: list[str] | None = None) -> dict:
    """Autograde examples/submitted (or only some assignments) in a fresh scratch course at workdir."""
    shutil.rmtree(workdir, ignore_errors=True)
    course = make_scratch_course(workdir)
    shutil.copytree(examples / "submitted", course / "submitted")
    for folder in (course / "submitted").glob("*/*"):
        if only is not None and folder.name not in only:
            shutil.rmtree(folder)
    names = submitted_assignments(course)
    say = print if verbose else (lambda *a, **k: None)
    if (examples / "students.csv").is_file():  # names for the formgrader and grades.csv
        nbgrader(["db", "student", "import", str(examples / "students.csv")], course)
    log = []
    for name in names:
        start = time.perf_counter()
        nbgrader(["generate_assignment", name, "--force"], course)
        for step in ("autograde", "generate_feedback"):
            proc = nbgrader([step, name, "--force"], course)
            log.append(proc.stdout + proc.stderr)
        say(f"autograded and fed back {name} in {time.perf_counter() - start:.1f} s")
    nbgrader(["export", "--to", str(course / "grades.csv")], course)
    return {"course": course, "scores": collect_scores(course), "max": max_scores(course), "log": "\n".join(log)}


def format_table(scores: dict, maxima: dict) -> str:
    names = sorted(maxima)
    header = ["student"] + names + ["total"]
    rows = []
    for student, per in sorted(scores.items()):
        cells, got, top = [], 0.0, 0.0
        for name in names:
            if name in per:
                s, m = sum(per[name].values()), sum(maxima[name].values())
                cells.append(f"{s:g}/{m:g}")
                got, top = got + s, top + m
            else:
                cells.append("-")
        rows.append([student] + cells + [f"{got:g}/{top:g}"])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def format_cells(scores: dict, maxima: dict) -> str:
    lines = []
    for name in sorted(maxima):
        ids = list(maxima[name])
        lines.append(f"{name}: " + ", ".join(f"{i} ({maxima[name][i]:g})" for i in ids))
        for student, per in sorted(scores.items()):
            if name in per:
                lines.append(f"  {student:<10}" + "  ".join(f"{per[name].get(i, 0):g}" for i in ids))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "demo",
                        help="scratch course directory (deleted and recreated)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run_demo(args.workdir.resolve())
    course = result["course"]
    print()
    print("Scores per student and assignment:")
    print(format_table(result["scores"], result["max"]))
    print()
    print("Scores per graded cell:")
    print(format_cells(result["scores"], result["max"]))
    print()
    with open(course / "grades.csv", newline="", encoding="utf-8") as f:
        print(f"grades.csv: {sum(1 for _ in csv.DictReader(f))} rows  -> {course / 'grades.csv'}")
    print(f"feedback:   {course / 'feedback'}")
    print(f"demo finished in {time.perf_counter() - start:.1f} s (scratch course: {course})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
