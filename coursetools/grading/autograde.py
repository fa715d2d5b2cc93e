"""Autograde a real class and say which submissions need a human.

    python -m coursetools.grading.autograde [--course DIR] [--unsandboxed] [--jobs N] [assignments...]

Runs nbgrader's autograde (NbGraderAPI.autograde, the converter `nbgrader autograde` runs) for
every submission of the assignments that have submissions (or the ones named), --jobs at a time
(default: the cores this process may use), all writing to the one gradebook; one call grades
every assignment named, paying the workers' start-up once. Every submission is executed by
plugins.SandboxedExecute: the student's cells in a sandbox of their own, the test cells in
another (coursetools/grading/session.py). Before anyone is graded, a two-cell notebook is graded
the same way: if that fails (no bubblewrap, a runtime that does not start in a sandbox), this stops
with the reason, instead of scoring a whole class 0. --unsandboxed grades without sandboxes.

Afterwards it reports, per student, every submission that needs a look instead of letting it show
up as a silent 0 in grades.csv:
- the expected notebook is missing (e.g. renamed by the browser to "73_backprop_scalar (1).ipynb"),
  is not valid notebook JSON (truncated upload), or has copy-pasted graded cells;
- the gradebook has no autograded scores for it (whether it was graded is read from the gradebook,
  never from nbgrader's log);
- its sandbox was stopped and restarted (os._exit, a crash, the memory limit, a cell or the
  submission over its time limit): it was graded, the cells concerned scored 0;
- the grading worker died while grading it (three times): the others are graded all the same;
- it took more than SLOW times the assignment's median grading time (and SLOW_MARGIN seconds more).
- the gradebook disagrees with the grader: an autograded score that is not what the grader's
  verdict for that cell gives, or a manual score or extra credit that was not there before grading.
Then the red flags of coursetools/grading/redflags.py. Names and text from submissions are printed with
control characters escaped. Exit status 0 when nothing needs a human, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..common import ROOT, nbgrader_meta


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
            continue
        source = course / "source" / assignment / f"{assignment}.ipynb"
        if source.is_file():
            from .plugins import order_problem

            problem = order_problem(nb, nbformat.read(source, as_version=4))
            if problem:
                found.append(Review(student, assignment, f"not graded: {problem}"))
    return found


GradeKey = tuple  # (assignment, student, notebook, grade id)


def gradebook_state(course: Path, names: list[str]) -> dict[GradeKey, dict]:
    """Every grade of these assignments in the gradebook: auto/manual score, extra credit, max."""
    from nbgrader.api import Gradebook, MissingEntry

    state = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name in names:
            try:
                submissions = gb.find_assignment(name).submissions
            except MissingEntry:
                continue
            for submission in submissions:
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        state[(name, submission.student.id, notebook.name, grade.name)] = {
                            "auto": grade.auto_score, "manual": grade.manual_score, "extra": grade.extra_credit,
                            "max": grade.max_score, "code": getattr(grade.cell, "cell_type", "code") == "code"}
    return state


def graded(state: dict[GradeKey, dict]) -> set[tuple[str, str]]:
    """(assignment, student) whose code cells all have autograded scores in this gradebook state."""
    scores: dict[tuple[str, str], list] = {}
    for (assignment, student, _, _), grade in state.items():
        if grade["code"]:
            scores.setdefault((assignment, student), []).append(grade["auto"])
    return {key for key, autos in scores.items() if all(a is not None for a in autos)}


def check_gradebook(before: dict, after: dict, records: Path) -> list[Review]:
    """The gradebook after grading, checked against what the grader decided and the instructor set.

    Each autograded score must be the test cell's points if the grader's verdict (the record the
    grader wrote for the submission) was "passed", 0 otherwise; a manual score or extra credit
    must be what it was before grading (None for a new submission): only instructors set them.
    """
    found: dict[tuple[str, str], list[str]] = {}
    verdicts: dict[tuple[str, str], dict] = {}
    for key, grade in sorted(after.items()):
        assignment, student, notebook, grade_id = key
        problems = found.setdefault((student, assignment), [])
        old = before.get(key, {"manual": None, "extra": None})
        for field, label in (("manual", "manual score"), ("extra", "extra credit")):
            if grade[field] != old[field]:
                problems.append(f"{grade_id}: {label} {grade[field]!r} was not set by the instructor "
                                f"(before grading: {old[field]!r})")
        if not grade["code"]:
            continue
        if (student, assignment) not in verdicts:
            path = records / assignment / f"{student}.json"
            try:
                verdicts[(student, assignment)] = json.loads(path.read_text(encoding="utf-8")).get("verdicts", {})
            except (OSError, ValueError):
                verdicts[(student, assignment)] = {}
        verdict = verdicts[(student, assignment)].get(grade_id)
        if verdict is None:
            problems.append(f"{grade_id}: no verdict of the grader for this cell")
        elif grade["auto"] != (grade["max"] if verdict else 0):
            problems.append(f"{grade_id}: autograded score {grade['auto']!r}, but the grader decided "
                            f"{'passed' if verdict else 'failed'} (of {grade['max']:g})")
    return [Review(student, assignment, "gradebook check: " + "; ".join(problems)[:400])
            for (student, assignment), problems in found.items() if problems]


def submissions_of(course: Path, names: list[str]) -> list[tuple[str, str]]:
    """(assignment, student) of every submission folder of these assignments."""
    return [(name, folder.parent.name) for name in names
            for folder in sorted((course / "submitted").glob(f"*/{name}")) if folder.is_dir()]


# -- grading workers ---------------------------------------------------------------------------
_API = None
ATTEMPTS = 3          # a submission whose worker dies this many times is listed, not retried
SLOW, SLOW_MARGIN = 3.0, 10.0
WORKER_MEMORY = 4 << 30   # bytes of address space of a grading worker (nbgrader's process)


def _worker_start(course: str, overrides: dict) -> None:
    """A worker process: one NbGraderAPI with the course's config."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    global _API
    import resource

    # nbgrader's own memory (a submission's notebook, its outputs): bounded, so that an extreme
    # submission costs this worker (its task is listed) rather than the machine
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    warnings.filterwarnings("ignore", module="nbgrader")       # SQLAlchemy's autoflush notes from nbgrader.api
    warnings.filterwarnings("ignore", module="nbformat")       # cell ids that nbformat adds
    os.chdir(course)
    config = PyFileConfigLoader("nbgrader_config.py", path=course).load_config()
    # Workers write to one SQLite gradebook: wait for another worker's short write, never fail on it.
    config.CourseDirectory.db_url = f"sqlite:///{Path(course) / 'gradebook.db'}?timeout=300"
    config.merge(Config(overrides))
    _API = NbGraderAPI(config=config)


