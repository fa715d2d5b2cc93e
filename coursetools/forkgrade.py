"""A fast stand-in for `nbgrader autograde` of many variants of one notebook.

Autograding a notebook means: run every code cell of the source notebook in order (answer cells
replaced by the student's code, test cells with their hidden tests), keep going after errors, and
give a graded test cell its points when it runs without an exception. Doing that with nbgrader
for hundreds of variants (mutants, wrong answers) would take hours, because each one starts a
kernel and re-runs the notebook from the top.

This module gets the same per-cell verdicts much faster: one worker process executes the source
notebook once; when it reaches an answer cell that has variants, it fork()s one child per variant.
The child inherits the whole state up to that cell, runs the variant and the cells after it (each
with a time limit, like nbgrader's Execute.timeout) and reports which graded cells failed. The
parent then runs the original answer and goes on. tests/test_corpus.py checks that these verdicts
agree with real nbgrader autograde on the wrong-answer corpus.

    run_variants(assignment, [Variant(key, answer_id, source, mode), ...]) -> {key: Verdict}

mode "first-failure": stop at the first graded cell that fails (enough to call a mutant killed);
mode "exercise": run only up to the last test cell of the variant's own exercise;
mode "full": run to the last graded test cell of the notebook (what follows cannot change a verdict).
"""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from .common import ROOT, is_answer_cell, is_test_cell, nbgrader_meta, source_notebook

CELL_TIMEOUT = 20        # seconds per cell in a child (nbgrader_config.py gives real grading 60)
CHILD_MEMORY = 4 << 30   # address-space limit of a child, bytes


@dataclasses.dataclass
class Variant:
    key: str
    answer_id: str     # grade_id of the answer cell replaced
    source: str        # the whole new source of that cell
    mode: str = "first-failure"
    later: dict = dataclasses.field(default_factory=dict)  # {grade_id: source} of later answer cells replaced too


@dataclasses.dataclass
class Cell:
    index: int
    kind: str          # "code", "answer" or "test"
    grade_id: str
    points: float
    source: str


def plan(assignment: str, root: Path = ROOT) -> list[Cell]:
    """The code cells of the source notebook, in order, with their grading role."""
    nb = nbformat.read(source_notebook(assignment, root), as_version=4)
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = nbgrader_meta(cell)
        kind = "answer" if is_answer_cell(cell) else "test" if is_test_cell(cell) else "code"
        cells.append(Cell(i, kind, meta.get("grade_id", ""), float(meta.get("points", 0) or 0), cell.source))
    return cells


def exercises(cells: list[Cell]) -> dict[str, list[str]]:
    """{answer grade_id: [grade_ids of the test cells that follow it, up to the next answer]}."""
    result: dict[str, list[str]] = {}
    current = None
    for cell in cells:
        if cell.kind == "answer":
            current = cell.grade_id
            result[current] = []
        elif cell.kind == "test" and current is not None:
            result[current].append(cell.grade_id)
    return result


@dataclasses.dataclass
class Verdict:
    failed: list          # grade_ids of graded cells that raised (or timed out)
    passed: list          # grade_ids of graded cells that ran cleanly
    timed_out: bool = False
    crashed: str = ""     # the child died without reporting (segfault, os._exit, memory limit)
    messages: dict = dataclasses.field(default_factory=dict)  # {grade_id: what the failing cell raised}

    @property
    def killed(self) -> bool:
        return bool(self.failed) or self.timed_out or bool(self.crashed)


# ---------------------------------------------------------------------------------------------
# worker side (runs in its own process: python -m coursetools.forkgrade WORKDIR)

class _CellTimeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _CellTimeout()


def _run_cell(source: str, namespace: dict, name: str, timeout: float) -> str | None:
    """Run one cell; None when it ran cleanly, else a one-line description of what it raised."""
    import matplotlib.pyplot as plt

    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        exec(compile(source, name, "exec"), namespace)
        return None
    except _CellTimeout:
        return f"timeout after {timeout:g} s"
    except BaseException as error:  # noqa: BLE001 - a student cell may raise anything, SystemExit included
        return f"{type(error).__name__}: {error}"[:300]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        plt.close("all")  # the inline backend closes figures after each cell, too


