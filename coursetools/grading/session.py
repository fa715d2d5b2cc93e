"""One submission, graded: a runner and a judge in their sandboxes, the cells sent in order.

This is the orchestrator's side (it runs in nbgrader's process, the only one that writes the
gradebook and the records). It never executes a test cell and never decodes a student value: it
sends each code cell to the judge and receives, per cell, bounded text (output, error name and
message) and whether the runner or judge had to be replaced. A test cell passed when the judge
says it raised nothing.

A cell that kills the runner or judge (os._exit, a crash, the memory limit), or outlives its
deadline, fails alone: both sandboxes are started again, the student's earlier cells are
replayed, and grading goes on, at most MAX_RESTARTS times per submission.

    grade_cells(cells, Settings(...)) -> Report          cells_of(notebook) -> [Cell]
"""
from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field

from . import sandbox, wire

MAX_RESTARTS = 3
GRACE = 10.0            # seconds the judge may take beyond a cell's own limit before it is replaced


@dataclass
class Settings:
    sandboxed: bool = True
    cell_timeout: float = 60
    deadline: float = 900
    memory: int = sandbox.MEMORY


@dataclass
class Cell:
    index: int
    kind: str        # "test" (runs in the judge) or "code" (runs in the runner)
    source: str
    name: str = ""
    grade_id: str = ""


@dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    error: dict | None = None     # {"ename", "evalue", "traceback"}


@dataclass
class Report:
    outputs: dict = field(default_factory=dict)    # cell index -> CellResult
    events: list = field(default_factory=list)     # what happened to the sandboxes (for the instructor)
    seconds: float = 0.0
    passed: dict = field(default_factory=dict)     # grade id of each test cell -> passed


class Gone(Exception):
    """The runner or the judge has to be replaced (the reason is the message)."""


class Session:
    """A runner and a judge, connected to each other; this process talks to the judge only."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.boxes: list[sandbox.Sandbox] = []
        self.control: wire.Channel | None = None
        self._control_sock = None

    def start(self) -> None:
        mine, judges = socket.socketpair()
        runner_end, judge_end = socket.socketpair()
        s = self.settings
        try:
            self.boxes.append(sandbox.start("runner", runner_end.fileno(), sandboxed=s.sandboxed, memory=s.memory))
            self.boxes.append(sandbox.start("judge", judges.fileno(), extra_fds=(judge_end.fileno(),),
                                            args=["--runner-fd", str(judge_end.fileno()),
                                                  "--timeout", str(s.cell_timeout)],
                                            sandboxed=s.sandboxed, memory=s.memory, pids=16))
        finally:
            for sock in (judges, runner_end, judge_end):
                sock.close()
        self._control_sock = mine
        self.control = wire.Channel(mine.fileno(), budget=wire.CONTROL)
        hello = self._recv(time.monotonic() + 120)
        if hello.get("op") != "ready":
            raise Gone("the runner did not start")

    def _recv(self, until: float) -> dict:
        try:
            message = self.control.recv(deadline=until)
        except wire.Timeout:
            raise Gone("timeout") from None
        except (wire.WireError, OSError) as error:
            raise Gone(f"unreadable message from the judge ({error})") from None
        if not isinstance(message, dict):
            raise Gone("the judge stopped" if message is None else "bad message from the judge")
        return message

    def run(self, cell: Cell, timeout: float, passed: dict | None = None) -> CellResult:
        """One cell; raises Gone (with the result to record) when the sandboxes must be replaced.
        passed: the verdicts of the submission's earlier test cells (a hidden test may ask)."""
        try:
            self.control.send({"op": "cell", "kind": cell.kind, "source": cell.source, "passed": passed or {},
                               "name": (cell.name or f"<cell {cell.index}>")[:80], "timeout": timeout})
        except wire.WireError:
            return CellResult(error={"ename": "SandboxError", "traceback": [],
                                     "evalue": "セルが大きすぎるため実行できませんでした"})
        except OSError:
            raise Gone("the judge stopped") from None
        reply = self._recv(time.monotonic() + timeout + GRACE)
        result = CellResult(wire.bounded(reply.get("stdout")), wire.bounded(reply.get("stderr")))
        error = reply.get("error")
        if isinstance(error, dict):
            trace = error.get("traceback")
            result.error = {"ename": wire.bounded(error.get("ename"), 80) or "Error",
                            "evalue": wire.bounded(error.get("evalue"), wire.TEXT_LIMIT),
                            "traceback": [wire.bounded(line, 2000) for line in trace[:40]] if isinstance(trace, list) else []}
        elif error is not None:
            result.error = {"ename": "SandboxError", "evalue": "不正な応答", "traceback": []}
        gone = reply.get("gone")
        if gone:
            err = Gone(wire.bounded(gone, 200))
            err.result = result
            raise err
        return result

    def memory_killed(self) -> bool:
        return any(box.memory_killed() for box in self.boxes)

    def stop(self) -> None:
        if self.control is not None:
            with contextlib.suppress(OSError, wire.WireError):
                self.control.send({"op": "bye"})
        for box in self.boxes:
            box.stop()
        self.boxes = []
        if self._control_sock is not None:
            self._control_sock.close()
            self._control_sock = None
        self.control = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def _gone_error(text: str) -> dict:
    return {"ename": "SandboxError", "evalue": text, "traceback": []}


