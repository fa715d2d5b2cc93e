"""A class on this course's JupyterHub (deploy/jupyterhub_config.py), driven in headless Chromium.

`make test-hub` runs this (it is left out of `make test-browser`). The test starts JupyterHub on
127.0.0.1 with an instructor (sensei) and two students (aoki, baba), then follows a week of class:
the instructor generates and releases 73 from the formgrader; each student logs in, fetches it from
the Assignment List, answers (aoki everything right, baba one exercise right and the rest blank),
validates and submits; baba also files a copy of their notebook under aoki's name (later than aoki's
real submission); the instructor collects (the forged one is set aside and reported, aoki's own
counts), autogrades (every submission in its own sandbox),
sees both scores, generates and releases feedback; each student fetches feedback and gets only
their own. From a student's kernel, the course directory, the hub's state and the other student's
home are out of reach. Screenshots of every step: build/screenshots/hub-*.png.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import ROOT, free_port, running, screenshot
from coursetools.common import venv_env
from qa.corpus import solution_answers
from labpage import open_menu, open_notebook, validate

pytestmark = pytest.mark.hub

A73 = "73_backprop_scalar"
PASSWORD = "hub-test-password"
INSTRUCTOR, RIGHT, PARTLY = "sensei", "aoki", "baba"
PROXY = ROOT / "deploy" / "node_modules" / ".bin" / "configurable-http-proxy"


class Hub:
    def __init__(self, url: str, state: Path, log: Path):
        self.url, self.state, self.log = url, state, log


class UserLab:
    """What labpage's helpers need: url(path) of one user's server behind the hub."""

    def __init__(self, hub: Hub, user: str):
        self.base = f"{hub.url}/user/{user}"

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    if not PROXY.exists():
        pytest.fail("configurable-http-proxy is missing: run `make test-hub` (it installs deploy/package-lock.json)")
    state = tmp_path_factory.mktemp("hub")
    port = free_port()
    env = venv_env(NEURAL_HUB_DIR=str(state), NEURAL_HUB_PASSWORD=PASSWORD, NEURAL_HUB_PORT=str(port),
                   NEURAL_HUB_API_PORT=str(free_port()), NEURAL_HUB_HUB_PORT=str(free_port()),
                   NEURAL_HUB_INSTRUCTORS=INSTRUCTOR, NEURAL_HUB_STUDENTS=f"{RIGHT},{PARTLY}",
                   NEURAL_HUB_EXPOSE_APP="1")
    log = state / "jupyterhub.log"
    url = f"http://127.0.0.1:{port}"
    with running([sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "deploy" / "jupyterhub_config.py")],
                 state, env, log, url + "/hub/health", "JupyterHub"):
        yield Hub(url, state, log)


def login(browser, hub: Hub, user: str):
    """A browser context of its own (its own cookies); returns the page on the user's JupyterLab."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(hub.url + "/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=120_000)
    page.wait_for_selector(".lm-MenuBar-item", state="visible", timeout=120_000)
    return page


def formgrader_click(page, locator, shot: str) -> str:
    """Click a formgrader action, wait for its Success/Error dialog, close it; returns its text."""
    locator.click()
    modal = page.locator("#success-modal, #error-modal").first
    modal.wait_for(state="visible", timeout=180_000)
    text, which = modal.inner_text(), modal.get_attribute("id")
    screenshot(page, shot)
    modal.locator(".modal-footer button").first.click()
    modal.wait_for(state="detached", timeout=30_000)
    assert which == "success-modal", text[:2000]
    return text


def assignment_row(page):
    return page.locator("tbody tr", has=page.locator("td", has_text=A73)).first


def answers(chosen: set[str] | None) -> dict[str, str]:
    """grade_id -> source: the solution's answer cells (all, or only `chosen`)."""
    return {k: v for k, v in solution_answers(A73).items() if chosen is None or k in chosen}


