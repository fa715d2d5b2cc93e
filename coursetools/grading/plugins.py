"""nbgrader preprocessors used by nbgrader_config.py."""
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests as _ClearHiddenTests
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from traitlets import Bool, Float, Integer, List, Unicode

from ..common import nbgrader_meta
from . import sandbox, session


PRIORITY = ["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png", "image/jpeg", "text/plain"]


class QuietInFeedback(NbGraderPreprocessor):
    """A preprocessor of the feedback pipeline that takes nbconvert's `display_data_priority` quietly.

    nbconvert's HTML exporter hands `display_data_priority` to every preprocessor of the feedback
    pipeline; nbgrader's preprocessors inherit that trait without marking it configurable, so every
    student's feedback logged "Config option `display_data_priority` not recognized" once per
    preprocessor. Marked configurable here (same default), the value is simply taken."""

    display_data_priority = List(PRIORITY).tag(config=True)


class ClearHiddenTests(QuietInFeedback, _ClearHiddenTests):
    """nbgrader's ClearHiddenTests, quiet in generate_feedback (QuietInFeedback)."""


class QuietOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells without the warning that every honest submission caused.

    nbgrader compares a locked cell of the submission with the gradebook's copy, which still holds
    the hidden tests, so each test cell with hidden tests logged "Attribute 'checksum' ... has
    changed!" as if the student had tampered with it. A cell whose source is exactly the gradebook's
    with the hidden tests cleared (what the student was given) is put back without the warning; any
    other difference is still reported, and overwritten, by nbgrader."""

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") and meta.get("locked") and cell.cell_type == "code":
            try:
                stored = self.gradebook.find_source_cell(meta["grade_id"], self.notebook_id, self.assignment_id)
            except Exception:  # noqa: BLE001 - nbgrader's own code reports a missing cell
                stored = None
            if stored is not None and stored.source != cell.source and _without_hidden_tests(stored.source) == cell.source:
                cell.source = stored.source
        return super().preprocess_cell(cell, resources, cell_index)


def _without_hidden_tests(source: str) -> str:
    """What ClearHiddenTests leaves of a test cell's source (as the release shows it)."""
    from nbformat.v4 import new_code_cell

    cell = new_code_cell(source)
    _ClearHiddenTests()._remove_hidden_test_region(cell)
    return cell.source


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

    The test cells start with a comment naming them ("# 演習 70.3 のテスト"); the assert messages
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
    if ename == "SandboxError":
        return f"エラー（{title}）: {evalue}"
    if ename == "NameError":
        return (f"エラー（{title}）: NameError: {evalue}。解答セルを実行したか、"
                "関数やクラスの名前が問題文どおりか確認してください")
    return (f"エラー（{title}）: テストの実行中に {ename} が起きました: {evalue}"
            "（解答が返す値の形状・型・辞書のキーを確認してください）")


class ConciseFailures(QuietInFeedback):
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


