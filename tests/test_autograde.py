"""make autograde (coursetools/grading/autograde.py): a grading worker that dies costs the
submission it was grading, never the class."""
import os

import nbformat

from coursetools.common import make_scratch_course, nbgrader, venv_env
from coursetools.grading import autograde
from qa.corpus import filled_release, solution_answers

A = "71_chain_rule"


def grade_or_die(task):
    """A worker's task that kills the worker for one student (as a crash in nbgrader would)."""
    if task[1] == "crasher":
        os._exit(1)
    return autograde._worker_grade(task)


def test_a_worker_that_dies_costs_one_submission(tmp_path, monkeypatch):
    for key, value in venv_env().items():
        monkeypatch.setenv(key, value)
    course = make_scratch_course(tmp_path / "course")
    for student in ("crasher", "honest", "other"):
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        nbformat.write(filled_release(A, solution_answers(A)), folder / f"{A}.ipynb")
    nbgrader(["generate_assignment", A, "--force"], course)
    tasks = [(A, "crasher"), (A, "honest"), (A, "other")]
    config = {"SandboxedExecute": {"records": str(course / "build" / "sandbox")}}
    logs, lost = autograde.grade_all(course, tasks, config, jobs=2, grade=grade_or_die)
    assert lost == [(A, "crasher")], lost
    assert set(logs) == {(A, "honest"), (A, "other")}, sorted(logs)
    state = autograde.gradebook_state(course, [A])
    assert autograde.graded(state) == {(A, "honest"), (A, "other")}
