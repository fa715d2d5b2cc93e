"""A class on this course's JupyterHub (deploy/jupyterhub_config.py), driven in headless Chromium.

`make test-hub` runs this and test_hub_hostile.py (they are left out of `make test-browser`). The test
starts JupyterHub on 127.0.0.1 with an instructor (sensei) and the roster 青木 (aoki), 馬場 (baba) and
千葉 (chiba), then follows a week of class, with a screenshot of every step in build/screenshots/hub-*.png:

- sensei opens the formgrader from the Lab menu (inside Lab) and in its own tab, generates and releases 73
  (the due-date field is in the course's time zone, +0900);
- aoki (Lab in Japanese) fetches 73 from the Assignment List, answers everything, validates, submits, and runs
  `nbgrader list` in a terminal; sensei moves the due date to now; baba answers one exercise and submits
  (late); chiba submits a folder without the assignment's notebook;
- sensei collects: the dialog says one student needs a look (chiba), aoki and baba are collected; the
  submissions show 青木 on time and 馬場 late; autograde with progress; 10 / 10 and 4 / 10; feedback generated
  and released; grades.csv has submitted_at / late / seconds_late;
- each student fetches feedback and opens it from the assignment list ("(view feedback)");
- from aoki's kernel the course directory, the hub's state and the other homes do not exist, the uid is not 0
  and the network has nothing but loopback.
"""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port, running, screenshot
from coursetools.common import venv_env
from hubclient import HubUser
from labpage import open_menu, open_notebook, validate
from qa.corpus import solution_answers

pytestmark = pytest.mark.hub

A73 = "73_backprop_scalar"
COURSE = "neural-engine-unit00"
PASSWORD = "hub-test-password"
INSTRUCTOR, RIGHT, PARTLY, ODD = "sensei", "aoki", "baba", "chiba"
PROXY = ROOT / "deploy" / "node_modules" / ".bin" / "configurable-http-proxy"
ROSTER = "id,last_name,first_name,email\naoki,青木,花子,\nbaba,馬場,太郎,\nchiba,千葉,次郎,\n"


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
    roster = state.parent / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    port = free_port()
    env = venv_env(NEURAL_HUB_DIR=str(state), NEURAL_HUB_PASSWORD=PASSWORD, NEURAL_HUB_PORT=str(port),
                   NEURAL_HUB_API_PORT=str(free_port()), NEURAL_HUB_INSTRUCTORS=INSTRUCTOR,
                   NEURAL_HUB_ROSTER=str(roster), NEURAL_HUB_EXPOSE_APP="1")
    env.pop("NEURAL_HUB_STUDENTS", None)
    log = state.parent / "jupyterhub.log"
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


def formgrader_click(page, locator, shot: str, during: str | None = None) -> tuple[str, str]:
    """Click a formgrader action, wait for its dialog, close it; returns (dialog id, text)."""
    locator.click()
    if during:                       # the progress line at the bottom while the operation runs
        page.locator("#coursehub-progress").wait_for(state="visible", timeout=60_000)
        page.wait_for_timeout(1500)
        screenshot(page, during)
    modal = page.locator("#success-modal, #error-modal, #problem-modal").first
    modal.wait_for(state="visible", timeout=300_000)
    page.wait_for_timeout(800)                  # the dialog's fade-in
    text, which = modal.inner_text(), modal.get_attribute("id")
    screenshot(page, shot)
    modal.locator(".modal-footer button").first.click()
    modal.wait_for(state="detached", timeout=30_000)
    assert which in ("success-modal", "problem-modal"), text[:2000]
    return which, text


def assignment_row(page):
    return page.locator("tbody tr", has=page.locator("td", has_text=A73)).first


def answers(chosen: set[str] | None) -> dict[str, str]:
    """grade_id -> source: the solution's code answers and a written answer for each written question (all,
    or only `chosen`)."""
    found = dict(solution_answers(A73))
    for grade_id, _ in written_and_points()[0]:
        found.setdefault(grade_id, "逆伝播では、出力から入力へ向かって局所的な勾配を掛け合わせていきます。")
    return {k: v for k, v in found.items() if chosen is None or k in chosen}


