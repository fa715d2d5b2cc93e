"""make redflags: every planted cheat or broken file is reported with its reason; honest work is not."""
import copy

import nbformat
import pytest

from conftest import ROOT
from coursetools.grading import redflags
from coursetools.common import release_notebook

A = "73_backprop_scalar"


def release():
    return nbformat.read(release_notebook(A), as_version=4)


def with_answer(code):
    nb = release()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex73_2-answer":
            cell.source += "\n" + code
    return nb


def graded_test_cell(nb, gid="ex73_3-tests"):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def edited():
    nb = release()
    graded_test_cell(nb).source = "pass  # テストを消した"
    return nb


def deleted():
    nb = release()
    nb.cells.remove(graded_test_cell(nb))
    return nb


def to_markdown():
    nb = release()
    cell = graded_test_cell(nb)
    nb.cells[nb.cells.index(cell)] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata, id=cell.id)
    return nb


def duplicated():
    nb = release()
    cell = graded_test_cell(nb)
    twin = copy.deepcopy(cell)
    twin.id = "copy-of-test"
    nb.cells.insert(nb.cells.index(cell) + 1, twin)
    return nb


CASES = {
    "allclose": (lambda: with_answer("np.allclose = lambda *a, **k: True"), "NumPy's comparison"),
    "testing": (lambda: with_answer("np.testing.assert_allclose = lambda *a, **k: None"), "NumPy's comparison"),
    "np_core": (lambda: with_answer("np.max = lambda *a, **k: 0.0"), "NumPy's comparison or other"),
    "np_linalg": (lambda: with_answer("np.linalg.norm = lambda *a, **k: 0.0"), "NumPy's comparison or other"),
    "np_setattr": (lambda: with_answer("setattr(np, 'abs', lambda x: 0 * x)"), "setattr, __dict__"),
    "np_dict": (lambda: with_answer("np.__dict__['abs'] = lambda x: 0 * x"), "setattr, __dict__"),
    "np_rebound": (lambda: with_answer("class Fake:\n    pass\nnp = Fake()"), "name np/numpy/math is bound"),
    "np_alias": (lambda: with_answer("import fake_numpy as np"), "name np/numpy/math is bound"),
    "isclose": (lambda: with_answer("import math\nmath.isclose = lambda *a, **k: True"), "built-in or math"),
    "builtin": (lambda: with_answer("import builtins\nbuiltins.abs = lambda x: 0"), "built-in or math"),
    "rebind": (lambda: with_answer("abs = lambda x: 0"), "built-in name is rebound"),
    "eq": (lambda: with_answer("class Anything:\n    def __eq__(self, other):\n        return True"), "__eq__"),
    "sys_exit": (lambda: with_answer("import sys\nsys.exit()"), "stopped"),
    "os_exit": (lambda: with_answer("import os\nos._exit(0)"), "stopped"),
    "gradebook": (lambda: with_answer("import sqlite3\nsqlite3.connect('../../gradebook.db')"), "gradebook"),
    "grader_name": (lambda: with_answer("def _grader_backward(out):\n    return 0.0"), "grader-internal"),
    "edited": (edited, "test cell was edited"),
    "deleted": (deleted, "test cell was deleted"),
    "markdown": (to_markdown, "changed into a markdown cell"),
    "duplicated": (duplicated, "appears 2 times"),
}


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("submitted")
    for student, (make, _) in CASES.items():
        folder = root / student / A
        folder.mkdir(parents=True)
        nbformat.write(make(), folder / f"{A}.ipynb")
    renamed = root / "renamed" / A
    renamed.mkdir(parents=True)
    nbformat.write(release(), renamed / f"{A} (1).ipynb")
    truncated = root / "truncated" / A
    truncated.mkdir(parents=True)
    text = release_notebook(A).read_text(encoding="utf-8")
    (truncated / f"{A}.ipynb").write_text(text[: len(text) // 2], encoding="utf-8")
    honest = root / "honest" / A
    honest.mkdir(parents=True)
    nbformat.write(nbformat.read(ROOT / "examples/submitted/chiba" / A / f"{A}.ipynb", as_version=4), honest / f"{A}.ipynb")
    return redflags.scan(root)


@pytest.mark.parametrize("student", sorted(CASES))
def test_each_planted_case_is_flagged(hostile_class, student):
    reasons = [f.reason for f in hostile_class if f.student == student]
    assert any(CASES[student][1] in r for r in reasons), f"{student}: not flagged as expected (got {reasons})"


def test_renamed_and_truncated_notebooks_get_a_clear_message(hostile_class):
    renamed = [f.reason for f in hostile_class if f.student == "renamed"]
    truncated = [f.reason for f in hostile_class if f.student == "truncated"]
    assert renamed and "rename it" in renamed[0]
    assert truncated and "not a readable notebook" in truncated[0]


def test_honest_work_is_not_flagged(hostile_class):
    assert not [f for f in hostile_class if f.student == "honest"]
    assert redflags.scan(ROOT / "examples" / "submitted") == [], "the sample class has no cheats"
