"""Shared fixtures: the expensive steps (a fresh release build, the sample-class autograde)
run once per session and are shared by every test that needs them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coursetools.common import assignments, source_notebook  # noqa: E402

ASSIGNMENTS = assignments()


def read_nb(path: Path):
    return nbformat.read(path, as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return meta.get("grade", False) and not meta.get("solution", False) and cell.cell_type == "code"


def is_answer_cell(cell) -> bool:
    return nbgrader_meta(cell).get("solution", False)


@pytest.fixture(scope="session")
def fresh_build(tmp_path_factory):
    """release/ and notebooks/ built from source/ right now, in a temporary folder."""
    from coursetools.build import build_release

    out = tmp_path_factory.mktemp("fresh-release")
    build_release(out=out)
    return out


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The sample class autograded in a scratch course (what `make demo` does)."""
    from coursetools.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo") / "course", verbose=False)


@pytest.fixture(scope="session")
def expected_scores():
    return json.loads((ROOT / "examples" / "expected_scores.json").read_text(encoding="utf-8"))


@pytest.fixture(params=ASSIGNMENTS)
def assignment(request):
    return request.param


@pytest.fixture
def source_nb(assignment):
    return read_nb(source_notebook(assignment))