SET_ANSWERS = """(answers) => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = panel.content.model.cells;
    let n = 0;
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        const meta = cell.getMetadata('nbgrader') || {};
        if (meta.grade_id && answers[meta.grade_id] !== undefined) { cell.sharedModel.setSource(answers[meta.grade_id]); n += 1; }
    }
    return n;
}"""

KERNEL_RUN = """async (code) => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const future = kernel.requestExecute({code});
    let out = '';
    future.onIOPub = (msg) => {
        if (msg.header.msg_type === 'stream') out += msg.content.text;
        if (msg.header.msg_type === 'error') out += msg.content.ename + ': ' + msg.content.evalue;
    };
    await future.done;
    return out;
}"""


def student_fetch_answer_submit(page, hub: Hub, user: str, chosen: set[str] | None) -> str:
    open_menu(page, "Nbgrader", "Assignment List")
    released = page.locator("#released_assignments_list")
    released.get_by_text(A73).wait_for(timeout=60_000)
    screenshot(page, f"hub-{user}-1-released")
    released.locator("button", has_text="Fetch").first.click()
    page.locator("#fetched_assignments_list").get_by_text(A73).first.wait_for(timeout=60_000)

    open_notebook(page, UserLab(hub, user), f"{A73}/{A73}.ipynb")
    sources = answers(chosen)
    filled = page.evaluate(SET_ANSWERS, sources)
    assert filled == len(sources), f"{user}: {filled} answer cells filled"
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(1500)
    verdict = validate(page)
    screenshot(page, f"hub-{user}-2-validated")
    page.locator(".jp-Dialog .jp-mod-accept").first.click()

    open_menu(page, "Nbgrader", "Assignment List")
    fetched = page.locator("#fetched_assignments_list")
    fetched.locator("button", has_text="Submit").first.click()
    page.locator("#submitted_assignments_list").get_by_text(A73).first.wait_for(timeout=60_000)
    screenshot(page, f"hub-{user}-3-submitted")
    return verdict


