"""nbgrader preprocessors used by nbgrader_config.py."""
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor


class KeepPointsOnStderr(NbGraderPreprocessor):
    """Let a graded test cell keep its points when it only wrote to stderr.

    nbgrader 0.9 gives zero points to a test cell with *any* stderr output, so a correct answer
    that triggers a harmless warning (a NumPy RuntimeWarning, a DeprecationWarning) would lose
    points. Our tests signal failure by raising (an `error` output), never through stderr, so the
    stderr text is kept, relabelled as stdout, and only real errors cost points.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


def failure_message(cell_source: str, ename: str, evalue: str) -> str:
    """One Japanese line for a failing graded cell: which test, what went wrong, what to check.

    The test cells start with a comment naming them ("# 演習 7.3 のテスト"); the assert messages
    already say what was checked and the likely mistake. Errors raised by the student's code get
    a hint by kind. No hidden test code or expected value is quoted.
    """
    first = cell_source.strip().splitlines()[0] if cell_source.strip() else ""
    title = first.lstrip("#").strip() if first.startswith("#") else "このテスト"
    evalue = " ".join(str(evalue).split())[:300]
    if ename == "AssertionError":
        return f"不合格（{title}）: {evalue or '条件を満たしていません'}"
    if ename == "NotImplementedError":
        return (f"未解答（{title}）: 解答セルの raise NotImplementedError() を消して、"
                "代わりに自分のコードを書いてください")
    if ename in ("CellTimeoutError", "KeyboardInterrupt"):
        return (f"時間切れ（{title}）: 制限時間内に終わりませんでした。"
                "無限ループや、とても遅い処理がないか確認してください")
    if ename == "NameError":
        return (f"エラー（{title}）: NameError: {evalue}。解答セルを実行したか、"
                "関数やクラスの名前が問題文どおりか確認してください")
    return (f"エラー（{title}）: テストの実行中に {ename} が起きました: {evalue}"
            "（解答が返す値の形状・型・辞書のキーを確認してください）")


class ConciseFailures(NbGraderPreprocessor):
    """Feedback: a failing graded test cell shows one Japanese line, not the traceback.

    The line names the test and carries the test's Japanese message (what was checked, the likely
    mistake), or a hint for an error raised by the student's code (see failure_message). An
    IPython traceback quotes the source lines around the failing assert, which would show the
    hidden tests' code and values to students; the autograded notebooks keep the full traceback
    for instructors.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [failure_message(cell.source, output.get("ename", "Error"),
                                                           output.get("evalue", ""))]
        return cell, resources
