"""Instructor flow: the formgrader, opened from JupyterLab's Nbgrader menu, on an autograded class;
the written (manually graded) answers of Notebook 73 graded by hand in the formgrader."""
import html
import re

import pytest

from conftest import jupyter_lab, screenshot
from labpage import open_menu
from coursetools.common import assignments, nbgrader
from coursetools.demo import run_demo

GRADED = "73_backprop_scalar"
WRITTEN = ("ex73_4-answer", "ex73_5-answer")   # the written questions of 73, 2 points each
AUTO_MAX, WRITTEN_MAX = 11, 4                   # autograded points and points graded by hand


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """A scratch course whose sample class has been autograded on one assignment."""
    work = tmp_path_factory.mktemp("instructor")
    course = run_demo(work / "course", verbose=False, only=[GRADED])["course"]
    return work, course


@pytest.fixture(scope="module")
def course_lab(graded_course):
    work, course = graded_course
    with jupyter_lab(course, work, cwd=course) as lab:
        yield lab


def test_formgrader_lists_assignments_and_scores(page, course_lab):
    page.goto(course_lab.url("/lab"))
    page.wait_for_selector(".lm-MenuBar-item", state="visible", timeout=60_000)
    open_menu(page, "Nbgrader", "Formgrader")
    frame = page.frame_locator("iframe").first
    table = frame.locator("table")
    table.first.wait_for(timeout=60_000)
    for name in assignments():
        frame.locator("td", has_text=name).first.wait_for(timeout=30_000)
    screenshot(page, "instructor-formgrader-assignments")

    frame.locator(f"a[href*='manage_submissions/{GRADED}']").first.click()
    rows = frame.locator("tbody tr")
    frame.locator("td", has_text="aoki").first.wait_for(timeout=30_000)
    text = {student: rows.filter(has_text=student).first.inner_text() for student in ("aoki", "baba", "chiba")}
    total = AUTO_MAX + WRITTEN_MAX
    for student, name, score in (("aoki", "青木", f"11 / {total}"), ("baba", "馬場", f"0 / {total}"),
                                 ("chiba", "千葉", f"9 / {total}")):
        assert score in text[student], f"{student}: the autograded score {score} is not shown ({text[student]!r})"
        assert name in text[student], f"{student}: the name {name} from examples/students.csv is not shown"
    screenshot(page, "instructor-formgrader-submissions")


def _submission_id(course, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(GRADED, GRADED, student).id


def _grades(course, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(GRADED, GRADED, student)
        grades = {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in notebook.grades}
        comments = {c.name: c.manual_comment for c in notebook.comments}
        return grades, comments, notebook.needs_manual_grade


def test_written_answers_are_graded_by_hand_in_the_formgrader(page, course_lab, graded_course):
    """73.4 and 73.5 are markdown answer cells with no autograder: after autograde they wait for an
    instructor (needs manual grade, 0 points); in the formgrader the instructor reads the student's
    text, types a score and a comment, and both reach the gradebook, the score table and the feedback."""
    _, course = graded_course
    before, _, waiting = _grades(course, "aoki")
    assert waiting and all(before[gid][2] and before[gid][1] is None for gid in WRITTEN), \
        f"the written answers must wait for a manual grade after autograde: {before}"

    gid, comment = WRITTEN[0], "確かめられたことと、確かめられていないこと 2 つが書けています（採点基準の 2 点）"
    page.goto(course_lab.url("/lab"))          # logs in: the formgrader's own API calls carry no token
    page.wait_for_selector(".lm-MenuBar-item", state="visible", timeout=60_000)
    page.goto(course_lab.url(f"/formgrader/submissions/{_submission_id(course, 'aoki')}/"))
    score = page.locator(f"input.score#{gid}")
    score.wait_for(state="visible", timeout=60_000)
    page.wait_for_load_state("networkidle")   # the grades and comments are fetched, their inputs bound
    panel = page.locator(".nbgrader_cell", has=score)
    assert "Student's answer" in panel.inner_text() and "確かめられたのは" in panel.inner_text(), \
        "the formgrader must show aoki's written answer to 73.4 next to its score box"
    assert "採点基準" not in panel.inner_text(), "the rubric lives in source/ and solutions/, never in a submission"
    panel.scroll_into_view_if_needed()
    for grade_id, points, text in ((WRITTEN[0], "2", comment), (WRITTEN[1], "1.5", "種 v の場合の説明が VJP と結びついています")):
        box = page.locator(f"input.score#{grade_id}")
        with page.expect_response(lambda r: "/api/grade/" in r.url and r.request.method == "PUT"):
            box.fill(points)
            box.press("Tab")
        area = page.locator(f"textarea#{grade_id}-comment")
        with page.expect_response(lambda r: "/api/comment/" in r.url and r.request.method == "PUT"):
            area.fill(text)
            area.press("Tab")
    panel.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(page, "instructor-manual-grading")

    after, comments, waiting = _grades(course, "aoki")
    assert after[WRITTEN[0]][1] == 2.0 and after[WRITTEN[1]][1] == 1.5, f"manual scores not in the gradebook: {after}"
    assert not waiting, "aoki still needs a manual grade after both written answers were graded"
    assert comments[WRITTEN[0]] == comment, f"the comment did not reach the gradebook: {comments}"

    page.goto(course_lab.url(f"/formgrader/gradebook/{GRADED}/{GRADED}"))
    row = page.locator("tbody tr", has_text="Submission #").filter(
        has=page.locator(f"a[href$='/formgrader/submissions/{_submission_id(course, 'aoki')}']"))
    row.first.wait_for(timeout=30_000)
    shown = row.first.inner_text()
    assert f"14.5 / {AUTO_MAX + WRITTEN_MAX}" in shown and f"3.5 / {WRITTEN_MAX}" in shown, \
        f"the score table must add the manual scores (11 + 2 + 1.5): {shown!r}"
    screenshot(page, "instructor-gradebook-after-manual-grading")

    nbgrader(["generate_feedback", GRADED, "--student", "aoki", "--force"], course)
    feedback = html.unescape(re.sub(r"<[^>]+>", "", (course / "feedback" / "aoki" / GRADED / f"{GRADED}.html")
                                    .read_text(encoding="utf-8")))
    assert comment in feedback, "the instructor's comment must reach the student's feedback"
    assert "採点基準（2 点）" not in feedback and "模範解答" not in feedback, \
        "the feedback must not contain the model answer or the rubric"