def _worker_grade(task: tuple[str, str]) -> str:
    """nbgrader's log of autograding one submission (whether it was graded is read from the gradebook)."""
    result = _API.autograde(*task, force=True, create=True)
    return result.get("log", "") + result.get("error", "")


def grade_all(course: Path, tasks: list, overrides: dict, jobs: int, grade=None) -> tuple[dict, list]:
    """Autograde tasks [(assignment, student)], jobs at a time; ({task: log}, [tasks whose worker died]).

    At most `jobs` tasks are handed to the workers at a time. A worker that dies (a crash in nbgrader,
    the machine's memory) breaks the pool: the tasks that were in flight are suspects, and each is
    graded again alone in a new pool, where a death names the task that caused it; a task is given up
    after ATTEMPTS deaths. Everyone else is graded all the same."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    logs: dict = {}
    deaths: dict = {task: 0 for task in tasks}
    lost: list = []
    queue, suspects = deque(tasks), deque()
    context = multiprocessing.get_context("spawn")
    while queue or suspects:
        alone = bool(suspects)
        source = suspects if alone else queue
        with ProcessPoolExecutor(1 if alone else max(1, min(jobs, len(queue))), mp_context=context,
                                 initializer=_worker_start, initargs=(str(course), overrides)) as pool:
            in_flight: dict = {}
            broken = False
            while (source or in_flight) and not broken:
                while source and len(in_flight) < (1 if alone else jobs):
                    task = source.popleft()
                    in_flight[pool.submit(grade or _worker_grade, task)] = task
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        logs[task] = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if alone:                          # graded alone: this task killed its worker
                            deaths[task] += 1
                            (lost if deaths[task] >= ATTEMPTS else suspects).append(task)
                        else:
                            suspects.append(task)
                    except Exception as error:  # noqa: BLE001 - nbgrader itself failed on this one
                        logs[task] = f"{type(error).__name__}: {error}"
            if broken:                                      # the others in flight died with the pool
                for task in in_flight.values():
                    if task not in logs:
                        (suspects if not alone else source).appendleft(task)
    return logs, lost


def slow_ones(records: Path, tasks: list, margin: float = SLOW_MARGIN) -> list[Review]:
    """Submissions that took more than SLOW times their assignment's median (and margin seconds more)."""
    import statistics

    seconds: dict = {}
    for assignment, student in tasks:
        try:
            record = json.loads((records / assignment / f"{student}.json").read_text(encoding="utf-8"))
            seconds[(assignment, student)] = float(record.get("seconds", 0))
        except (OSError, ValueError, TypeError):
            continue
    found = []
    for assignment in sorted({a for a, _ in seconds}):
        times = [t for (a, _), t in seconds.items() if a == assignment]
        median = statistics.median(times)
        for (a, student), t in sorted(seconds.items()):
            if a == assignment and t > SLOW * median and t > median + margin:
                found.append(Review(student, assignment, f"graded, but slowly: {t:.0f} s, the assignment's median "
                                                         f"is {median:.1f} s (a cell near its time limit?)"))
    return found


