"""nbgrader_config.py loads (nbgrader would silently ignore a broken one) and says what we need."""
from traitlets.config.loader import PyFileConfigLoader

from conftest import ROOT


def load():
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def test_config_loads_and_sets_the_course_policies():
    c = load()
    assert c.CourseDirectory.course_id
    assert "ここにコードを書いてください" in c.ClearSolutions.code_stub["python"]
    assert "raise NotImplementedError()" in c.ClearSolutions.code_stub["python"]
    assert c.Execute.timeout > 0 and c.Execute.interrupt_on_timeout is True
    assert c.OverwriteCells.add_missing_cells is True
    assert c.LimitOutput.max_lines > 0 and c.LimitOutput.max_traceback > 0
    names = [p.__name__ for p in c.Autograde.autograde_preprocessors]
    assert "Execute" not in names, "autograde must not run test cells in the student's kernel"
    assert names.index("KeepPointsOnStderr") == names.index("SandboxedExecute") + 1
    assert names.index("SanitizeStudentContent") < names.index("SaveAutoGrades")
    assert c.SandboxedExecute.timeout > 0 and c.SandboxedExecute.deadline >= c.SandboxedExecute.timeout
    feedback = [p.__name__ for p in c.GenerateFeedback.preprocessors]
    assert feedback[:3] == ["ClearHiddenTests", "ConciseFailures", "SanitizeStudentContent"] and "GetGrades" in feedback


def test_markdown_from_students_is_sanitised_but_the_courses_own_is_kept():
    import json

    from coursetools.grading.plugins import clean_markdown

    for path in sorted(ROOT.glob("release/*/*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                assert clean_markdown(text) == text, f"{path.name}: lecture markdown changed by the sanitiser"
    from nbconvert.filters.markdown import markdown2html

    for dirty in ('<script>alert(1)</script><img src=x onerror="alert(2)"> [a](javascript:alert(3))',
                  "[こちら][r]\n\n[r]: javascript:alert(document.cookie)",    # a reference definition
                  "[x](&#106;avascript:alert(1))", "<javascript:alert(1)>", "![i](data:image/svg+xml;base64,PHN2Zz4=)"):
        shown = markdown2html(clean_markdown(dirty)).lower()     # what feedback and the formgrader render
        for bad in ("<script", "onerror=", 'href="javascript:', 'href="&#106;', 'src="data:'):
            assert bad not in shown, (dirty, shown)


def test_stderr_relabelling_only_touches_grade_cells():
    import nbformat
    from coursetools.grading.plugins import KeepPointsOnStderr

    def cell(grade):
        c = nbformat.v4.new_code_cell("x")
        c.metadata["nbgrader"] = {"grade": grade, "solution": False, "grade_id": "g", "points": 1}
        c.outputs = [nbformat.v4.new_output("stream", name="stderr", text="RuntimeWarning\n")]
        return c

    graded, ungraded = cell(True), cell(False)
    KeepPointsOnStderr().preprocess_cell(graded, {}, 0)
    KeepPointsOnStderr().preprocess_cell(ungraded, {}, 0)
    assert graded.outputs[0]["name"] == "stdout" and graded.outputs[0]["text"] == "RuntimeWarning\n"
    assert ungraded.outputs[0]["name"] == "stderr"


def test_concise_failures_keep_only_the_message_of_graded_cells():
    import nbformat
    from coursetools.grading.plugins import ConciseFailures

    def cell(grade):
        c = nbformat.v4.new_code_cell("# 演習 8.2 のテスト\nassert False")
        c.metadata["nbgrader"] = {"grade": grade, "solution": False, "grade_id": "g", "points": 1}
        c.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="勾配が違います",
                                            traceback=["---", "_hidden = 1.234  # 隠しテストの行", "AssertionError"])]
        return c

    graded, ungraded = cell(True), cell(False)
    ConciseFailures().preprocess_cell(graded, {}, 0)
    ConciseFailures().preprocess_cell(ungraded, {}, 0)
    assert graded.outputs[0]["traceback"] == ["不合格（演習 8.2 のテスト）: 勾配が違います"]
    assert len(ungraded.outputs[0]["traceback"]) == 3


def test_failure_messages_name_the_test_and_give_a_hint_for_each_kind_of_error():
    from coursetools.grading.plugins import failure_message

    source = "# 演習 7.3 のテスト\nassert ..."
    assert failure_message(source, "NotImplementedError", "") .startswith("未解答（演習 7.3 のテスト）")
    assert "無限ループ" in failure_message(source, "KeyboardInterrupt", "")
    assert "無限ループ" in failure_message(source, "CellTimeoutError", "")
    assert "名前が問題文どおり" in failure_message(source, "NameError", "name 'f' is not defined")
    other = failure_message(source, "ValueError", "operands could not be broadcast\n  together")
    assert other.startswith("エラー（演習 7.3 のテスト）") and "ValueError" in other and "\n" not in other
    assert failure_message("x = 1", "AssertionError", "").startswith("不合格（このテスト）")