class SandboxedExecute(NbGraderPreprocessor):
    """Autograde's execution step: the student's cells in one sandbox, the test cells in another.

    Replaces nbgrader's Execute in `Autograde.autograde_preprocessors` (nbgrader_config.py). Each
    submission gets a runner sandbox (the student's cells) and a judge sandbox (the test cells,
    restored by nbgrader from the gradebook), coursetools/grading/session.py; this process sends
    the cells and receives per cell bounded text and whether it raised, which it puts into the
    notebook nbgrader grades (a graded test cell that raised has an `error` output). It never runs
    test code and never decodes a student's values.

    The cells after the last graded test cell cannot change a verdict and are not run; the first
    of them says so in the graded notebook and the feedback.

    A sandbox that cannot be started at all is the machine's problem, not the student's: the
    submission is not graded (nbgrader records no scores and reports it), never scored 0.
    """

    timeout = Float(60, help="seconds per cell").tag(config=True)
    deadline = Float(900, help="seconds per submission, all cells together").tag(config=True)
    memory = Integer(sandbox.MEMORY, help="bytes of address space per process of a submission "
                                          "(the whole tree may use 1.5 times that)").tag(config=True)
    sandboxed = Bool(True, help="grade in bubblewrap sandboxes; False runs the runner and the judge as "
                                "ordinary processes with the grader's rights (verdicts are still decided "
                                "outside the student's process, but nothing is isolated)").tag(config=True)
    records = Unicode("", help="folder of the per-submission records (verdicts, sandbox events, time); "
                               "default: build/sandbox under the course directory").tag(config=True)
    stop_after_last_test = Bool(True, help="do not run the cells after the last graded test cell").tag(config=True)

    def preprocess(self, nb, resources):
        self._check_order(nb, resources)
        cells = session.cells_of(nb, stop_after_last_test=self.stop_after_last_test)
        settings = session.Settings(sandboxed=self.sandboxed, cell_timeout=self.timeout,
                                    deadline=self.deadline, memory=self.memory)
        report = session.grade_cells(cells, settings)   # NoSandbox when none could be started at all
        count = 0
        for cell in cells:
            count += 1
            target = nb.cells[cell.index]
            target.execution_count = count
            target.outputs = _outputs(report.outputs.get(cell.index))
        if cells:
            later = [c for c in nb.cells[cells[-1].index + 1:] if c.cell_type == "code"]
            if later:
                from nbformat.v4 import new_output

                later[0].outputs = [new_output("stream", name="stdout", text=NOT_RUN)]
        resources.setdefault("sandbox", {})["events"] = report.events
        resources["sandbox"]["seconds"] = report.seconds
        if report.events:
            self.log.warning("sandbox events: %r", report.events[:20])
        self._write_record(resources, report)
        return nb, resources

    def _check_order(self, nb, resources):
        """Refuse to grade a submission whose graded cells are out of the assignment's order (see
        order_problem): a later test would hand an earlier exercise's reference to it."""
        import os
        from pathlib import Path

        import nbformat

        info = resources.get("nbgrader", {})
        root = self.config.CourseDirectory.get("root") or os.getcwd()
        assignment, notebook = str(info.get("assignment", "")), str(info.get("notebook", ""))
        source = Path(str(root)) / "source" / assignment / f"{notebook}.ipynb"
        if assignment and notebook and source.is_file():
            problem = order_problem(nb, nbformat.read(source, as_version=4))
            if problem:
                raise ValueError(f"not graded: {problem}")

    def _write_record(self, resources, report):
        """<records>/<assignment>/<student>.json: what the grader decided for this submission.

        Written by this process (the sandboxes cannot reach the course directory);
        coursetools.grading.autograde reads it to tell the instructor why a submission needs a look,
        and checks the gradebook against the verdicts (grade id of each test cell -> passed).
        """
        import json
        import os
        from pathlib import Path

        info = resources.get("nbgrader", {})
        student, assignment = str(info.get("student", "")), str(info.get("assignment", ""))
        if not student or not assignment or "/" in student + assignment or student.startswith("."):
            return
        root = Path(self.records or os.path.join(os.getcwd(), "build", "sandbox"))
        folder = root / assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{student}.json").write_text(json.dumps({
            "student": student, "assignment": assignment, "sandboxed": self.sandboxed,
            "seconds": round(report.seconds, 2), "events": report.events,
            "verdicts": report.passed}, ensure_ascii=False), encoding="utf-8")


NOT_RUN = ("（採点では、最後の採点対象のテストセルより後のセルは実行していません。"
           "ここから下の出力は、自分の環境で実行して確かめてください。）\n")


def _outputs(result):
    from nbformat.v4 import new_output

    if result is None:
        return [new_output("error", ename="SandboxError", evalue="実行されませんでした", traceback=[])]
    outputs = []
    if result.stdout:
        outputs.append(new_output("stream", name="stdout", text=result.stdout))
    if result.stderr:
        outputs.append(new_output("stream", name="stderr", text=result.stderr))
    if result.error:
        error = result.error
        trace = [str(line) for line in error.get("traceback", [])] or [f"{error['ename']}: {error['evalue']}"]
        outputs.append(new_output("error", ename=error["ename"], evalue=error["evalue"], traceback=trace))
    return outputs


