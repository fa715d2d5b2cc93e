"""Instructor flow: the formgrader, opened from JupyterLab's Nbgrader menu, on an autograded class."""
import pytest

from conftest import jupyter_lab, screenshot
from labpage import open_menu
from coursetools.common import assignments
from coursetools.demo import run_demo

GRADED = "73_backprop_scalar"


@pytest.fixture(scope="module")
def course_lab(tmp_path_factory):
    """A scratch course whose sample class has been autograded on one assignment."""
    work = tmp_path_factory.mktemp("instructor")
    course = run_demo(work / "course", verbose=False, only=[GRADED])["course"]
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
    for student, name, score in (("aoki", "青木", "10 / 10"), ("baba", "馬場", "0 / 10"), ("chiba", "千葉", "6 / 10")):
        assert score in text[student], f"{student}: the autograded score {score} is not shown ({text[student]!r})"
        assert name in text[student], f"{student}: the name {name} from examples/students.csv is not shown"
    screenshot(page, "instructor-formgrader-submissions")
