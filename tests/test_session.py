"""One submission's grading session (coursetools/grading/session.py): failures of the grader's own
sandboxes cost the cell concerned and nothing else, nbgrader's process takes only bounded verdicts
from the judge, and the channel's budgets hold before anything is allocated."""
import struct

import msgpack
import pytest

from coursetools.grading import session, wire
from coursetools.grading.proxies import MAX_TYPE_NAMES, ProxyTypes

ANSWER = session.Cell(0, "code", "def double(x):\n    return 2 * x\n")
AFTER = session.Cell(2, "test", "assert double(21) == 42", "<after>", "after")


def grade(test_source, timeout=5):
    cells = [ANSWER, session.Cell(1, "test", test_source, "<hostile judge>", "hostile"), AFTER]
    return session.grade_cells(cells, session.Settings(cell_timeout=timeout, deadline=120))


def _write_to_nbgrader(payload: str) -> str:
    """A test cell (it runs in the judge) playing a judge that student data subverted: it writes the
    bytes `payload` evaluates to on the judge's channel to nbgrader's process, then stalls."""
    return ("import gc, os, struct, time, msgpack\n"
            "from grading import wire as _wire\n"
            "_control = next(o for o in gc.get_objects() if isinstance(o, _wire.Channel) and o.budget is _wire.CONTROL)\n"
            f"_data = {payload}\n"
            "while _data:\n"
            "    _data = _data[os.write(_control.write_fd, _data):]\n"
            "time.sleep(30)\n")


@pytest.mark.parametrize("what, test_source", [
    ("the judge exits", "import os\nos._exit(1)"),
    ("the judge hangs", "while True:\n    pass"),
    ("a frame of 4 GiB", _write_to_nbgrader("struct.pack('>I', 0xFFFFFFF0)")),
    ("malformed msgpack", _write_to_nbgrader("struct.pack('>I', 3) + bytes([0xc1, 0xc1, 0xc1])")),
    ("a 13 MiB output string", _write_to_nbgrader(
        "(lambda b: struct.pack('>I', len(b)) + b)(msgpack.packb({'op': 'done', 'stdout': 'x' * (13 << 20)}))")),
    ("a reply that is not a map", _write_to_nbgrader("(lambda b: struct.pack('>I', len(b)) + b)(msgpack.packb(['done']))")),
])
def test_a_broken_or_subverted_judge_costs_its_cell_only(what, test_source, monkeypatch):
    monkeypatch.setattr(session, "GRACE", 2.0)
    report = grade(test_source, timeout=3)
    assert report.passed == {"hostile": False, "after": True}, f"{what}: {report.passed} {report.events}"
    assert report.outputs[1].error["ename"] in ("SandboxError", "CellTimeoutError"), report.outputs[1].error
    assert report.events, f"{what}: the restart must be recorded for the instructor"


def test_a_verdict_is_bounded_text_whatever_the_judge_says():
    """A judge's reply with oversized fields is cut to the limits before it enters the notebook."""
    long_message = "assert False, 'x' * 100_000"
    report = grade(long_message)
    assert report.passed["hostile"] is False and report.passed["after"] is True
    assert len(report.outputs[1].error["evalue"]) <= wire.TEXT_LIMIT + 100


def test_frames_over_the_budget_are_refused_before_the_body_is_read():
    import os

    read, write = os.pipe()
    os.write(write, struct.pack(">I", wire.STUDENT.frame + 1))   # no body at all: it must not wait for one
    with pytest.raises(wire.WireError, match="exceeds the limit"):
        wire.Channel(read, write, wire.STUDENT).recv(deadline=None)
    budget = wire.Budget(frame=1 << 20, text=100, items=10)
    with pytest.raises(wire.WireError):
        budget.unpack(msgpack.packb("y" * 101))
    with pytest.raises(wire.WireError):
        budget.unpack(msgpack.packb(list(range(11))))
    with pytest.raises(wire.WireError):
        budget.unpack(b"\x91" * 5000 + b"\xc0")                    # nesting deeper than msgpack's stack


def test_the_judges_proxy_classes_are_bounded():
    types = ProxyTypes()
    made = {types.get(f"T{i}") for i in range(10 * MAX_TYPE_NAMES)}
    assert len(made) <= MAX_TYPE_NAMES + 1 and len(types.made) <= MAX_TYPE_NAMES + 1


def test_the_deadline_holds_for_replays_and_later_cells():
    """Cells that each take 0.9 s under a 6 s deadline, then a crash: replaying the earlier cells
    after the restart must not run past the deadline, and the cells after it are not run."""
    cells = [session.Cell(i, "code", "import time\ntime.sleep(0.9)") for i in range(8)]
    cells.append(session.Cell(8, "code", "import os\nos._exit(0)"))
    cells += [session.Cell(9 + i, "code", "import time\ntime.sleep(0.9)") for i in range(8)]
    report = session.grade_cells(cells, session.Settings(cell_timeout=5, deadline=6))
    assert report.seconds < 6 + session.GRACE + 3, report.seconds
    assert any(e.startswith("deadline of 6 s reached") for e in report.events), report.events
    assert "実行されませんでした" in report.outputs[16].error["evalue"]


def test_a_submission_output_is_bounded_as_a_whole():
    cells = [session.Cell(i, "code", "print('x' * 30_000)") for i in range(60)]
    report = session.grade_cells(cells, session.Settings(cell_timeout=10, deadline=120))
    total = sum(len(r.stdout) + len(r.stderr) for r in report.outputs.values())
    assert total <= session.SUBMISSION_OUTPUT + 60 * 100, total
    assert any("characters in all" in e for e in report.events), report.events
