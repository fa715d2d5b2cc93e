"""Hostile and broken submissions (coursetools/hostile.py), graded the way a real class is graded
(coursetools.grade: nbgrader autograde with the limited kernel, offline where the OS allows).

Each must finish in bounded time, earn no unearned points, never stop the grading of other
students or cells, and anything that could not be graded is reported with a reason."""
import os

import pytest

from coursetools import hostile, limited_kernel

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
        assert not review, f"{student} ({case.what}): flagged unexpectedly: {review}"
        assert scores == case.expect, f"{student} ({case.what}): scores {scores}, expected {case.expect}"


def test_review_reasons_are_specific(hostile_run):
    reasons = {student: reason for (student, _), reason in hostile_run["reviews"].items()}
    assert "kernel died" in reasons["h-kill"]
    assert "71_chain_rule (1).ipynb" in reasons["h-renamed"] and "rename" in reasons["h-renamed"]
    assert "truncated" in reasons["h-truncated"]
    assert "duplicate ids ex61-tests" in reasons["h-duplicated-tests"]


@pytest.mark.parametrize("student", sorted(s for s, c in CASES.items() if c.expect_output))
def test_the_graded_notebook_shows_what_stopped_the_submission(hostile_run, student):
    """The grading guard's messages, and h-memory's MemoryError (stopped by the limit, not the machine)."""
    case = CASES[student]
    assert case.expect_output in hostile_run["outputs"][student], \
        f"{student} ({case.what}): {case.expect_output!r} is not in the autograded notebook's output"


def test_numpy_cheats_would_earn_points_without_the_grading_guard():
    """The guard is what stops them: graded without it (forkgrade runs no guard), each cheat passes."""
    from coursetools.forkgrade import Variant, run_variants

    verdicts = run_variants(hostile.A71, [Variant(student, "ex61-answer", answer, "exercise")
                                          for student, answer in hostile.NUMPY_CHEATS.items()])
    for student, verdict in verdicts.items():
        assert verdict.passed == ["ex61-tests"] and not verdict.failed, \
            f"{student} fails even without the guard, so the hostile case proves nothing: {verdict}"


def test_the_grading_guard_blocks_replacing_and_deleting_module_functions():
    import subprocess
    import sys

    from coursetools.common import ROOT

    code = (f"exec(open({str(ROOT / 'coursetools' / 'grading_guard.py')!r}).read())\n"
            "import numpy as np, math\n"
            "for stmt in ('np.abs = abs', 'np.testing.assert_allclose = None', 'math.isclose = 1',\n"
            "             'del np.max', 'np.linalg.norm = 0'):\n"
            "    try:\n        exec(stmt)\n        print('allowed', stmt)\n"
            "    except AttributeError as e:\n        print('blocked', e)\n"
            "import numpy.fft\nnp.new_name = 1\nprint('still works', float(np.abs(-2.0)), np.new_name)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "allowed" not in out, out
    assert out.count("blocked") == 5 and "を置き換えられません" in out, out
    assert "still works 2.0 1" in out, out


def test_huge_output_is_truncated_in_the_graded_notebook(hostile_run):
    text = hostile_run["outputs"]["h-output"]
    assert text and len(text) < 2_000_000, f"the autograded notebook holds {len(text)} characters of output"


@pytest.mark.skipif(not limited_kernel.network_isolation_available(),
                    reason="this OS does not allow network namespaces (needs root or CAP_SYS_ADMIN)")
def test_student_code_has_no_network_when_grading_offline(hostile_run):
    assert hostile_run["offline"]
    assert "NETWORK: blocked" in hostile_run["outputs"]["h-network"]
    assert "NETWORK: reachable" not in hostile_run["outputs"]["h-network"]


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


def test_limits_are_applied_in_the_kernel():
    """The limited kernel sets the address-space limit it is given (checked in a child process)."""
    import subprocess
    import sys

    from coursetools.common import ROOT

    code = ("import resource, coursetools.limited_kernel as k; k.apply_limits(); "
            "print(resource.getrlimit(resource.RLIMIT_AS)[0])")
    env = dict(os.environ, NEURAL_ENGINE_MEMORY=str(1 << 30), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert int(out) == 1 << 30


def test_redflags_names_every_cheat_and_broken_file_but_not_the_honest_ones(hostile_run):
    from coursetools.redflags import scan

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