def _child(cells: list[Cell], start: int, variant: dict, ends: dict, namespace: dict, out_fd: int) -> None:
    """Runs in the forked child: the variant's cell, then what follows; reports on out_fd."""
    failed, passed, messages = [], [], {}
    try:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    except (ValueError, OSError):
        pass
    timeout = variant.get("cell_timeout", CELL_TIMEOUT)
    _run_cell(variant["source"], namespace, f"<variant {variant['key']}>", timeout)
    stop_at = ends.get(variant["answer_id"]) if variant["mode"] == "exercise" else None
    for cell in cells[start + 1:]:
        if variant["mode"] == "exercise" and cell.kind == "answer":
            break
        source = variant["later"].get(cell.grade_id, cell.source) if cell.kind == "answer" else cell.source
        error = _run_cell(source, namespace, f"<cell {cell.index}>", timeout)
        if cell.kind == "test":
            (passed if error is None else failed).append(cell.grade_id)
            if error is not None:
                messages[cell.grade_id] = error
            if error is not None and variant["mode"] == "first-failure":
                break
        if stop_at is not None and cell.grade_id == stop_at:
            break
    os.write(out_fd, json.dumps({"failed": failed, "passed": passed, "messages": messages}).encode())
    os.close(out_fd)


def _fork_one(cells, start, variant, ends, namespace, deadline: float) -> dict:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            _child(cells, start, variant, ends, namespace, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks, timed_out, limit = [], False, time.monotonic() + deadline
    while True:
        left = limit - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if ready:
            data = os.read(read_fd, 65536)
            if not data:
                break
            chunks.append(data)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"failed": [], "passed": [], "timed_out": True}
    try:
        return json.loads(b"".join(chunks).decode())
    except ValueError:
        return {"failed": [], "passed": [], "crashed": f"child exited without a report (status {status})"}


def _worker(job_path: Path) -> None:
    signal.signal(signal.SIGALRM, _on_alarm)  # the per-cell time limit raises _CellTimeout in the cell
    job = json.loads(job_path.read_text(encoding="utf-8"))
    cells = [Cell(**c) for c in job["cells"]]
    by_answer: dict[str, list[dict]] = {}
    for v in job["variants"]:
        by_answer.setdefault(v["answer_id"], []).append(v)
    ends = {answer: tests[-1] for answer, tests in job["exercises"].items() if tests}
    results = {}
    namespace = {"__name__": "__main__"}
    for i, cell in enumerate(cells):
        if cell.kind == "answer":
            for variant in by_answer.get(cell.grade_id, []):
                results[variant["key"]] = _fork_one(cells, i, variant, ends, namespace, job["child_deadline"])
        _run_cell(cell.source, namespace, f"<cell {cell.index}>", 600)
    Path(job["out"]).write_text(json.dumps(results), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# caller side

def submission_variant(key: str, cells: list[Cell], answers: dict[str, str]) -> Variant:
    """A whole submission (several answer cells replaced) as one variant, graded to the end."""
    order = [c.grade_id for c in cells if c.kind == "answer" and c.grade_id in answers]
    first, later = order[0], {k: answers[k] for k in order[1:]}
    return Variant(key, first, answers[first], "full", later)


def run_variants(assignment: str, variants: list[Variant], root: Path = ROOT,
                 child_deadline: float = 300, cell_timeout: float = CELL_TIMEOUT) -> dict[str, Verdict]:
    """Grade every variant of one notebook; {key: Verdict}."""
    cells = plan(assignment, root)
    # the cells after the last graded test cell (experiments, summaries) cannot change a verdict
    last_test = max((i for i, c in enumerate(cells) if c.kind == "test"), default=len(cells) - 1)
    cells = cells[:last_test + 1]
    with tempfile.TemporaryDirectory(prefix=f"forkgrade-{assignment}-") as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        shutil.copytree(source_notebook(assignment, root).parent, work,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        job = {
            "cells": [dataclasses.asdict(c) for c in cells],
            "exercises": exercises(cells),
            "variants": [dict(dataclasses.asdict(v), cell_timeout=cell_timeout) for v in variants],
            "child_deadline": child_deadline,
            "out": str(tmp / "results.json"),
        }
        (tmp / "job.json").write_text(json.dumps(job), encoding="utf-8")
        env = dict(os.environ, MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", PYTHONHASHSEED="0", PYTHONPATH=str(ROOT))
        with open(tmp / "stderr.log", "w+", encoding="utf-8", errors="replace") as log:
            proc = subprocess.run([sys.executable, "-m", "coursetools.forkgrade", str(tmp / "job.json")],
                                  cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=log)
            if proc.returncode != 0 or not (tmp / "results.json").is_file():
                log.seek(0)
                raise RuntimeError(f"forkgrade worker for {assignment} failed:\n{log.read()[-4000:]}")
        raw = json.loads((tmp / "results.json").read_text(encoding="utf-8"))
    return {key: Verdict(**value) for key, value in raw.items()}


if __name__ == "__main__":
    # the worker: silence the notebook's own printing (results go to a file)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    _worker(Path(sys.argv[1]))
