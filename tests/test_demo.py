"""End to end: autograding the sample class gives exactly the intended score per student and cell."""
import csv
import html
import re

import nbformat

from conftest import ROOT, ASSIGNMENTS
from coursetools import leakage
from coursetools.common import source_notebook


def test_scores_per_student_and_cell(demo, expected_scores):
    assert demo["scores"] == expected_scores


def test_honest_work_causes_no_warning(demo):
    """nbgrader warned "Attribute 'checksum' ... has changed!" for every test cell with hidden tests of
    every submission, and "Config option `display_data_priority` not recognized" in every feedback."""
    warnings = [line for line in demo["log"].splitlines() if "WARNING" in line]
    assert not [w for w in warnings if "has changed" in w or "not recognized" in w], warnings[:5]


def test_blank_submissions_earn_nothing(demo):
    """The blank student handed in the release untouched: every hidden test must fail too."""
    for name, cells in demo["scores"]["baba"].items():
        assert cells and all(score == 0 for score in cells.values()), f"{name}: points for a blank answer"


def test_full_marks_student_gets_every_point(demo):
    """Every autograded cell; the written answers (exNN_k-answer) wait for an instructor."""
    for name, cells in demo["scores"]["aoki"].items():
        auto = {cell: top for cell, top in demo["max"][name].items() if not cell.endswith("-answer")}
        assert {c: v for c, v in cells.items() if c in auto} == auto, f"{name}: a correct answer lost points"


def test_sample_class_covers_every_assignment(expected_scores):
    for student in ("aoki", "baba", "chiba"):
        assert sorted(expected_scores[student]) == ASSIGNMENTS, f"{student} must submit every assignment"


def test_grades_csv_and_feedback(demo):
    course = demo["course"]
    with open(course / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    expected_rows = {(s, a) for s, per in demo["scores"].items() for a in per}
    assert {(r["student_id"], r["assignment"]) for r in rows} >= expected_rows
    with open(ROOT / "examples" / "students.csv", newline="", encoding="utf-8") as f:
        names = {r["id"]: r["last_name"] for r in csv.DictReader(f)}
    assert all(r["last_name"] == names[r["student_id"]] for r in rows), "student names from students.csv are missing"
    for student, assignment in expected_rows:
        html = course / "feedback" / student / assignment / f"{assignment}.html"
        assert html.is_file(), f"no feedback for {student}/{assignment}"


def test_demo_runs_outside_the_repository(demo):
    assert ROOT not in demo["course"].resolve().parents, "the demo must grade in a scratch copy"


def test_sample_class_is_tracked_by_git():
    """A .gitignore pattern once hid examples/submitted/: CI then had no sample class at all."""
    import subprocess

    listed = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "examples"],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        import pytest
        pytest.skip("not a git checkout")
    ignored = [p for p in listed.stdout.splitlines() if p.endswith(".ipynb") or p.endswith(".json")]
    assert not ignored, f"sample-class files ignored by git (they would be missing in CI): {ignored}"


def hidden_only_lines(assignment):
    return leakage.secret_lines(nbformat.read(source_notebook(assignment), as_version=4), kinds=("HIDDEN TESTS",))


def plain_text(path):
    """The text of a feedback HTML page with tags removed (code is split into highlighting spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def test_feedback_hides_the_hidden_tests_but_explains_failures(demo):
    """Released feedback must not give the hidden tests away, and must say what went wrong, in Japanese."""
    course = demo["course"]
    for student, per in demo["scores"].items():
        for assignment in per:
            text = plain_text(course / "feedback" / student / assignment / f"{assignment}.html")
            assert "BEGIN HIDDEN TESTS" not in text, f"{student}/{assignment}: hidden tests are in the feedback"
            known = "\n".join(c.source for c in nbformat.read(
                ROOT / "examples" / "submitted" / student / assignment / f"{assignment}.ipynb", as_version=4).cells)
            leaked = [line for line in hidden_only_lines(assignment) if line in text and line not in known]
            assert not leaked, f"{student}/{assignment}: hidden test code in the feedback: {leaked[:3]}"
    chiba = plain_text(course / "feedback" / "chiba" / "73_backprop_scalar" / "73_backprop_scalar.html")
    assert "accumulate_grad で加算していますか" in chiba, "a failing hidden test must show its Japanese message"
    assert "不合格（演習 73.2（Exp の逆伝播）のテスト）" in chiba, "a failure must name the test it comes from"
    baba = plain_text(course / "feedback" / "baba" / "73_backprop_scalar" / "73_backprop_scalar.html")
    assert "未解答（演習 73.1 のテスト）" in baba and "NotImplementedError()" in baba, \
        "an unanswered exercise must say so and what to do, not show a bare NotImplementedError"
