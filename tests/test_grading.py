"""Every graded test cell fails on the blank release and passes on the source (nbgrader Validator).

`nbgrader validate` exits 0 even when tests fail, so the Validator's results are inspected here.
"""
from nbgrader.validator import Validator
from traitlets.config import Config

from conftest import is_test_cell, read_nb
from coursetools.common import release_notebook, source_notebook


def validate(path, invert):
    config = Config()
    config.Validator.invert = invert
    config.Validator.ignore_checksums = invert  # blank answer cells are unchanged on purpose
    config.Execute.timeout = 120
    return Validator(config=config).validate(str(path))


def test_source_passes_every_test_cell(assignment):
    result = validate(source_notebook(assignment), invert=False)
    assert not result, f"the source (with solutions) fails validation: {result}"


def test_blank_release_fails_every_test_cell(assignment):
    path = release_notebook(assignment)
    assert any(is_test_cell(c) for c in read_nb(path).cells)
    result = validate(path, invert=True)
    passed = [r["source"].splitlines()[0] for r in result.get("passed", [])]
    assert not passed, f"test cells that pass on the blank release (they test nothing): {passed}"
    assert set(result) <= {"passed"}, f"unexpected validation result: {result}"