def autograde(course: Path, names: list[str] | None = None, unsandboxed: bool = False,
              overrides: dict | None = None, jobs: int = 1, slow_margin: float = SLOW_MARGIN) -> tuple[list[Review], str]:
    """Autograde every submission, `jobs` at a time (two sandboxes each); returns (reviews, log)."""
    from nbgrader.api import Gradebook

    from . import session

    course = Path(course).resolve()
    names = names or sorted({p.name for p in (course / "submitted").glob("*/*") if p.is_dir()})
    records = course / "build" / "sandbox"
    config = {"SandboxedExecute": {"records": str(records), "sandboxed": not unsandboxed}}
    for section, values in (overrides or {}).items():
        config.setdefault(section, {}).update(values)
    session.preflight(session.Settings(sandboxed=not unsandboxed))   # raises sandbox.NoSandbox, saying why
    reviews: list[Review] = []
    for name in names:
        reviews += check_files(course, name)
    flagged = {(r.student, r.assignment) for r in reviews}
    tasks = [t for t in submissions_of(course, names) if (t[1], t[0]) not in flagged]
    for name in names:
        shutil.rmtree(records / name, ignore_errors=True)
    before = gradebook_state(course, names)
    # Students are added to the gradebook here, once, so that two workers never race to add one.
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        known = {s.id for s in gb.students}
        for student in sorted({t[1] for t in tasks} - known):
            gb.add_student(student)
    logs, lost = grade_all(course, tasks, config, jobs)
    log = "\n".join(f"=== {a} / {printable(s, 40)} ===\n{logs.get((a, s), '(the worker died)')}" for a, s in tasks)
    graded_now = set(tasks)
    after = {key: grade for key, grade in gradebook_state(course, names).items() if key[:2] in graded_now}
    reviews += check_gradebook(before, after, records)
    done = graded(after)
    for assignment, student in tasks:
        record_path = records / assignment / f"{student}.json"
        record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
        if (assignment, student) in lost:
            reviews.append(Review(student, assignment, f"not graded: the grading worker died {ATTEMPTS} times "
                                                       "while grading it (the others were graded)"))
        elif (assignment, student) not in done or \
                not (course / "autograded" / student / assignment / f"{assignment}.ipynb").is_file():
            reviews.append(Review(student, assignment, "not graded: the gradebook has no autograded scores for it "
                                                       "(see build/autograde.log)"))
        elif record.get("events"):
            reviews.append(Review(student, assignment, "graded, but its sandbox was stopped and restarted: "
                                  + "; ".join(record["events"])[:300]))
    reviews += slow_ones(records, [t for t in tasks if t in done], slow_margin)
    return reviews, log


def main(argv: list[str] | None = None) -> int:
    from . import sandbox
    from .redflags import scan

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=ROOT)
    parser.add_argument("--unsandboxed", action="store_true",
                        help="grade without sandboxes (student code runs with your rights; verdicts are still "
                             "decided outside the student's process)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                        help="submissions graded at once (default: the cores this process may use)")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if not (args.course / "submitted").is_dir():
        print(f"no submitted/ folder in {args.course}: collect the submissions first "
              "(nbgrader collect, or copy them to submitted/<student>/<assignment>/)", file=sys.stderr)
        return 2
    ok, why = sandbox.available()
    if not ok and not args.unsandboxed:
        print(f"cannot grade: {why}.\nGrading runs every submission in sandboxes. To grade without them anyway "
              "(student code then runs with your rights), use: make autograde UNSANDBOXED=1", file=sys.stderr)
        return 2
    print(f"sandbox: {'none (--unsandboxed)' if args.unsandboxed else why}; {sandbox.limits()}")
    try:
        reviews, log = autograde(args.course, args.names, unsandboxed=args.unsandboxed, jobs=max(1, args.jobs))
    except sandbox.NoSandbox as error:
        print(f"cannot grade, nobody was graded: {error}", file=sys.stderr)
        return 2
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
