"""The wrong-answer and right-answer corpus: data in tests/corpus/<assignment>.toml.

    python -m qa.corpus [--workdir build/corpus] [names...]

A *wrong* entry is a mistake students really make, written as edits of the solution cell
(`replace = [[old, new], ...]`, each `old` found exactly once). A *right* entry is an answer written
differently from the solution; every exercise has at least one: the sample student aoki's cell,
plus any `[[right]]` entry with the whole cell in `code`.

Two checks, both in tests/test_corpus.py:

1. isolation (qa.fastgrade, the grader's judge): each wrong answer alone, with the solution everywhere else,
   loses points on its own exercise and on no other graded cell of the notebook;
2. real autograde: the entries are packed into a few submissions per notebook and graded by
   `nbgrader autograde`. In submission s, exercise i gets wrong answer number (s + i) mod S when
   there is one and a right answer otherwise, so every wrong answer is graded once, and every
   exercise is graded correct at least once while the exercises around it are wrong. Each graded
   cell must score exactly as the isolated verdicts predict.
"""
from __future__ import annotations

import argparse
import ast
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from coursetools.common import ROOT, assignments, is_answer_cell, make_scratch_course, nbgrader, nbgrader_meta, release_notebook
from .fastgrade import exercises, plan

CORPUS = ROOT / "tests" / "corpus"
ALTERNATIVES = ROOT / "examples" / "submitted" / "aoki"


@dataclass
class Entry:
    assignment: str
    answer_id: str
    kind: str          # "wrong" or "right"
    label: str         # what the mistake is (Japanese), or where the right answer comes from
    source: str        # the whole answer cell

    @property
    def key(self) -> str:
        return f"{self.assignment}/{self.answer_id} {self.kind}: {self.label}"


def _apply(source: str, replace: list, where: str) -> str:
    for old, new in replace:
        count = source.count(old)
        if count != 1:
            raise ValueError(f"{where}: {old!r} occurs {count} times in the solution cell (must be exactly once)")
        source = source.replace(old, new)
    return source


def solution_answers(assignment: str) -> dict[str, str]:
    """{answer grade_id: the solution's source of that cell}."""
    return {c.grade_id: c.source for c in plan(assignment) if c.kind == "answer"}


def load(assignment: str) -> list[Entry]:
    solutions = solution_answers(assignment)
    entries = []
    path = CORPUS / f"{assignment}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    for item in data.get("wrong", []):
        answer = item["answer"]
        where = f"{path.name} [{answer}] {item['mistake']}"
        if answer not in solutions:
            raise ValueError(f"{where}: no answer cell {answer!r} in {assignment}")
        entries.append(Entry(assignment, answer, "wrong", item["mistake"], _apply(solutions[answer], item["replace"], where)))
    for item in data.get("right", []):
        entries.append(Entry(assignment, item["answer"], "right", item["note"], item["code"]))
    aoki = ALTERNATIVES / assignment / f"{assignment}.ipynb"
    if aoki.is_file():
        nb = nbformat.read(aoki, as_version=4)
        for cell in nb.cells:
            if is_answer_cell(cell) and cell.cell_type == "code":   # written answers are graded by hand
                entries.append(Entry(assignment, nbgrader_meta(cell)["grade_id"], "right",
                                     "examples/submitted/aoki", cell.source))
    return entries


def same_program(a: str, b: str) -> bool:
    return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))


def submissions(assignment: str, entries: list[Entry]) -> list[dict[str, Entry]]:
    """Pack the entries into submissions: [{answer_id: entry}], see the module docstring."""
    answer_ids = [c.grade_id for c in plan(assignment) if c.kind == "answer"]
    wrong = {a: [e for e in entries if e.answer_id == a and e.kind == "wrong"] for a in answer_ids}
    right = {a: [e for e in entries if e.answer_id == a and e.kind == "right"] for a in answer_ids}
    count = max(3, max(len(w) + 1 for w in wrong.values()))
    packed = []
    for s in range(count):
        chosen = {}
        for i, answer in enumerate(answer_ids):
            slot = (s + i) % count
            if slot < len(wrong[answer]):
                chosen[answer] = wrong[answer][slot]
            else:
                chosen[answer] = right[answer][(slot - len(wrong[answer])) % len(right[answer])]
        packed.append(chosen)
    return packed


def predicted_failures(assignment: str, chosen: dict[str, Entry], isolated: dict) -> set[str]:
    """Graded cells a packed submission must fail: the union of its entries' isolated failures."""
    failed = set()
    for entry in chosen.values():
        if entry.kind == "wrong":
            failed |= set(isolated[entry.key].failed)
    return failed


def filled_release(assignment: str, answers: dict[str, str]):
    """The release notebook with the answer cells named in `answers` replaced (the rest left blank)."""
    nb = nbformat.read(release_notebook(assignment), as_version=4)
    for cell in nb.cells:
        if is_answer_cell(cell) and nbgrader_meta(cell)["grade_id"] in answers:
            cell.source = answers[nbgrader_meta(cell)["grade_id"]]
    return nb


def write_submission(course: Path, student: str, assignment: str, answers: dict[str, str]) -> None:
    """filled_release(assignment, answers), where nbgrader expects a submission."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(filled_release(assignment, answers), folder / f"{assignment}.ipynb")


def autograde_packed(workdir: Path, names: list[str] | None = None) -> dict:
    """Write every packed submission into a scratch course and autograde it with nbgrader.

    Returns {assignment: {"packed": [...], "scores": {student: {grade_id: score}}, "max": {...}}}."""
    from coursetools.demo import collect_scores, max_scores

    shutil.rmtree(workdir, ignore_errors=True)
    course = make_scratch_course(workdir)
    plans = {}
    for name in names or assignments():
        packed = submissions(name, load(name))
        for s, chosen in enumerate(packed, start=1):
            write_submission(course, f"corpus{s}", name, {k: e.source for k, e in chosen.items()})
        plans[name] = packed
    for name in plans:
        nbgrader(["generate_assignment", name, "--force"], course)
        nbgrader(["autograde", name, "--force"], course)
    scores, maxima = collect_scores(course), max_scores(course)
    return {name: {"packed": packed, "max": maxima[name],
                   "scores": {f"corpus{s}": scores[f"corpus{s}"][name] for s in range(1, len(packed) + 1)}}
            for name, packed in plans.items()}


def main(argv: list[str] | None = None) -> int:
    from .fastgrade import Variant, run_variants

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "corpus")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    names = args.names or assignments()
    ok = True
    for name in names:
        entries = load(name)
        tests_of = exercises(plan(name))
        verdicts = run_variants(name, [Variant(e.key, e.answer_id, e.source, "full") for e in entries])
        print(f"{name}:")
        for e in entries:
            v = verdicts[e.key]
            own = set(tests_of[e.answer_id])
            good = (set(v.failed) and set(v.failed) <= own) if e.kind == "wrong" else not v.killed
            ok &= bool(good)
            lost = ", ".join(v.failed) or "nothing"
            print(f"  {'ok ' if good else 'BAD'} {e.answer_id:<12} {e.kind:<5} loses {lost:<40} {e.label}")
    result = autograde_packed(args.workdir.resolve(), names)
    print("\nnbgrader autograde of the packed submissions:")
    for name, r in result.items():
        for student, cells in sorted(r["scores"].items()):
            got, top = sum(cells.values()), sum(r["max"].values())
            print(f"  {name:<26} {student:<8} {got:g}/{top:g}")
    print(f"\ncorpus checked in {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
