"""Student flows in JupyterLab: run a notebook, see figures, answer, run tests, press Validate."""
import shutil

import nbformat
import pytest

from conftest import ROOT, jupyter_lab, screenshot
from labpage import (close_dialog, code_cell_count, image_output_count, open_notebook, replace_cell_source, run_all,
                     run_cells_from_editor, validate)

NB73 = "73_backprop_scalar.ipynb"
ANSWER_82 = '''def neuron(inputs, weights, bias):
    """y = tanh(Σ w_i·x_i + b) の出力ノードを返す。"""
    if len(inputs) != len(weights) or not inputs:
        raise ValueError("inputs と weights の長さをそろえてください")
    z = bias
    for w, x in zip(weights, inputs):
        z = z + w * x
    return Tanh(z)'''
WRONG_82 = '''def neuron(inputs, weights, bias):
    """y = tanh(Σ w_i·x_i + b) の出力ノードを返す。"""
    z = bias
    for w, x in zip(weights, inputs):
        z = z + w * x
    return Sigmoid(z)'''


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """The student edition in a scratch folder; 73 comes with every exercise answered except 73.3."""
    work = tmp_path_factory.mktemp("student")
    root = work / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    answered = nbformat.read(ROOT / "examples/submitted/aoki/73_backprop_scalar" / NB73, as_version=4)
    blank = nbformat.read(ROOT / "notebooks" / NB73, as_version=4)
    for cell, blank_cell in zip(answered.cells, blank.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex73_3-answer":
            cell.source = blank_cell.source
    nbformat.write(answered, root / NB73)
    with jupyter_lab(root, work) as lab:
        yield lab


def test_run_all_renders_figures_and_validate_succeeds_then_fails(page, student_lab):
    open_notebook(page, student_lab, NB73)
    total = code_cell_count(page)
    run_all(page, min_executed=3)
    assert image_output_count(page) >= 3, "the figures of 73 did not render after Run All"

    replace_cell_source(page, "def neuron(", ANSWER_82)
    run_cells_from_editor(page, 3)  # answer cell, its try-out cell, its test cell
    assert page.locator(".jp-CodeCell", has_text="演習 73.3 のテスト").locator(".jp-OutputArea").inner_text().find(
        "演習 73.3 の見えるテストに合格しました") >= 0, "the visible tests of 73.3 did not pass in the browser"
    run_all(page, min_executed=total)
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    assert validate(page) == "success", "Validate did not report success for a fully answered notebook"
    screenshot(page, "student-73-validate-success")
    close_dialog(page)

    replace_cell_source(page, "def neuron(", WRONG_82)
    assert validate(page) == "failed", "Validate did not report the failure of a wrong answer"
    assert "演習 73.3" in page.locator("#validation-message").inner_text()
    screenshot(page, "student-73-validate-failed")
    close_dialog(page)


def test_another_notebook_runs_with_figures(page, student_lab):
    open_notebook(page, student_lab, "70_derivatives.ipynb")
    run_all(page, min_executed=5)
    assert image_output_count(page) >= 4, "the figures of 70 did not render"
    assert page.locator(".jp-RenderedImage img").count() >= 1, "no figure is displayed on screen"
    screenshot(page, "student-70-run-all")
