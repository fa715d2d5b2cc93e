"""Hostile and broken submissions (coursetools/hostile.py), graded the way a real class is graded
(coursetools.grading.autograde: a runner sandbox and a judge sandbox per submission).

Each must finish in bounded time, earn no unearned points, never stop the grading of other
students or cells, and anything that could not be graded is reported with a reason."""
import os
import subprocess
import sys

import nbformat
import pytest

from coursetools.grading import sandbox
from qa import hostile

CASES = {case.student: case for case in hostile.cases(network_port=1)}


@pytest.mark.parametrize("student", sorted(CASES))
def test_each_hostile_submission_gets_exactly_its_expected_outcome(hostile_run, student):
    case = CASES[student]
    review = hostile_run["reviews"].get((student, case.assignment))
    scores = hostile_run["scores"].get(student, {}).get(case.assignment)
    if case.expect == "review":
        assert review, f"{student} ({case.what}): must be reported for manual review, got scores {scores}"
        assert not scores or sum(scores.values()) == 0, f"{student}: points recorded for an ungraded submission"
    else:
        if case.review_too:
            assert review, f"{student} ({case.what}): graded, but must also be reported for review"
            assert ("slowly" in review) == case.slow, f"{student} ({case.what}): review reason {review!r}"
        else:
            assert not review, f"{student} ({case.what}): flagged unexpectedly: {review}"
        assert scores == case.expect, f"{student} ({case.what}): scores {scores}, expected {case.expect}"


def test_review_reasons_are_specific(hostile_run):
    reasons = {student: reason for (student, _), reason in hostile_run["reviews"].items()}
    assert "sandbox was stopped" in reasons["h-kill"]
    assert "71_chain_rule (1).ipynb" in reasons["h-renamed"] and "rename" in reasons["h-renamed"]
    assert "truncated" in reasons["h-truncated"]
    assert "duplicate ids ex71_1-tests" in reasons["h-duplicated-tests"]
    assert "moved out of the assignment's order" in reasons["h-reorder"]


@pytest.mark.parametrize("student", sorted(s for s, c in CASES.items() if c.expect_output))
def test_the_graded_notebook_shows_what_stopped_the_submission(hostile_run, student):
    """h-memory's MemoryError (stopped by the limit, not the machine), the blocked network probe, and
    h-files finding no instructor file."""
    case = CASES[student]
    for text in (case.expect_output,) if isinstance(case.expect_output, str) else case.expect_output:
        assert text in hostile_run["outputs"][student], \
            f"{student} ({case.what}): {text!r} is not in the autograded notebook's output"


def test_numpy_cheats_would_earn_points_if_tests_ran_in_the_students_process():
    """The sandboxed judge is what stops them: run as stock nbgrader runs a notebook (answers and test
    cells in one process), each cheat passes 71.1's test cell, hidden part included."""
    from qa.fastgrade import plan

    cells = plan(hostile.A71)
    answer = next(i for i, c in enumerate(cells) if c.grade_id == "ex71_1-answer")
    tests = next(c for c in cells if c.grade_id == "ex71_1-tests")
    before = [c.source for c in cells[:answer] if c.kind == "code"]
    for student, cheat in hostile.NUMPY_CHEATS.items():
        script = "\n".join(["import matplotlib", "matplotlib.use('Agg')",
                            "_ns = {'__name__': '__main__'}",
                            *[f"exec(compile({src!r}, '<cell>', 'exec'), _ns)" for src in before + [cheat]],
                            f"exec(compile({tests.source!r}, '<test>', 'exec'), _ns)", "print('PASSED')"])
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              cwd=os.path.dirname(os.path.dirname(hostile.__file__)))
        assert "PASSED" in proc.stdout, \
            f"{student} fails even in the student's process, so the hostile case proves nothing: {proc.stderr[-600:]}"


def test_huge_output_is_truncated_in_the_graded_notebook(hostile_run):
    text = hostile_run["outputs"]["h-output"]
    assert text and len(text) < 2_000_000, f"the autograded notebook holds {len(text)} characters of output"


def test_the_network_probe_reaches_the_server_without_isolation():
    """The probe itself works (so 'blocked' above is the isolation's doing, not a broken probe)."""
    server, port = hostile._listen()
    try:
        code = [c for c in hostile.cases(port) if c.student == "h-network"][0]
        nb = code.build()
        probe = next(c.source for c in nb.cells if "NETWORK" in c.source)
        probe = probe[probe.index("import socket as _socket"):]
        import contextlib
        import io
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(probe, {})
        assert "NETWORK: reachable" in buf.getvalue()
    finally:
        server.close()


