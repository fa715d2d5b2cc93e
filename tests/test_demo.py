"""End to end: autograding the sample class gives exactly the intended score per student and cell."""
import csv

from conftest import ROOT, ASSIGNMENTS


def test_scores_per_student_and_cell(demo, expected_scores):
    assert demo["scores"] == expected_scores


def test_blank_submissions_earn_nothing(demo):
    """The blank student handed in the release untouched: every hidden test must fail too."""
    for name, cells in demo["scores"]["baba"].items():
        assert cells and all(score == 0 for score in cells.values()), f"{name}: points for a blank answer"


def test_full_marks_student_gets_every_point(demo):
    for name, cells in demo["scores"]["aoki"].items():
        assert cells == demo["max"][name], f"{name}: a correct answer lost points"


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
