"""Release order (coursetools/release_order.py): the table of which assignment restates which
earlier answers is what the notebooks contain, and a release is refused while they are not due."""
from datetime import datetime, timedelta, timezone

import nbformat
import pytest

from coursetools import release_order


def test_the_table_is_what_the_notebooks_restate():
    found = {later: set(exercises) for later, exercises in release_order.detect().items()}
    listed = {later: set(exercises) for later, exercises in release_order.RESTATES.items()}
    assert found == listed, ("RESTATES must list exactly the earlier answers each release contains "
                             f"(detected {found}, listed {listed})")


def _course(tmp_path, lecture_lines):
    for folder, name, cells in (
            ("source", "70_a", [nbformat.v4.new_code_cell(
                "def f(x):\n    ### BEGIN SOLUTION\n    y = x + 1\n    z = y * 2\n    w = z - 3\n    return w\n    ### END SOLUTION",
                metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "ex70_1-answer"}})]),
            ("source", "71_b", [nbformat.v4.new_code_cell("pass")]),
            ("release", "71_b", [nbformat.v4.new_code_cell(lecture_lines)])):
        path = tmp_path / folder / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return tmp_path


def test_the_detector_notices_a_restated_answer_and_not_a_shared_line(tmp_path):
    restated = _course(tmp_path / "one", "def f(x):\n    y = x + 1\n    z = y * 2\n    w = z - 3\n    return w\n")
    assert release_order.detect(restated) == {"71_b": {"70.1": 1.0}}
    shared = _course(tmp_path / "two", "def g(v):\n    return w\n")
    assert release_order.detect(shared) == {}


@pytest.fixture
def gradebook(tmp_path):
    from nbgrader.api import Gradebook

    def make(**due):
        with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
            for name, when in due.items():
                gb.update_or_create_assignment(name, duedate=when)
        return tmp_path
    return make


def test_a_release_waits_for_the_due_dates_of_the_answers_it_contains(gradebook):
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    course = gradebook(**{"72_computational_graph": None})
    assert "has no due date" in release_order.blockers(course, "73_backprop_scalar", now)[0]
    course = gradebook(**{"72_computational_graph": (now + timedelta(days=1)).replace(tzinfo=None)})
    problems = release_order.blockers(course, "73_backprop_scalar", now)
    assert len(problems) == 1 and "72.1, 72.2" in problems[0] and "2026-12-02" in problems[0]
    course = gradebook(**{"72_computational_graph": (now - timedelta(hours=1)).replace(tzinfo=None)})
    assert release_order.blockers(course, "73_backprop_scalar", now) == []
    assert release_order.blockers(course, "72_computational_graph", now) == []   # restates nothing


def test_make_release_assignment_refuses_with_the_reason(gradebook, capsys):
    course = gradebook(**{"75_training_loop": None})
    assert release_order.main(["release", "76_gradient_pathology", "--course", str(course)]) == 1
    err = capsys.readouterr().err
    assert "not releasing 76_gradient_pathology" in err and "75.1, 75.2" in err and "FORCE=1" in err