def grade_cells(cells: list[Cell], settings: Settings | None = None) -> Report:
    """Execute a notebook's code cells: student cells in the runner, test cells in the judge.

    The submission's deadline is wall-clock time for everything, replays after a restart included:
    once it has passed, no further cell runs. Its output is bounded as a whole (SUBMISSION_OUTPUT
    characters), not only per cell."""
    settings = settings or Settings()
    report = Report()
    started = time.monotonic()
    until = started + settings.deadline
    session: Session | None = None
    done: list[Cell] = []          # student cells executed so far, replayed after a restart
    passed: dict[str, bool] = {}
    restarts = 0
    started_once = False
    output = _OutputBudget()
    try:
        for cell in cells:
            if time.monotonic() >= until or (session is None and restarts > MAX_RESTARTS):
                if time.monotonic() >= until and not any(e.startswith("deadline") for e in report.events):
                    report.events.append(f"deadline of {settings.deadline:g} s reached at cell {cell.index}: "
                                         "the remaining cells were not run")
                report.outputs[cell.index] = CellResult(error=_gone_error(
                    "採点の制限時間または再起動の回数を超えたため、このセルは実行されませんでした"))
                continue
            if session is None:
                session = Session(settings)
                try:
                    session.start()
                    for earlier in done:
                        left = until - time.monotonic()
                        if left <= 0:
                            raise Gone("the deadline passed while earlier cells were replayed")
                        session.run(earlier, min(settings.cell_timeout, left))
                except (Gone, OSError) as error:
                    session.stop()
                    if not started_once:   # before any student code ran: the machine, not the student
                        raise sandbox.NoSandbox(f"the grading sandboxes did not start ({error}); "
                                                f"{sandbox.diagnose(settings.sandboxed)}") from None
                    report.events.append(f"restart failed: {error}")
                    session = None
                    restarts += 1
                    report.outputs[cell.index] = CellResult(error=_gone_error(
                        "採点用の実行環境を再開できなかったため、このセルは実行されませんでした"))
                    continue
                started_once = True
            timeout = min(settings.cell_timeout, until - time.monotonic())
            try:
                result = session.run(cell, timeout, passed if cell.kind == "test" else None)
                if cell.kind == "code":
                    done.append(cell)
            except Gone as error:
                reason = str(error)
                if reason == "timeout":
                    result = CellResult(error={"ename": "CellTimeoutError", "traceback": [],
                                               "evalue": "制限時間内に終わらなかったため、採点用の実行環境を停止しました"})
                    report.events.append(f"cell {cell.index}: timed out, sandbox restarted")
                else:
                    why = ("メモリの上限を超えたため、採点用の実行環境が停止しました" if session.memory_killed()
                           else "採点用の実行環境が停止しました（os._exit、クラッシュ、またはメモリ不足）")
                    result = CellResult(error=_gone_error(why))
                    report.events.append(f"cell {cell.index}: sandbox gone ({reason}; {why})")
                session.stop()
                session = None
                restarts += 1
            report.outputs[cell.index] = output.take(result)
            if cell.kind == "test" and cell.grade_id:
                passed[cell.grade_id] = result.error is None
    finally:
        if session is not None:
            session.stop()
        report.seconds = time.monotonic() - started
        report.passed = {c.grade_id: passed.get(c.grade_id, False)   # cells never run failed
                         for c in cells if c.kind == "test" and c.grade_id}
        if output.dropped:
            report.events.append(f"output over {SUBMISSION_OUTPUT} characters in all: {output.dropped} left out")
    return report


