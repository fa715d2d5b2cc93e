"""solutions/ is the executed source: same cells, every cell run, no error, no stderr.

(nbval, configured in pytest.ini, re-executes these notebooks and compares the outputs.)
"""
from conftest import ROOT, read_nb
from coursetools.common import source_notebook


def test_solution_has_the_source_cells(assignment):
    solution = read_nb(ROOT / "solutions" / f"{assignment}.ipynb")
    source = read_nb(source_notebook(assignment))
    assert [c.source for c in solution.cells] == [c.source for c in source.cells], \
        f"solutions/{assignment}.ipynb is stale: run `make solutions`"


def test_solution_is_fully_executed_without_errors(assignment):
    solution = read_nb(ROOT / "solutions" / f"{assignment}.ipynb")
    code = [c for c in solution.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "some cells were not executed"
    for index, cell in enumerate(code):
        for out in cell.outputs:
            assert out.output_type != "error", f"code cell {index} raised {out.get('ename')}"
            assert not (out.output_type == "stream" and out.name == "stderr"), \
                f"code cell {index} wrote to stderr (a warning students would see): {out.text[:200]}"


def test_solution_has_figures(assignment):
    solution = read_nb(ROOT / "solutions" / f"{assignment}.ipynb")
    images = [o for c in solution.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, f"{assignment}: no figure rendered"
