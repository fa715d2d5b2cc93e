"""Autograde a real class and say which submissions need a human.

    python -m coursetools.grade [--course DIR] [--unsandboxed] [assignments...]

Runs `nbgrader autograde` for every assignment that has submissions (or the ones named). Every
submission is executed by nbgrader_plugins.SandboxedExecute: the student's cells in a bubblewrap
sandbox of its own, the test cells in the grader (coursetools.judge). Without bubblewrap this
stops with a message, unless --unsandboxed is given.

Afterwards it reports, per student, every submission that needs a look instead of letting it show
up as a silent 0 in grades.csv:
- the expected notebook is missing (e.g. renamed by the browser to "73_backprop_scalar (1).ipynb"),
  is not valid notebook JSON (truncated upload), or has copy-pasted graded cells;
- the gradebook has no autograded scores for it (whether it was graded is read from the gradebook,
  never from nbgrader's log);
- its sandbox was stopped and restarted (os._exit, a crash, the memory limit, a cell or the
  submission over its time limit): it was graded, the cells concerned scored 0.
Then the red flags of coursetools.redflags. Names and text from submissions are printed with
control characters escaped. Exit status 0 when nothing needs a human, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .common import ROOT, nbgrader_meta, venv_env


@dataclass
class Review:
    student: str
    assignment: str
    reason: str


def printable(text: str, limit: int = 200) -> str:
    """Text from a submission, safe for the instructor's terminal (no escape sequences)."""
    text = str(text)[:limit]
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"
                   for ch in text)


def check_files(course: Path, assignment: str) -> list[Review]:
    """Submissions whose notebook nbgrader cannot even open."""
    found = []
    for folder in sorted((course / "submitted").glob(f"*/{assignment}")):
        student, expected = folder.parent.name, folder / f"{assignment}.ipynb"
        if not expected.is_file():
            others = sorted(p.name for p in folder.glob("*.ipynb"))
            hint = f"; found {', '.join(others)} (rename it to {expected.name} and grade again)" if others else ""
            found.append(Review(student, assignment, f"no {expected.name} in the submission{hint}"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nbformat warns about (and renumbers) duplicate cell ids
                nb = nbformat.read(expected, as_version=4)
        except Exception as error:  # noqa: BLE001 - any unreadable file is a finding
            found.append(Review(student, assignment, f"{expected.name} is not a readable notebook "
                                                     f"(truncated upload?): {type(error).__name__}"))
            continue
        ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade_id")]
        copies = sorted({i for i in ids if ids.count(i) > 1})
        if copies:
            found.append(Review(student, assignment, f"graded cells copy-pasted (duplicate ids {', '.join(copies)}): "
                                                     "nbgrader cannot grade it; delete the copies and grade again"))
    return found


def graded_in_gradebook(course: Path, assignment: str) -> set[str]:
    """Students whose notebook of this assignment has autograded scores in the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    graded = set()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return graded
        for submission in submissions:
            grades = [g for nb in submission.notebooks for g in nb.grades
                      if getattr(g.cell, "cell_type", "code") == "code"]
            if grades and all(g.auto_score is not None for g in grades):
                graded.add(submission.student.id)
    return graded


def autograde(course: Path, names: list[str] | None = None, unsandboxed: bool = False,
              extra_args: list[str] | None = None) -> tuple[list[Review], str]:
    """Autograde; returns (submissions that need review, nbgrader's log)."""
    course = Path(course).resolve()
    names = names or sorted({p.name for p in (course / "submitted").glob("*/*") if p.is_dir()})
    records = course / "build" / "sandbox"
    env = venv_env(NEURAL_ENGINE_RECORDS=str(records))
    if unsandboxed:
        env["NEURAL_ENGINE_UNSANDBOXED"] = "1"
    reviews, logs = [], []
    for name in names:
        reviews += check_files(course, name)
        shutil.rmtree(records / name, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", name, "--force", *(extra_args or [])],
                              cwd=course, env=env, text=True, capture_output=True)
        log = proc.stdout + proc.stderr
        logs.append(log)
        if "while loading config" in log:
            raise RuntimeError(f"nbgrader autograde {name} failed before grading anyone:\n{log[-4000:]}")
        if "no sandbox for grading" in log:
            raise RuntimeError("no sandbox for grading: install bubblewrap (make sandbox-deps), "
                               "or grade with --unsandboxed / UNSANDBOXED=1")
        flagged = {(r.student, r.assignment) for r in reviews}
        graded = graded_in_gradebook(course, name)
        for folder in sorted((course / "submitted").glob(f"*/{name}")):
            student = folder.parent.name
            if (student, name) in flagged:
                continue
            record_path = records / name / f"{student}.json"
            record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
            if student not in graded or not (course / "autograded" / student / name / f"{name}.ipynb").is_file():
                reviews.append(Review(student, name, "not graded: the gradebook has no autograded scores for it "
                                                     "(see build/autograde.log)"))
            elif record.get("events"):
                reviews.append(Review(student, name, "graded, but its sandbox was stopped and restarted: "
                                      + "; ".join(record["events"])[:300]))
    return reviews, "\n".join(logs)


def main(argv: list[str] | None = None) -> int:
    from . import sandbox
    from .redflags import scan

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=ROOT)
    parser.add_argument("--unsandboxed", action="store_true",
                        help="grade without a sandbox (student code runs with your rights; verdicts are still "
                             "decided outside the student's process)")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if not (args.course / "submitted").is_dir():
        print(f"no submitted/ folder in {args.course}: collect the submissions first "
              "(nbgrader collect, or copy them to submitted/<student>/<assignment>/)", file=sys.stderr)
        return 2
    ok, why = sandbox.available()
    if not ok and not args.unsandboxed:
        print(f"cannot grade: {why}.\nGrading runs every submission in a sandbox. To grade without one anyway "
              "(student code then runs with your rights), use: make autograde UNSANDBOXED=1", file=sys.stderr)
        return 2
    print(f"sandbox: {'none (--unsandboxed)' if args.unsandboxed else why}; {sandbox.limits()}")
    reviews, log = autograde(args.course, args.names, unsandboxed=args.unsandboxed)
    (args.course / "build").mkdir(exist_ok=True)
    (args.course / "build" / "autograde.log").write_text(log, encoding="utf-8")
    flags = [f for f in scan(args.course / "submitted") if not args.names or f.assignment in args.names]
    if not reviews:
        print("every submission was autograded (nbgrader's log: build/autograde.log)")
    else:
        print(f"{len(reviews)} submission(s) need manual review:")
        for r in reviews:
            print(f"  {printable(r.student, 40):<16} {printable(r.assignment, 40):<26} {printable(r.reason, 400)}")
        print("nbgrader's log: build/autograde.log")
    if flags:
        print(f"red flags ({len(flags)}; look at them before releasing grades; `make redflags` lists them again):")
        for f in flags:
            print(f"  {printable(f.line(), 400)}")
    return 1 if reviews or flags else 0


if __name__ == "__main__":
    sys.exit(main())
