"""Many variants of one notebook (mutants, corpus answers), graded fast by the course's one judge.

Autograding a notebook means: run its code cells in order (answer cells replaced by the
student's code), keep going after errors, and give a graded test cell its points when it runs
without an exception. Doing that with nbgrader for hundreds of variants would take hours, because
each one starts from the top.

This driver gets the same per-cell verdicts from the same judge as `make autograde`
(coursetools/grading: the answers run in a runner sandbox, the test cells in a judge sandbox,
plain data in between), faster: one session runs the source notebook once; at an answer cell that
has variants, the judge asks the runner to fork() (coursetools/grading/runner.py, `fork`). Each
child inherits the state up to that cell, runs one variant and the cells after it, each with a
time limit, and the judge records which graded cells failed; then the child is killed and the
parent runs the original answer and goes on. Only the driver differs from grading a submission
(a fork instead of a replay from the top); the cells, the judge and the verdicts do not.
tests/test_corpus.py checks that these verdicts agree with real nbgrader autograde.

    run_variants(assignment, [Variant(key, answer_id, source, mode), ...]) -> {key: Verdict}

mode "first-failure": stop at the first graded cell that fails (enough to call a mutant killed);
mode "exercise": run only up to the last test cell of the variant's own exercise;
mode "full": run to the last graded test cell of the notebook (what follows cannot change a verdict).
"""
from __future__ import annotations

import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from coursetools.common import ROOT, is_answer_cell, is_test_cell, nbgrader_meta, source_notebook
from coursetools.grading import session, wire

CELL_TIMEOUT = 20        # seconds per cell of a variant (nbgrader_config.py gives real grading 60)


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


def submission_variant(key: str, cells: list[Cell], answers: dict[str, str]) -> Variant:
    """A whole submission (several answer cells replaced) as one variant, graded to the end."""
    order = [c.grade_id for c in cells if c.kind == "answer" and c.grade_id in answers]
    first, later = order[0], {k: answers[k] for k in order[1:]}
    return Variant(key, first, answers[first], "full", later)


def run_variants(assignment: str, variants: list[Variant], root: Path = ROOT, cell_timeout: float = CELL_TIMEOUT,
                 variant_deadline: float = 300, sandboxed: bool = True, jobs: int | None = None) -> dict[str, Verdict]:
    """Grade every variant of one notebook with the judge; {key: Verdict}. Each variant has
    cell_timeout seconds per cell and variant_deadline seconds in all (then it counts as timed out).
    The variants are shared among `jobs` sessions at a time (default: the machine's cores, at most 2)."""
    jobs = max(1, min(jobs or min(2, os.cpu_count() or 1), len(variants)))
    if jobs > 1:       # each session runs the notebook once and forks for its share of the variants
        with ThreadPoolExecutor(jobs) as pool:
            parts = pool.map(lambda share: run_variants(assignment, share, root, cell_timeout, variant_deadline,
                                                        sandboxed, jobs=1),
                             [variants[i::jobs] for i in range(jobs)])
            return {key: verdict for part in parts for key, verdict in part.items()}
    cells = plan(assignment, root)
    last_test = max((i for i, c in enumerate(cells) if c.kind == "test"), default=len(cells) - 1)
    cells = cells[:last_test + 1]        # what follows the last graded test cannot change a verdict
    request = {"op": "variants",
               "cells": [{"kind": c.kind, "grade_id": c.grade_id, "source": c.source} for c in cells],
               "variants": [dict(dataclasses.asdict(v), cell_timeout=cell_timeout, deadline=variant_deadline)
                            for v in variants]}
    with session.Session(session.Settings(sandboxed=sandboxed, cell_timeout=cell_timeout)) as box:
        box.control.send(request)
        try:
            reply = box.control.recv(deadline=time.monotonic() + 4 * 3600)
        except (wire.Timeout, wire.WireError) as error:
            raise RuntimeError(f"the judge did not finish the variants of {assignment}: {error}") from None
    if not isinstance(reply, dict) or reply.get("op") != "verdicts":
        raise RuntimeError(f"the judge stopped while grading the variants of {assignment}")
    return {key: Verdict(**value) for key, value in reply["results"].items()}