def test_grading_finishes_in_bounded_time(hostile_run):
    # two deliberate stalls (infinite loop, sleep) of hostile.CELL_TIMEOUT seconds each, plus 19 notebooks
    assert hostile_run["seconds"] < 240, f"grading the hostile class took {hostile_run['seconds']:.0f} s"


def test_no_thread_of_student_code_reaches_the_network(hostile_run):
    text = hostile_run["outputs"]["h-network"]
    assert "NETWORK: blocked (main thread)" in text and "NETWORK: blocked (another thread)" in text, text[-800:]
    assert "reachable" not in text


def test_hidden_tests_never_reach_the_students_process(hostile_run):
    """h-files prints In and every file it can find; nothing of the tests or the course is there."""
    text = hostile_run["outputs"]["h-files"]
    assert "FILES: none found" in text and "WROTE: nothing" in text, text[:2000]
    for secret in ("BEGIN HIDDEN", "_grader", "_rs = np.random"):
        assert secret not in text, f"{secret!r} reached the student's process: {text[:2000]}"


def test_no_process_of_a_submission_survives_grading(hostile_run):
    """h-linger started a process and a forked daemon; the sandbox's end took them along."""
    left = []
    for pid in os.listdir("/proc"):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        if pid.isdigit() and sandbox.UID_FIRST <= uid < sandbox.UID_FIRST + sandbox.UID_COUNT:
            left.append(pid)
    assert not left, f"processes of sandbox users still running: {left}"
    course = hostile_run["course"]
    assert "late" not in (course / "gradebook.db").read_bytes()[-200:].decode("latin-1")


