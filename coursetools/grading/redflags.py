"""Report submissions that need an instructor's eye before (or after) autograding.

    python -m coursetools.grading.redflags [SUBMITTED_DIR]      (default: submitted/ if present, else examples/submitted/)

Reads every <student>/<assignment>/*.ipynb below SUBMITTED_DIR as text and JSON; runs nothing.
Each finding names the student, the file, the cell and the reason. Exit status: 0 when nothing is
flagged, 1 when something is (so it can gate a grading script), 2 on bad usage.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..common import ROOT, assignments, is_test_cell, nbgrader_meta, release_notebook

# (pattern, reason) pairs searched in the code cells a student can edit.
CHEATS = [
    (r"\b(np|numpy)(\s*\.\s*\w+)+\s*=(?!=)",
     "NumPy's comparison or other functions are replaced (np.<name> = ...)"),
    (r"\bsetattr\s*\(\s*(np|numpy|math|builtins)\b|\b(np|numpy|math|builtins)\s*\.\s*__dict__|"
     r"\bsys\s*\.\s*modules\s*\[|\.__class__\s*=(?!=)",
     "a module is modified through setattr, __dict__, __class__ or sys.modules"),
    (r"^\s*(np|numpy|math)\s*=(?!=)|\bimport\s+(?!numpy\b)[\w.]+\s+as\s+np\b",
     "the name np/numpy/math is bound to something other than the module"),
    (r"\b(math\s*\.\s*isclose|builtins\s*\.\s*\w+|__builtins__)\b\s*(\[.*\])?\s*=(?!=)",
     "a built-in or math function is replaced"),
    (r"^\s*(abs|float|int|isinstance|len|sum|max|min|all|any|print)\s*=(?!=)",
     "a built-in name is rebound"),
    (r"\bdef\s+__eq__\s*\(", "an __eq__ method is defined (objects that compare equal to anything)"),
    (r"\b(sys\s*\.\s*exit|os\s*\.\s*_exit|os\s*\.\s*kill|os\s*\.\s*abort)\s*\(|^\s*(exit|quit)\s*\(",
     "the kernel or process is stopped"),
    (r"gradebook|sqlite3|autograded/|/source/|release/", "grader files or the gradebook are accessed"),
    (r"\bdef\s+_grader_\w+|\b_grader_\w+\s*=", "a grader-internal name (_grader_...) is defined"),
    (r"\b(setrecursionlimit|signal\s*\.\s*(alarm|signal)|resource\s*\.\s*setrlimit)\b",
     "process limits or signals are changed"),
]
COMPILED = [(re.compile(p, re.MULTILINE), reason) for p, reason in CHEATS]


@dataclass
class Finding:
    student: str
    assignment: str
    file: str
    cell: str
    reason: str

    def line(self) -> str:
        return f"{self.student:<12} {self.assignment:<24} {self.file:<32} {self.cell:<24} {self.reason}"


def reference_cells(assignment: str) -> dict:
    """grade_id -> (cell type, source, is locked test cell) of the release: what the students received."""
    nb = nbformat.read(release_notebook(assignment), as_version=4)
    return {nbgrader_meta(cell)["grade_id"]: (cell.cell_type, cell.source, is_test_cell(cell))
            for cell in nb.cells if "grade_id" in nbgrader_meta(cell)}


def _bound_names(source: str) -> set[str]:
    """Names a cell binds at top level (def, class, assignment, import as); empty if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def lecture_helpers(assignment: str) -> tuple[set[str], dict[str, set[str]]]:
    """Functions and classes the lecture cells of the release define (gradient checkers, layers, ...),
    and {cell id: names that cell of the release binds itself}."""
    nb = nbformat.read(release_notebook(assignment), as_version=4)
    names = set()
    own = {cell.get("id"): _bound_names(cell.source) for cell in nb.cells if cell.cell_type == "code"}
    for cell in nb.cells:
        if cell.cell_type == "code" and not nbgrader_meta(cell):
            try:
                names |= {n.name for n in ast.parse(cell.source).body
                          if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            except SyntaxError:
                pass
    return names, own


def check_notebook(path: Path, student: str, assignment: str, known: set[str]) -> list[Finding]:
    def flag(cell: str, reason: str) -> Finding:
        return Finding(student, assignment, path.name, cell, reason)

    if assignment not in known:
        return [flag("-", f"unknown assignment folder '{assignment}' (known: {', '.join(sorted(known))})")]
    if path.name != f"{assignment}.ipynb":
        return [flag("-", f"the notebook is named '{path.name}', not '{assignment}.ipynb' "
                          "(a renamed copy is not graded: rename it before autograding)")]
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # truncated JSON, not a notebook at all, ...
        return [flag("-", f"not a readable notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:80]}); "
                          "ask the student to download it again")]
    findings = []
    expected = reference_cells(assignment)
    helpers, own_names = lecture_helpers(assignment)
    seen: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        gid = nbgrader_meta(cell).get("grade_id")
        where = gid or f"cell {index}"
        if gid:
            seen[gid] = seen.get(gid, 0) + 1
            if gid in expected:
                cell_type, source, locked_test = expected[gid]
                if cell.cell_type != cell_type:
                    findings.append(flag(where, f"a {cell_type} cell was changed into a {cell.cell_type} cell"))
                elif locked_test and cell.source.strip() != source.strip():
                    findings.append(flag(where, "the test cell was edited (autograde restores it; look at why)"))
            else:
                findings.append(flag(where, "a cell with an unknown grade_id"))
        if cell.cell_type != "code" or (gid in expected and expected[gid][2]):
            continue  # only code a student can edit is searched for cheats
        for pattern, reason in COMPILED:
            if pattern.search(cell.source):
                findings.append(flag(where, reason))
        given = own_names.get(cell.get("id"), set())  # what the release's version of this cell defines
        for name in sorted((_bound_names(cell.source) & helpers) - given):
            findings.append(flag(where, f"the lecture's helper '{name}' is redefined "
                                        "(a replaced checker or layer can make wrong code look right)"))
    for gid, count in seen.items():
        if count > 1:
            findings.append(flag(gid, f"the cell appears {count} times (copy-pasted cell with the same id)"))
    for gid, (_, _, locked_test) in expected.items():
        if locked_test and gid not in seen:
            findings.append(flag(gid, "the test cell was deleted (autograde puts it back)"))
    return findings


def scan(submitted: Path) -> list[Finding]:
    known = set(assignments())
    findings = []
    for folder in sorted(p for p in submitted.glob("*/*") if p.is_dir()):
        student, assignment = folder.parent.name, folder.name
        notebooks = sorted(folder.glob("*.ipynb"))
        if not notebooks:
            findings.append(Finding(student, assignment, "-", "-", "no notebook in the submission folder"))
        for path in notebooks:
            findings.extend(check_notebook(path, student, assignment, known))
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ROOT / "submitted" if (ROOT / "submitted").is_dir() else ROOT / "examples" / "submitted"
    parser.add_argument("submitted", nargs="?", type=Path, default=default)
    args = parser.parse_args(argv)
    if not args.submitted.is_dir():
        print(f"no such folder: {args.submitted}", file=sys.stderr)
        return 2
    findings = scan(args.submitted)
    count = len({(f.student, f.assignment) for f in findings})
    print(f"red flags in {args.submitted}: {len(findings)} finding(s) in {count} submission(s)")
    if findings:
        print(f"{'student':<12} {'assignment':<24} {'file':<32} {'cell':<24} reason")
        for finding in findings:
            print(finding.line())
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