def written_and_points() -> tuple[list[tuple[str, float]], float]:
    """The written (manually graded) answer cells with their points, and the points of the autograded tests."""
    nb = json.loads((ROOT / "source" / A73 / f"{A73}.ipynb").read_text(encoding="utf-8"))
    written, auto = [], 0.0
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "markdown":
            written.append((meta["grade_id"], float(meta.get("points", 0))))
        elif meta.get("grade") and not meta.get("solution") and cell["cell_type"] == "code":
            auto += float(meta.get("points", 0))
    return written, auto


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
    started = time.monotonic()
    # -- the instructor: the formgrader inside Lab (menu) and in its own tab; generate and release 73 ----------
    teacher = login(browser, hub, INSTRUCTOR)
    screenshot(teacher, "hub-sensei-0-lab")
    open_menu(teacher, "Nbgrader", "Formgrader")
    frame = teacher.frame_locator("iframe").first
    frame.get_by_text(A73).first.wait_for(timeout=60_000)
    screenshot(teacher, "hub-sensei-1-formgrader-in-lab")
    formgrader = f"{hub.url}/user/{INSTRUCTOR}/formgrader/manage_assignments"
    teacher.goto(formgrader)
    assignment_row(teacher).wait_for(timeout=60_000)
    formgrader_click(teacher, assignment_row(teacher).locator("td.assign a"), "hub-sensei-2-generated")
    formgrader_click(teacher, assignment_row(teacher).locator("td.release a"), "hub-sensei-3-released")
    # the due-date field starts in the course's time zone
    assignment_row(teacher).locator("td.edit a").first.click()
    zone = teacher.locator("#edit-assignment-modal input.modal-timezone")
    zone.wait_for(timeout=30_000)
    assert zone.input_value() == "+0900", zone.input_value()
    screenshot(teacher, "hub-sensei-4-duedate-field")
    teacher.locator("#edit-assignment-modal button", has_text="Cancel").first.click()

    # -- aoki: Lab in Japanese; fetch, answer, validate, submit; nbgrader in a terminal ---------------------------
    aoki = login(browser, hub, RIGHT)
    assert aoki.locator(".lm-MenuBar-item", has_text="ファイル").count() == 1, "the students' Lab is not in Japanese"
    screenshot(aoki, "hub-aoki-0-lab-ja")
    assert student_fetch_answer_submit(aoki, hub, RIGHT, None) == "success"
    aoki.evaluate("() => { window.jupyterapp.commands.execute('terminal:create-new'); return true; }")
    terminal = aoki.locator(".jp-Terminal").first
    terminal.wait_for(timeout=60_000)
    aoki.wait_for_timeout(1500)
    terminal.click()
    aoki.keyboard.type("nbgrader list && nbgrader list --cached && echo done > terminal-ok.txt\n")
    marker = hub.state / "home" / RIGHT / "terminal-ok.txt"       # the terminal draws on a canvas
    for _ in range(120):
        if marker.exists():
            break
        aoki.wait_for_timeout(500)
    assert marker.exists(), "nbgrader list failed in a student's terminal"
    aoki.wait_for_timeout(500)
    screenshot(aoki, "hub-aoki-4-terminal")

    # -- the due date moves to now: baba's submission, after it, is late -----------------------------------------
    sensei = HubUser(hub.url, INSTRUCTOR, PASSWORD)
    due = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3))
    r = sensei.api("PUT", f"/formgrader/api/assignment/{A73}", json={"duedate_notimezone": due, "duedate_timezone": "+0000"})
    assert r.status_code == 200, r.text[:300]
    time.sleep(4)
    baba = login(browser, hub, PARTLY)
    assert student_fetch_answer_submit(baba, hub, PARTLY, {"ex73_2-answer"}) == "failed"

    # -- chiba submits a folder without the assignment's notebook ----------------------------------------------------
    chiba = HubUser(hub.url, ODD, PASSWORD)
    chiba.start_server()
    chiba.api("POST", "/assignments/fetch", json={"course_id": COURSE, "assignment_id": A73})
    print(chiba.run(f"import os\nos.rename('{A73}/{A73}.ipynb', '{A73}/my_answers.ipynb')\nprint('renamed')"))
    chiba.api("POST", "/assignments/submit", json={"course_id": COURSE, "assignment_id": A73})

    # -- collect: one student needs a look, the others are collected; lateness; autograde with progress ------------
    teacher.goto(formgrader)
    assignment_row(teacher).wait_for(timeout=60_000)
    which, collected = formgrader_click(teacher, assignment_row(teacher).locator("td.collect a"), "hub-sensei-5-collected")
    assert which == "problem-modal" and "chiba" in collected and "none of the assignment's notebooks" in collected, \
        collected[:2000]
    assert "WARNING" not in collected, collected[:2000]
    assert list((hub.state / "course" / "quarantine" / A73).glob("chiba+*/my_answers.ipynb"))
    teacher.goto(formgrader)
    assignment_row(teacher).locator("td.num-submissions a").click()
    late_labels = {}
    for user in (RIGHT, PARTLY):
        row = teacher.locator("tbody tr", has=teacher.locator("td", has_text=user)).first
        row.locator(".coursehub-late").wait_for(timeout=60_000)
        late_labels[user] = row.locator(".coursehub-late").inner_text()
    screenshot(teacher, "hub-sensei-6-submissions-lateness")
    assert late_labels[RIGHT] == "on time" and late_labels[PARTLY].startswith("late"), late_labels
    scores = {}
    for user in (RIGHT, PARTLY):
        row = teacher.locator("tbody tr", has=teacher.locator("td", has_text=user)).first
        _, log = formgrader_click(teacher, row.locator("td.autograde a"), f"hub-sensei-8-autograded-{user}",
                                  during="hub-sensei-7-autograde-progress" if user == RIGHT else None)
        honest_warnings = [line for line in log.splitlines() if "WARNING" in line and "late" not in line.lower()]
        assert not honest_warnings, honest_warnings
    for user in (RIGHT, PARTLY):
        row = teacher.locator("tbody tr", has=teacher.locator("td", has_text=user)).first
        scores[user] = row.locator("td.score").inner_text().strip()
    screenshot(teacher, "hub-sensei-9-scores")
    # aoki: every autograded point (the written answers wait for the instructor); baba: some of 73.2's, not all
    written, auto = written_and_points()
    total = auto + sum(p for _, p in written)
    got = {user: [float(x) for x in score.replace(" ", "").split("/")] for user, score in scores.items()}
    assert got[RIGHT] == [auto, total], scores
    assert 0 < got[PARTLY][0] < auto and got[PARTLY][1] == total, scores
    teacher.goto(f"{hub.url}/user/{INSTRUCTOR}/formgrader/manage_students")
    teacher.get_by_text("青木").first.wait_for(timeout=60_000)
    screenshot(teacher, "hub-sensei-10-roster-names")
    assert teacher.get_by_text("None, None").count() == 0

    teacher.goto(formgrader)
    assignment_row(teacher).wait_for(timeout=60_000)
    _, log = formgrader_click(teacher, assignment_row(teacher).locator("td.generate-feedback a"),
                              "hub-sensei-11-feedback")
    assert "WARNING" not in log, [line for line in log.splitlines() if "WARNING" in line]
    formgrader_click(teacher, assignment_row(teacher).locator("td.release-feedback a"), "hub-sensei-12-released")

    # -- grades.csv: the time each submission arrived and whether it was late --------------------------------------
    out = sensei.run("import subprocess\np = subprocess.run(['nbgrader', 'export', '--to', 'grades.csv'], "
                      "capture_output=True, text=True)\nprint(p.returncode)\nprint(open('grades.csv').read())")
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(out.split("\n", 1)[1]))}
    transport = "from ipykernel.connect import get_connection_info\nprint(get_connection_info(unpack=True)['transport'])"
    assert sensei.run(transport).strip() == "ipc", "the instructor's kernel is not on IPC"
    assert chiba.run(transport).strip() == "ipc", "a student's kernel is not on IPC"
    assert rows[RIGHT]["late"] == "no" and rows[PARTLY]["late"] == "yes", out[:2000]
    assert rows[RIGHT]["last_name"] == "青木" and rows[RIGHT]["submitted_at"].endswith("+09:00"), out[:2000]

    # -- each student fetches feedback and opens it from the assignment list -----------------------------------------
    for user, page in ((RIGHT, aoki), (PARTLY, baba)):
        open_menu(page, "Nbgrader", "Assignment List")
        submitted = page.locator("#submitted_assignments_list")
        submitted.locator("button", has_text="Fetch Feedback").first.click()
        link = submitted.get_by_text("(view feedback)").first
        link.wait_for(timeout=60_000)
        screenshot(page, f"hub-{user}-5-feedback-fetched")
        with page.context.expect_page(timeout=60_000) as opened:
            link.click()
        feedback = opened.value
        feedback.wait_for_load_state()
        text = feedback.locator("body").inner_text()
        screenshot(feedback, f"hub-{user}-6-feedback-opened")
        assert f"(Score: {round(got[user][0], 2)} / {round(got[user][1], 2)})" in text, \
            f"{user}: the opened page is not their feedback: {text[:300]}"
        files = sorted((hub.state / "home" / user / A73 / "feedback").glob(f"*/{A73}.html"))
        assert len(files) == 1, f"{user}: feedback files {files}"

    # -- what a student's code can reach ------------------------------------------------------------------------------
    open_notebook(aoki, UserLab(hub, RIGHT), f"{A73}/{A73}.ipynb")
    probe = f"""
import os, socket
paths = {{"course": {str(hub.state / 'course')!r}, "hub state": {str(hub.state)!r},
          "other home (outside)": {str(hub.state / 'home' / PARTLY)!r}, "other home": "/home/{PARTLY}",
          "gradebook": {str(hub.state / 'course' / 'gradebook.db')!r}}}
print("uid", os.getuid())
for name, path in paths.items():
    print(name, os.path.exists(path))
print("network", "+".join(sorted(n for _, n in socket.if_nameindex())))
"""
    out = aoki.evaluate(KERNEL_RUN, probe)
    lines = dict(line.rsplit(" ", 1) for line in out.strip().splitlines())
    assert lines.pop("uid") != "0", out
    assert lines.pop("network") == "lo", out
    assert set(lines.values()) == {"False"}, f"a student's kernel reaches: {out}"
    (ROOT / "build" / "hub-class-cycle.json").write_text(json.dumps(
        {"students": 3, "seconds": round(time.monotonic() - started, 1)}), encoding="utf-8")