def test_html_and_javascript_from_students_do_not_reach_a_browser(hostile_run):
    path = hostile_run["course"] / "autograded" / "h-html" / hostile.A71 / f"{hostile.A71}.ipynb"
    nb = nbformat.read(path, as_version=4)
    from nbconvert.filters.markdown import markdown2html

    # markdown as the formgrader and feedback render it; code is shown as escaped text
    shown = [markdown2html(c.source).lower() for c in nb.cells if c.cell_type == "markdown"]
    shown += [nbformat.writes(nbformat.from_dict({"o": c.get("outputs", [])})) for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(shown)
    assert "alert" in nbformat.writes(nb), "the hostile markdown and outputs were not in the submission"
    for bad in ("<script", "onerror=", 'href="javascript:', "text/html", "application/javascript"):
        assert bad not in text, f"{bad!r} is in what the formgrader shows of the autograded notebook"


def test_the_sandbox_holds_nothing_of_the_instructors():
    """Inside: not root, no course directory, no network, read-only runtime, writable /tmp only."""
    from coursetools.common import ROOT

    code = ("import os, socket, sys\n"
            f"print('uid', os.getuid())\n"
            "print('caps', open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
            "try:\n    open('/tmp/big', 'wb').write(b'0' * (200 << 20)); print('disk unbounded')\n"
            "except OSError:\n    print('disk bounded')\n"
            "import os as _o\n_o.path.exists('/tmp/big') and _o.remove('/tmp/big')\n"
            f"print('course', os.path.exists({str(ROOT / 'source')!r}), os.path.exists({str(ROOT / 'nbgrader_config.py')!r}))\n"
            "try:\n    socket.create_connection(('127.0.0.1', 22), timeout=2); print('net open')\n"
            "except OSError as e:\n    print('net blocked')\n"
            "for p in (sys.prefix + '/x', '/usr/x', '/tmp/x'):\n"
            "    try:\n        open(p, 'w').write('x'); print('write ok', p)\n"
            "    except OSError:\n        print('write blocked', p)\n")
    lease = sandbox.lease_uid() if os.geteuid() == 0 else None
    try:
        cmd = sandbox.command("runner", lease.uid if lease else None, None)
        cmd = cmd[:-4] + [cmd[-4], "-I", "-c", code]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    finally:
        if lease:
            lease.release()
    assert "uid 0" not in out and "course False False" in out and "net blocked" in out, out
    assert "caps 0000000000000000" in out and "disk bounded" in out, out
    assert "write ok /tmp/x" in out and out.count("write blocked") == 2, out


def test_a_fork_bomb_and_a_memory_hog_are_bounded_for_the_whole_tree():
    """The cgroup bounds processes and memory of all processes of a submission together."""
    from coursetools.grading import session

    bomb = ("import os, time\nkids = 0\n"
            "for _ in range(500):\n"
            "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
            "    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
            "    kids += 1\nprint('children', kids)\n")
    report = session.grade_cells([session.Cell(0, "code", bomb)], session.Settings(cell_timeout=20, deadline=60))
    out = report.outputs[0].stdout
    assert "children" in out and int(out.split()[-1]) < sandbox.PIDS, out


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups are created only when grading as root")
def test_the_cgroup_bounds_memory_processes_and_cpu_of_the_whole_tree():
    group = sandbox.Cgroup.create("test-limits", 3 << 30, 64, 1.0)
    assert group, "no cgroup could be created here"
    try:
        values = {}
        for path in group.paths:
            for name in ("memory.max", "memory.limit_in_bytes", "pids.max", "cpu.max", "cpu.cfs_quota_us"):
                if (path / name).is_file():
                    values[name] = (path / name).read_text().split()[0]
        assert values.get("memory.max", values.get("memory.limit_in_bytes")) == str(3 << 30), values
        assert values["pids.max"] == "64", values
        assert values.get("cpu.max", values.get("cpu.cfs_quota_us")) == "100000", values
    finally:
        group.remove()


def test_names_from_submissions_are_escaped_in_reports():
    from coursetools.grading.autograde import printable

    assert printable("eve\x1b[2J\x07") == "eve\\x1b[2J\\x07"
    assert printable("青木") == "青木"


def test_redflags_names_every_cheat_and_broken_file_but_not_the_honest_ones(hostile_run):
    from coursetools.grading.redflags import scan

    flagged = {f.student: f.reason for f in scan(hostile_run["course"] / "submitted")}
    must = {"h-cheat-checker": "relative_error", "h-cheat-eq": "__eq__", "h-cheat-patch": "NumPy",
            "h-cheat-np-max": "NumPy", "h-cheat-np-fake": "name np",
            "h-kill": "stopped", "h-sysexit": "stopped", "h-edited-tests": "edited", "h-deleted-tests": "deleted",
            "h-markdown-tests": "markdown", "h-duplicated-tests": "copy-pasted", "h-renamed": "(1)",
            "h-truncated": "not a readable notebook"}
    for student, word in must.items():
        assert student in flagged, f"make redflags misses {student} ({CASES[student].what})"
    reasons = {}
    for f in scan(hostile_run["course"] / "submitted"):
        reasons.setdefault(f.student, []).append(f.reason)
    for student, word in must.items():
        assert any(word in r for r in reasons[student]), f"{student}: reasons {reasons[student]} do not mention {word!r}"
    for honest in ("h-control", "h-stderr", "h-output", "h-loop"):
        assert honest not in flagged, f"{honest} flagged: {flagged.get(honest)}"


def test_the_gradebook_agrees_with_the_graders_verdicts_after_a_hostile_class(hostile_run):
    """Every autograded score is what the grader decided; no manual score or extra credit appeared."""
    reviews = [reason for reason in hostile_run["reviews"].values() if "gradebook check" in reason]
    assert not reviews, reviews


def test_a_tampered_gradebook_is_reported(hostile_run, tmp_path):
    """What the check would say if anything but the grader wrote the gradebook: a manual score, extra
    credit and an autograded score nobody decided, each named."""
    import shutil

    from nbgrader.api import Gradebook

    from coursetools.grading.autograde import check_gradebook, gradebook_state

    course = hostile_run["course"]
    names = [hostile.A71]
    before = gradebook_state(course, names)
    shutil.copy(course / "gradebook.db", tmp_path / "gradebook.db")
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        gb.find_grade("ex71_1-tests", hostile.A71, hostile.A71, "h-control").manual_score = 1.0
        gb.find_grade("ex71_1-tests", hostile.A71, hostile.A71, "h-loop").extra_credit = 2.0
        gb.find_grade("ex71_1-tests", hostile.A71, hostile.A71, "h-edited-tests").auto_score = 3.0
        gb.db.commit()
    after = gradebook_state(tmp_path, names)
    records = course / "build" / "sandbox"
    assert check_gradebook(before, before, records) == [], "the untouched gradebook must pass the check"
    found = {r.student: r.reason for r in check_gradebook(before, after, records)}
    assert set(found) == {"h-control", "h-loop", "h-edited-tests"}, found
    assert "manual score 1.0" in found["h-control"]
    assert "extra credit 2.0" in found["h-loop"]
    assert "autograded score 3.0" in found["h-edited-tests"] and "failed" in found["h-edited-tests"]
