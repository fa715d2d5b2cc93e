"""release/ and notebooks/ are exactly what `make release` builds, and leak nothing."""
from pathlib import Path

import nbformat
import pytest

from conftest import ASSIGNMENTS, ROOT, read_nb
from coursetools import leakage
from coursetools.common import release_notebook, source_notebook


def files_under(base: Path, folder: str) -> dict:
    root = base / folder
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".ipynb_checkpoints" not in p.parts}


@pytest.mark.parametrize("folder", ["release", "notebooks"])
def test_generated_folder_is_current(fresh_build, folder):
    committed, rebuilt = files_under(ROOT, folder), files_under(fresh_build, folder)
    assert sorted(committed) == sorted(rebuilt), f"{folder}/ holds other files than the build makes"
    stale = [name for name in committed if committed[name] != rebuilt[name]]
    assert not stale, f"{folder}/ is stale ({stale}): run `make release` and commit the result"


def test_committed_student_editions_leak_nothing():
    assert leakage.check() == []


def test_fresh_build_leaks_nothing(fresh_build):
    assert leakage.check(root=fresh_build) == []


def test_release_keeps_the_visible_tests_and_stubs(assignment):
    released = read_nb(release_notebook(assignment))
    source = read_nb(source_notebook(assignment))
    assert len(released.cells) == len(source.cells)
    text = "\n".join(c.source for c in released.cells)
    assert "# ここにコードを書いてください" in text and "raise NotImplementedError()" in text
    for src, rel in zip(source.cells, released.cells):
        if "### BEGIN HIDDEN TESTS" in src.source:
            visible = src.source.split("### BEGIN HIDDEN TESTS")[0].strip()
            assert rel.source.strip().startswith(visible), "the visible tests must reach the students"


def test_leakage_check_catches_a_leak(tmp_path):
    """The detector itself can fail: plant a solution line and a marker in a copy."""
    name = ASSIGNMENTS[0]
    source = read_nb(source_notebook(name))
    secrets = leakage.secret_lines(source)
    assert secrets, "no secret lines found in the source: the detector would be blind"
    released = read_nb(release_notebook(name))
    planted = tmp_path / "planted.ipynb"
    released.cells[-1].source += "\n" + sorted(secrets)[0]
    nbformat.write(released, planted)
    assert leakage.find_leaks(planted, secrets), "a planted solution line was not detected"
    released = read_nb(release_notebook(name))
    released.cells[-1].source += "\n### BEGIN HIDDEN TESTS"
    nbformat.write(released, planted)
    assert leakage.find_leaks(planted, secrets), "a planted hidden-test marker was not detected"