SUBMISSION_OUTPUT = 1_000_000      # characters of output (text, error messages, tracebacks) per submission


class _OutputBudget:
    """Output of a whole submission, bounded: once the budget is spent, cells keep their verdict (an
    error stays an error) but their text is replaced by a short note."""

    NOTE = "…（提出物全体の出力が上限を超えたため、このセルの出力は省略しました）\n"

    def __init__(self, limit: int = SUBMISSION_OUTPUT):
        self.left, self.dropped = limit, 0

    def take(self, result: CellResult) -> CellResult:
        error = result.error or {}
        size = len(result.stdout) + len(result.stderr) + len(str(error.get("evalue", ""))) + \
            sum(len(str(line)) for line in error.get("traceback", []))
        if size <= self.left:
            self.left -= size
            return result
        self.dropped += size
        self.left = 0
        if result.error:
            error = {"ename": result.error.get("ename", "Error"), "evalue": self.NOTE.strip(), "traceback": []}
        return CellResult(stdout=self.NOTE if (result.stdout or result.stderr) else "", stderr="",
                          error=error if result.error else None)


def preflight(settings: Settings | None = None) -> None:
    """Grade a two-cell notebook; raise sandbox.NoSandbox, saying why, if that does not work (before
    grading anyone: a broken environment is reported once, never as a class of zeros)."""
    settings = settings or Settings()
    cells = [Cell(0, "code", "answer = 41 + 1"), Cell(1, "test", "assert answer == 42", "<preflight>", "preflight")]
    report = grade_cells(cells, Settings(settings.sandboxed, 30, 120, settings.memory))
    if not report.passed.get("preflight"):
        result = report.outputs.get(1) or report.outputs.get(0)
        what = f"{result.error['ename']}: {result.error['evalue']}" if result and result.error else str(report.events)
        raise sandbox.NoSandbox(f"a trivial notebook cannot be graded here ({what}); {sandbox.diagnose(settings.sandboxed)}")


def cells_of(nb, stop_after_last_test: bool = False) -> list[Cell]:
    """The code cells of an nbformat notebook with their role (test cells run in the judge).

    stop_after_last_test: leave out the cells after the last graded test cell (no verdict depends
    on them)."""
    from ..common import is_test_cell, nbgrader_meta

    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        kind = "test" if is_test_cell(cell) else "code"
        grade_id = nbgrader_meta(cell).get("grade_id", "")
        out.append(Cell(i, kind, cell.source, f"<{grade_id or f'cell {i}'}>", grade_id))
    if stop_after_last_test:
        last = max((k for k, c in enumerate(out) if c.kind == "test"), default=len(out) - 1)
        out = out[:last + 1]
    return out


def main(argv=None) -> int:
    import argparse

    import nbformat

    parser = argparse.ArgumentParser(description="grade one notebook and print each test cell's verdict")
    parser.add_argument("notebook")
    parser.add_argument("--unsandboxed", action="store_true")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    cells = cells_of(nb, stop_after_last_test=True)
    report = grade_cells(cells, Settings(sandboxed=not args.unsandboxed, cell_timeout=args.timeout))
    for cell in cells:
        result = report.outputs.get(cell.index)
        if cell.kind == "test":
            verdict = "pass" if result and not result.error else \
                f"FAIL {result.error['ename']}: {result.error['evalue'][:150]}"
            print(f"{cell.name:<28} {verdict}")
        elif result and result.error:
            print(f"  (cell {cell.index}: {result.error['ename']}: {result.error['evalue'][:100]})")
    print(f"{report.seconds:.1f} s; events: {report.events}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
