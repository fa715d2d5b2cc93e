"""Throughput of sandboxed grading: a synthetic class graded end to end, as `make autograde` does.

    python -m qa.bench_autograde [--students 30] [--jobs N] [--runs 1] [--no-stock] [names...]
    python -m qa.bench_autograde --quick     # CI: 3 students of 71 and 75; exit 1 on any error

Every assignment gets --students submissions, in turn right (the solution's answers), mixed (one
of the corpus's packed submissions: wrong answers in some exercises, right ones elsewhere) and
blank (the release notebook as handed out). They are graded by coursetools.grading.autograde.autograde with
--jobs workers, one bubblewrap sandbox each, into a scratch course under build/.

Prints, per assignment, the sandboxed grading time of one submission (median, from the records
the grader writes; right/mixed/blank) next to the time of executing that notebook alone
(coursetools.build.execute_notebook: a fresh kernel, as Restart & Run All), then the wall time of
the whole class, seconds per submission, and the time that rate gives for 700 submissions
(100 students x 7 assignments). Then the same submissions are graded by stock nbgrader (a course
with nbgrader's default configuration: `nbgrader autograde`, one assignment after the other, its
own Execute in one kernel per submission) and the time ratio is printed, with whether every score
is the same. A benchmark, not a test: it prints numbers; --quick exits 1 when grading fails, a
submission is flagged or a score differs from stock nbgrader's.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from coursetools.common import ROOT, assignments, make_scratch_course, nbgrader, nbgrader_meta, source_notebook
from .corpus import load, solution_answers, submissions, write_submission

KINDS = ("right", "mixed", "blank")


def build_class(course: Path, names: list[str], students: int) -> dict[tuple[str, str], str]:
    """Write the synthetic submissions; returns {(assignment, student): kind}."""
    kinds = {}
    for name in names:
        packed = [{k: e.source for k, e in chosen.items()} for chosen in submissions(name, load(name))]
        for i in range(students):
            student, kind = f"s{i + 1:03d}", KINDS[i % len(KINDS)]
            answers = {"right": solution_answers(name), "blank": {},
                       "mixed": packed[(i // len(KINDS)) % len(packed)]}[kind]
            write_submission(course, student, name, answers)
            kinds[(name, student)] = kind
    return kinds


STOCK_CONFIG = """c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "neural-engine-unit00"
c.CourseDirectory.db_url = "sqlite:///" + {db!r}
c.Execute.timeout = 60
"""


def stock_grading(workdir: Path, graded_course: Path, names: list[str]) -> tuple[float, dict]:
    """The same submissions graded by stock nbgrader, serially; (seconds, scores)."""
    from coursetools.demo import collect_scores

    course = workdir / "stock"
    shutil.rmtree(course, ignore_errors=True)
    course.mkdir(parents=True)
    shutil.copytree(ROOT / "source", course / "source")
    shutil.copytree(graded_course / "submitted", course / "submitted")
    (course / "nbgrader_config.py").write_text(STOCK_CONFIG.format(root=str(course), db=str(course / "gradebook.db")),
                                               encoding="utf-8")
    for name in names:
        nbgrader(["generate_assignment", name, "--force"], course)
    start = time.perf_counter()
    for name in names:
        nbgrader(["autograde", name, "--force"], course)
    return time.perf_counter() - start, collect_scores(course)


def notebook_alone(name: str, runs: int) -> float:
    from coursetools.build import execute_notebook

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        execute_notebook(source_notebook(name))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    from coursetools.grading import sandbox
    from coursetools.grading.autograde import autograde

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=30, help="submissions per assignment")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=1, help="runs of each notebook alone (median)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "bench-autograde")
    parser.add_argument("--no-stock", action="store_true", help="skip grading the class with stock nbgrader")
    parser.add_argument("--quick", action="store_true", help="3 students of 71 and 75, one run; exit 1 on any error")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if args.quick:
        args.students, args.runs = 3, 1
        args.names = args.names or ["71_chain_rule", "75_training_loop"]
    ok, why = sandbox.available()
    if not ok:
        print(f"cannot benchmark sandboxed grading: {why}", file=sys.stderr)
        return 2
    names = args.names or assignments()
    workdir = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    course = make_scratch_course(workdir)
    kinds = build_class(course, names, args.students)
    for name in names:
        nbgrader(["generate_assignment", name, "--force"], course)
    print(f"{len(kinds)} submissions ({args.students} per assignment, {', '.join(KINDS)} in turn), "
          f"{args.jobs} at a time, {os.cpu_count()} cores; {sandbox.limits()}", flush=True)
    start = time.perf_counter()
    reviews, _ = autograde(course, names, jobs=args.jobs)
    wall = time.perf_counter() - start
    from coursetools.demo import collect_scores
    ours = collect_scores(course)
    print(f"\n{'assignment':<26}{'alone s':>9}" + "".join(f"{k + ' s':>10}" for k in KINDS) + f"{'max s':>8}")
    for name in names:
        seconds = {k: [] for k in KINDS}
        for (assignment, student), kind in kinds.items():
            record = course / "build" / "sandbox" / assignment / f"{student}.json"
            if assignment == name and record.is_file():
                seconds[kind].append(json.loads(record.read_text(encoding="utf-8"))["seconds"])
        every = [s for k in KINDS for s in seconds[k]]
        print(f"{name:<26}{notebook_alone(name, args.runs):>9.2f}"
              + "".join(f"{statistics.median(seconds[k]):>10.2f}" if seconds[k] else f"{'-':>10}" for k in KINDS)
              + f"{max(every, default=0):>8.2f}", flush=True)
    per = wall / max(1, len(kinds))
    print(f"\nclass of {len(kinds)} graded in {wall:.0f} s wall: {per:.2f} s per submission "
          f"(sandbox + grader + nbgrader, {args.jobs} jobs); 700 submissions at this rate: {700 * per / 60:.1f} min")
    if reviews:
        print(f"{len(reviews)} submission(s) flagged for review (a synthetic class should have none):")
        for r in reviews[:10]:
            print(f"  {r.student} {r.assignment}: {r.reason[:200]}")
    different = []
    if not args.no_stock:
        stock_wall, stock = stock_grading(workdir, course, names)
        print(f"stock nbgrader (its default Execute, serial) on the same submissions: {stock_wall:.0f} s, "
              f"{stock_wall / max(1, len(kinds)):.2f} s per submission; ours / stock = {wall / stock_wall:.2f}")
        cells = [(s, a, g) for s in kinds_students(kinds) for a in names
                 for g in sorted(set(ours.get(s, {}).get(a, {})) | set(stock.get(s, {}).get(a, {})))
                 if ours.get(s, {}).get(a, {}).get(g) != stock.get(s, {}).get(a, {}).get(g)]
        stderr_rule = [c for c in cells if stock_zeroed_for_stderr(workdir / "stock", *c)]
        different = [c for c in cells if c not in stderr_rule]
        print("scores: " + ("identical for every submission and cell" if not cells else
                            f"{len(cells)} cell(s) differ, {len(different)} unexplained"))
        if stderr_rule:
            print(f"  {len(stderr_rule)} passing test cell(s) that also wrote to stderr (a NumPy warning of the "
                  f"student's code) get 0 from stock nbgrader, which zeroes any graded cell with stderr output; "
                  f"the course keeps their points (KeepPointsOnStderr): {stderr_rule[:5]}")
        for student, assignment, grade_id in different[:10]:
            print(f"  {student} {assignment} {grade_id}: ours {ours.get(student, {}).get(assignment, {}).get(grade_id)}, "
                  f"stock {stock.get(student, {}).get(assignment, {}).get(grade_id)}")
    return 1 if args.quick and (reviews or different) else 0


def stock_zeroed_for_stderr(stock_course: Path, student: str, assignment: str, grade_id: str) -> bool:
    """Did stock nbgrader give this cell 0 only because it wrote to stderr (no error output)?"""
    import nbformat

    path = stock_course / "autograded" / student / assignment / f"{assignment}.ipynb"
    if not path.is_file():
        return False
    for cell in nbformat.read(path, as_version=4).cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            kinds = [(o.get("output_type"), o.get("name")) for o in cell.get("outputs", [])]
            return ("stream", "stderr") in kinds and not any(k == "error" for k, _ in kinds)
    return False


def kinds_students(kinds: dict) -> list[str]:
    return sorted({student for _, student in kinds})


if __name__ == "__main__":
    sys.exit(main())