def test_a_class_from_release_to_feedback(browser, hub):
    # -- the instructor releases 73 -------------------------------------------------------------------
    teacher = login(browser, hub, INSTRUCTOR)
    # The formgrader in its own tab: JupyterHub (>= 4.1) forbids framing single-user pages
    # (frame-ancestors 'none'), so Nbgrader -> Formgrader's iframe stays blank on a hub.
    formgrader = f"{hub.url}/user/{INSTRUCTOR}/formgrader/manage_assignments"
    teacher.goto(formgrader)
    assignment_row(teacher).wait_for(timeout=60_000)
    formgrader_click(teacher, assignment_row(teacher).locator("td.assign a"), "hub-sensei-1-generated")
    formgrader_click(teacher, assignment_row(teacher).locator("td.release a"), "hub-sensei-2-released")

    # -- two students fetch, answer, validate and submit ------------------------------------------------
    aoki = login(browser, hub, RIGHT)
    assert student_fetch_answer_submit(aoki, hub, RIGHT, None) == "success"
    baba = login(browser, hub, PARTLY)
    partly = {"ex73_2-answer"}
    assert student_fetch_answer_submit(baba, hub, PARTLY, partly) == "failed"

    # -- baba files a copy of their own notebook as aoki's, later than aoki's real submission ------------
    open_notebook(baba, UserLab(hub, PARTLY), f"{A73}/{A73}.ipynb")
    forged = f"{RIGHT}+{A73}+2099-01-01 00:00:00.000000 UTC+forged"
    out = baba.evaluate(KERNEL_RUN, f"""
import os, shutil
target = "/srv/nbgrader/exchange/neural-engine-unit00/inbound/{forged}"
os.makedirs(target)
shutil.copy("/home/{PARTLY}/{A73}/{A73}.ipynb", target)
print("written", os.path.isfile(os.path.join(target, "{A73}.ipynb")))
""")
    assert "written True" in out, out

    # -- the instructor collects, autogrades, sees both scores -------------------------------------------
    teacher.goto(formgrader)
    assignment_row(teacher).wait_for(timeout=60_000)
    collected = formgrader_click(teacher, assignment_row(teacher).locator("td.collect a"), "hub-sensei-3-collected")
    assert "claims to be a submission of 'aoki'" in collected, collected[:2000]
    assert (hub.state / "exchange" / "neural-engine-unit00" / "quarantine" / forged).is_dir()
    teacher.goto(formgrader)
    assignment_row(teacher).locator("td.num-submissions a").click()
    scores = {}
    for user in (RIGHT, PARTLY):
        row = teacher.locator("tbody tr", has=teacher.locator("td", has_text=user)).first
        row.wait_for(timeout=60_000)
        formgrader_click(teacher, row.locator("td.autograde a"), f"hub-sensei-4-autograded-{user}")
    for user in (RIGHT, PARTLY):
        row = teacher.locator("tbody tr", has=teacher.locator("td", has_text=user)).first
        scores[user] = row.locator("td.score").inner_text().strip()
    screenshot(teacher, "hub-sensei-5-scores")
    # aoki: every exercise (10 points); baba: only 73.2, Exp and Divide (4 points), the forged copy under aoki's
    # name ignored (73.2's tests call the nodes' backward() themselves, so baba's blank backward_pass costs nothing there)
    assert scores == {RIGHT: "10 / 10", PARTLY: "4 / 10"}, scores

    teacher.goto(formgrader)
    assignment_row(teacher).wait_for(timeout=60_000)
    formgrader_click(teacher, assignment_row(teacher).locator("td.generate-feedback a"), "hub-sensei-6-feedback")
    formgrader_click(teacher, assignment_row(teacher).locator("td.release-feedback a"), "hub-sensei-7-released")

    # -- each student fetches their own feedback ---------------------------------------------------------
    for user, page in ((RIGHT, aoki), (PARTLY, baba)):
        open_menu(page, "Nbgrader", "Assignment List")
        submitted = page.locator("#submitted_assignments_list")
        submitted.locator("button", has_text="Fetch Feedback").first.click()
        submitted.get_by_text("(view feedback)").first.wait_for(timeout=60_000)
        screenshot(page, f"hub-{user}-4-feedback")
        files = sorted((hub.state / "home" / user / A73 / "feedback").glob(f"*/{A73}.html"))
        assert len(files) == 1, f"{user}: feedback files {files}"
        html = files[0].read_text(encoding="utf-8")
        mine = scores[user].replace(" ", "").split("/")
        assert f"{float(mine[0]):g}" in html, f"{user}: the feedback does not show the score {scores[user]}"
        page.goto(f"{hub.url}/user/{user}/files/{files[0].relative_to(hub.state / 'home' / user).as_posix()}")
        page.wait_for_timeout(1000)
        screenshot(page, f"hub-{user}-5-feedback-page")
    assert (hub.state / "home" / RIGHT / A73 / "feedback").is_dir()

    # -- what a student's code can reach ---------------------------------------------------------------------
    open_notebook(aoki, UserLab(hub, RIGHT), f"{A73}/{A73}.ipynb")
    probe = f"""
import os
paths = {{"course": {str(hub.state / 'course')!r}, "hub state": {str(hub.state)!r},
          "other home (outside)": {str(hub.state / 'home' / PARTLY)!r}, "other home": "/home/{PARTLY}",
          "gradebook": {str(hub.state / 'course' / 'gradebook.db')!r}}}
print("uid", os.getuid())
for name, path in paths.items():
    print(name, os.path.exists(path))
try:
    print("exchange feedback listable", bool(os.listdir("/srv/nbgrader/exchange/neural-engine-unit00/feedback")))
except PermissionError:
    print("exchange feedback listable", False)
"""
    out = aoki.evaluate(KERNEL_RUN, probe)
    lines = dict(line.rsplit(" ", 1) for line in out.strip().splitlines())
    assert lines.pop("uid") != "0", out
    assert set(lines.values()) == {"False"}, f"a student's kernel reaches: {out}"
