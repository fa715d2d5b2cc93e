"""Student flow with nbgrader's exchange: a released assignment is listed, fetched and submitted."""
import pytest

from conftest import jupyter_lab, screenshot
from coursetools.common import make_scratch_course, nbgrader

ASSIGNMENT = "73_backprop_scalar"
COURSE_ID = "neural-engine-unit00"


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """An instructor course that has released one assignment into a local exchange folder."""
    work = tmp_path_factory.mktemp("exchange")
    root = work / "exchange"
    root.mkdir(mode=0o777)
    course = make_scratch_course(work / "course")
    with open(course / "nbgrader_config.py", "a", encoding="utf-8") as f:
        f.write(f"\nc.Exchange.root = {str(root)!r}\n")
    nbgrader(["generate_assignment", ASSIGNMENT, "--force"], course)
    nbgrader(["release_assignment", ASSIGNMENT, "--force"], course)
    return work, root


def test_assignment_list_fetch_and_submit(page, exchange):
    work, root = exchange
    home = work / "student"
    home.mkdir()
    config = f"c.Exchange.root = {str(root)!r}\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
    with jupyter_lab(home, work, config=config) as lab:
        page.goto(lab.url("/lab"))
        page.wait_for_selector(".lm-MenuBar-item", state="visible", timeout=60_000)
        page.locator(".lm-MenuBar-item", has_text="Nbgrader").first.click()
        page.locator(".lm-Menu .lm-Menu-item", has_text="Assignment List").first.click()

        released = page.locator("#released_assignments_list")
        released.get_by_text(ASSIGNMENT).wait_for(timeout=60_000)
        screenshot(page, "student-assignment-list-released")
        released.locator("button", has_text="Fetch").first.click()

        fetched = page.locator("#fetched_assignments_list")
        fetched.get_by_text(ASSIGNMENT).first.wait_for(timeout=60_000)
        assert (home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file(), "the fetched notebook is not in the student's folder"
        fetched.locator("button", has_text="Submit").first.click()

        submitted = page.locator("#submitted_assignments_list")
        submitted.get_by_text(ASSIGNMENT).first.wait_for(timeout=60_000)
        screenshot(page, "student-assignment-list-submitted")
    inbound = list((root / COURSE_ID / "inbound").glob(f"*+{ASSIGNMENT}+*"))
    assert inbound, "nothing arrived in the exchange's inbound folder"