def order_problem(nb, reference) -> str | None:
    """Why the graded cells of a submission are not in the order of the assignment (None if they are).

    Tests run in the order of the cells, and a later test may swap a reference implementation of an
    earlier exercise into the student's namespace (72.2, 74.2, 75.4): a student who moved a later test
    above an earlier answer would be handed that answer before its own test ran."""
    order = [nbgrader_meta(c).get("grade_id") for c in reference.cells if nbgrader_meta(c).get("grade_id")]
    position = {gid: i for i, gid in enumerate(order)}
    seen = [nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade_id") in position]
    for before, after in zip(seen, seen[1:]):
        if position[after] < position[before]:
            return (f"graded cells moved out of the assignment's order ({after} comes after {before}): "
                    "move them back and grade again")
    return None


class SanitizeStudentContent(QuietInFeedback):
    """What a student wrote, made safe to show in a browser (formgrader, feedback).

    Markdown and raw cells are cleaned with nh3 (the Ammonia HTML sanitiser: no scripts, event
    handlers or javascript: links); outputs other than text, PNG images and errors are dropped
    (a student's cell cannot put HTML or JavaScript into what the instructor or a student opens).
    """

    KEEP = {"text/plain", "image/png"}

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type in ("markdown", "raw"):
            cell.source = clean_markdown(cell.source)
            cell.pop("attachments", None)
        elif cell.cell_type == "code":
            kept = []
            for output in cell.get("outputs", []):
                if output.get("output_type") in ("display_data", "execute_result"):
                    output["data"] = {k: v for k, v in output.get("data", {}).items() if k in self.KEEP}
                    if not output["data"]:
                        continue
                kept.append(output)
            cell.outputs = kept
        return cell, resources


def clean_markdown(source: str) -> str:
    """Markdown a student may have edited, without scripts, event handlers or script links.

    Text that the sanitiser leaves unchanged (all of the course's own markdown: math, tables,
    `<a id=...>` anchors) is kept byte for byte; anything else is replaced by nh3's cleaned text.
    Then the markdown is rendered as the feedback and the formgrader render it (nbconvert's
    markdown2html): if any link or image of the result points anywhere but http(s), mailto or a
    place in the page (javascript:, vbscript:, data:, in any markdown syntax: inline, reference
    definitions, autolinks, entities), the whole cell is shown as plain text in a code block.
    """
    import html

    import nh3

    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes.setdefault("a", set()).update({"id", "name"})
    cleaned = nh3.clean(source, attributes=attributes, link_rel=None, url_schemes={"http", "https", "mailto"})
    text = source if html.unescape(cleaned) == source else cleaned
    if _unsafe_links(text):
        fence = "~~~~"
        while fence in text:
            fence += "~"
        return f"{fence}text\n{text}\n{fence}\n"
    return text


SAFE_SCHEMES = {"http", "https", "mailto"}


def _unsafe_links(markdown: str) -> bool:
    """Whether rendering this markdown gives a link or image that is not http(s), mailto or relative."""
    import html
    import re
    from urllib.parse import unquote

    from nbconvert.filters.markdown import markdown2html

    try:
        rendered = markdown2html(markdown)
    except Exception:  # noqa: BLE001 - markdown the renderer cannot read is shown as text
        return True
    for raw in re.findall(r"""(?:href|src|action|formaction|xlink:href)\s*=\s*["']([^"']*)["']""", rendered, flags=re.I):
        url = "".join(ch for ch in unquote(html.unescape(raw)) if ch.isprintable() and not ch.isspace())
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):", url)
        if scheme and scheme.group(1).lower() not in SAFE_SCHEMES:
            return True
    return False
