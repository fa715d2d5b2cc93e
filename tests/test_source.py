"""The nbgrader masters in source/: clean, well-formed, and following the notebook anatomy."""
import ast
import re

from conftest import ASSIGNMENTS, ROOT, is_answer_cell, is_test_cell, nbgrader_meta

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def test_there_are_assignments():
    assert ASSIGNMENTS, "source/ holds no assignment"
    for name in ASSIGNMENTS:
        assert re.fullmatch(r"7[0-6]_[a-z_]+", name), f"unexpected assignment name {name}"


def test_committed_without_outputs(source_nb, assignment):
    dirty = [i for i, c in enumerate(source_nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{assignment}: code cells {dirty} keep outputs; clear them before committing"


def test_anatomy(source_nb, assignment):
    number = assignment[:2]
    first = source_nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# Notebook {number}: "), \
        "the first cell must start with '# Notebook NN: 日本語タイトル'"
    assert re.search(r"^## [A-Za-z]", first.source, re.M), "the English title (##) is missing"
    markdown = "\n".join(c.source for c in source_nb.cells if c.cell_type == "markdown")
    for heading in ("このノートブックの位置づけ", "学習目標", "前提知識", "目次", "まとめ"):
        assert heading in markdown, f"{assignment}: section '{heading}' is missing"
    code = "\n".join(c.source for c in source_nb.cells if c.cell_type == "code")
    assert "import matplotlib_fontja" in code, "the setup cell must import matplotlib_fontja"
    assert "Hiragino" not in code and "Arial Unicode" not in code, "macOS-only fonts do not render on Linux"


def test_table_of_contents_links_resolve(source_nb, assignment):
    markdown = "\n".join(c.source for c in source_nb.cells if c.cell_type == "markdown")
    links = re.findall(r"\]\(#([^)]+)\)", markdown)
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    assert links, f"{assignment}: the table of contents has no links"
    assert set(links) <= anchors, f"{assignment}: links without a target: {sorted(set(links) - anchors)}"


def test_nbgrader_cells(source_nb, assignment):
    ids = [nbgrader_meta(c)["grade_id"] for c in source_nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), f"{assignment}: duplicate grade_id"
    answers = [c for c in source_nb.cells if is_answer_cell(c)]
    tests = [c for c in source_nb.cells if is_test_cell(c)]
    assert answers and tests, f"{assignment}: no graded exercise"
    for cell in answers:
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, \
            f"{assignment}/{cell.metadata.nbgrader.grade_id}: answer cell without a solution region"
    for cell in tests:
        meta = nbgrader_meta(cell)
        assert meta["locked"] and meta["points"] > 0, f"{meta['grade_id']}: test cells are locked and worth points"
        hidden = re.findall(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS", cell.source, flags=re.S)
        assert hidden, f"{meta['grade_id']}: no hidden tests"
        assert cell.source.count("### BEGIN HIDDEN TESTS") == cell.source.count("### END HIDDEN TESTS") == len(hidden), \
            f"{meta['grade_id']}: unbalanced hidden-test markers"
        visible = re.sub(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS", "", cell.source, flags=re.S)
        assert "assert" in visible, f"{meta['grade_id']}: no visible test"


def test_every_test_cell_names_its_exercise_on_the_first_line(source_nb, assignment):
    """Feedback titles each failure with this line ("不合格（演習 7.3 のテスト）: ...")."""
    for cell in source_nb.cells:
        if is_test_cell(cell):
            first = cell.source.splitlines()[0]
            assert re.fullmatch(r"# 演習 \d+\.\d+.*のテスト.*", first), \
                f"{cell.metadata.nbgrader.grade_id}: the first line must be '# 演習 N.M のテスト' (got {first!r})"


def test_the_visible_part_of_every_test_cell_is_valid_python(source_nb, assignment):
    """What students get (the test cell without its hidden regions) must run on its own: a visible test
    indented inside a hidden `try:` is an IndentationError in the release."""
    for cell in source_nb.cells:
        if is_test_cell(cell):
            visible = re.sub(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS\n?", "", cell.source, flags=re.S)
            try:
                compile(visible, nbgrader_meta(cell)["grade_id"], "exec")
            except SyntaxError as error:
                raise AssertionError(f"{assignment}/{nbgrader_meta(cell)['grade_id']}: the release's test cell "
                                     f"does not compile: {error}") from None


def test_grade_ids_name_their_exercise(source_nb, assignment):
    """The k-th answer cell of notebook NN is ex{NN}_{k}-answer and its test cells ex{NN}_{k}-...tests,
    whose first line names 演習 NN.k: the gradebook, grades.csv and the formgrader say which exercise."""
    number, k = assignment[:2], 0
    for cell in source_nb.cells:
        meta = nbgrader_meta(cell)
        if not meta or "grade_id" not in meta:
            continue
        gid = meta["grade_id"]
        if is_answer_cell(cell):
            k += 1
            assert gid == f"ex{number}_{k}-answer", f"{assignment}: answer cell {gid!r} must be ex{number}_{k}-answer"
        elif is_test_cell(cell):
            assert re.fullmatch(rf"ex{number}_{k}(-[a-z]+)*-tests", gid), \
                f"{assignment}: test cell {gid!r} of exercise {number}.{k} must be ex{number}_{k}-...tests"
            assert cell.source.startswith(f"# 演習 {int(number)}.{k}"), \
                f"{assignment}/{gid}: its first line must name 演習 {int(number)}.{k}"


def test_every_assert_explains_itself_in_japanese(source_nb, assignment):
    for cell in source_nb.cells:
        if not is_test_cell(cell):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Assert):
                where = f"{cell.metadata.nbgrader.grade_id} line {node.lineno}"
                assert node.msg is not None, f"{where}: assert without a message"
                assert JAPANESE.search(ast.unparse(node.msg)), f"{where}: the message must be in Japanese"


def test_hidden_tests_do_not_call_student_helpers(source_nb, assignment):
    """Hidden tests derive expectations themselves: never via the notebook's checkers.

    A name that an answer cell defines is the function under test (in 70 `numerical_gradient`
    and in 72 `forward_pass` are exercises), and calling it is what grading means.
    """
    graded = {node.name for cell in source_nb.cells if is_answer_cell(cell) and cell.cell_type == "code"
              for node in ast.walk(ast.parse(cell.source)) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    checkers = ("gradient_check", "numerical_gradient", "numerical_diff", "relative_error",
                "backward_pass", "forward_pass")
    helpers = tuple(name + "(" for name in checkers if name not in graded)
    for cell in source_nb.cells:
        if is_test_cell(cell):
            hidden = cell.source.split("### BEGIN HIDDEN TESTS", 1)[1]
            used = [h for h in helpers if re.search(r"(?<![\w.])" + re.escape(h), hidden)]
            assert not used, f"{cell.metadata.nbgrader.grade_id}: hidden tests call {used}"


def test_solution_notebooks_exist_for_every_source():
    assert sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb")) == ASSIGNMENTS


def test_bold_and_italic_render_in_every_markdown_cell(source_nb, assignment):
    """`**逆伝播（backpropagation）**を` does not render: a closing ** after a full-width parenthesis
    and before a letter is not a closing delimiter in CommonMark (nbconvert's mistune, feedback HTML).
    After rendering, no literal ** may remain outside code and math."""
    import mistune

    render = mistune.create_markdown()
    broken = []
    for cell in source_nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", "M", cell.source, flags=re.S)
        html = re.sub(r"<code>.*?</code>|<pre>.*?</pre>", "", render(text), flags=re.S)
        broken += re.findall(r".{0,20}\*\*.{0,20}", html)
    assert not broken, f"{assignment}: emphasis that renders as literal asterisks: {broken[:5]}"
