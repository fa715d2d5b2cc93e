"""Similarity report: which students' answers look copied from each other, per exercise, side by side.

    python -m coursetools.similarity [--course DIR] [--out DIR] [--threshold T] [--common N] [assignments...]

Reads <course>/submitted/<student>/<assignment>/<assignment>.ipynb (default course: this repository
if it has submitted/, else examples/, the sample class) and compares the answer cells (nbgrader
solution cells) of every two students, one exercise at a time, with copydetect: winnowed k-gram
fingerprints as in MOSS, on code whose identifiers, strings, comments and whitespace are normalised,
so renamed variables, reformatting and new comments do not hide a copy. Written answers (Markdown
answer cells, graded by hand) are compared the same way on their text, normalised by normalise_text().

Never counted as similarity (copydetect's boilerplate):
- everything the release notebook contains: the stub of the answer cell, lecture code, the engine
  restated from earlier notebooks, the visible tests;
- the model solution (source/): two students who both wrote the expected code have not copied it
  from each other;
- code found in the answers of more than N students of the class (--common, default 10, MOSS's -m).
What is left is an answer's own code. A pair's score is the larger of the two shares of own code
found in the other answer, where an answer with less than MIN_OWN normalised characters of own code
counts as that long: a one-line answer, or one token changed in the model solution, is too little
to call a copy however exactly it matches. `raw` is copydetect's similarity with only the release
removed, for context.

For each exercise the report also gives what independent correct answers reach (the model solution,
the right answers of tests/corpus/ and the correct answers of the sample class, compared the same
way), so a pair an instructor should look at can be told from the usual way of writing the answer.

Writes <out>/similarity.html (self-contained, no scripts, everything from submissions escaped) and
<out>/similarity.csv (every compared pair). Unreadable or misplaced notebooks are listed, never fatal.
"""
from __future__ import annotations

import argparse
import copy
import csv
import html
import io
import itertools
import json
import re
import sys
import time
import tomllib
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
from copydetect.detector import CodeFingerprint, compare_files
from copydetect.utils import get_copied_slices, get_document_fingerprints, get_token_coverage, hashed_kgrams

from .common import ROOT, assignments, is_answer_cell, is_test_cell, nbgrader_meta

# copydetect's noise threshold k, in normalised characters (a name counts 1): matches shorter than k are
# ignored. 18 is about one short statement; with copydetect's default of 25, swapping two short
# statements leaves no fingerprint in common. Answers are short, so every k-gram is a fingerprint
# (guarantee threshold = k, window 1); a wider window would also make the result depend on Python's
# per-process string hash salt, which copydetect's hashes use.
NOISE = 18
GUARANTEE = NOISE
# Written answers (Markdown answer cells) are compared as text: characters after normalise_text(); k is a
# phrase of a Japanese sentence, longer than the technical terms every answer to a question shares.
TEXT_NOISE = 15
MIN_OWN = 100       # normalised characters of own code (about five lines) an answer needs to score 100 %
THRESHOLD = 0.4     # pairs whose score reaches this are listed in the HTML report
COMMON = 10         # code in the answers of more than this many students is common, not copied
MAX_NOTEBOOK = 20_000_000  # bytes; a larger "notebook" is listed, not read


@dataclass
class Problem:
    """A submission that could not be compared as it is (listed in the report, never fatal)."""
    student: str
    assignment: str
    file: str
    message: str


@dataclass
class Answer:
    student: str
    source: str
    counted: CodeFingerprint = None   # fingerprints without release, model solution and common code
    raw: CodeFingerprint = None       # fingerprints without the release only

    @property
    def own(self) -> int:
        """Normalised characters of own code (what the counted fingerprints cover)."""
        return int(self.counted.token_coverage)


@dataclass
class Pair:
    a: str
    b: str
    score: float         # see the module docstring
    share_a: float       # part of a's own code also found in b
    share_b: float
    raw: float           # copydetect's similarity with only the release as boilerplate (the larger of the two)
    slices_a: np.ndarray = None
    slices_b: np.ndarray = None


@dataclass
class Exercise:
    assignment: str
    grade_id: str
    label: str
    answers: dict                     # {student: Answer}, answered cells only
    unanswered: list                  # students whose cell is missing or still the stub
    pairs: list                       # [Pair], highest score first
    boilerplate: set = field(default_factory=set)   # k-gram hashes never counted (greyed in the report)
    expected: dict = field(default_factory=dict)    # what independent correct answers reach
    kind: str = "code"                              # "code", or "text" for a written answer

    @property
    def independent_max(self) -> float | None:
        return self.expected.get("score")


# ---------------------------------------------------------------------------------------------
# reading notebooks

def _cells_by_id(nb) -> dict[str, list]:
    cells: dict[str, list] = {}
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid:
            cells.setdefault(gid, []).append(cell)
    return cells


def course_notebook(course: Path, kind: str, assignment: str) -> Path | None:
    """<course>/<kind>/<a>/<a>.ipynb, else this repository's; None if neither exists."""
    for base in (course, ROOT):
        path = base / kind / assignment / f"{assignment}.ipynb"
        if path.is_file():
            return path
    return None


def exercise_tests(release) -> dict[str, tuple[str, dict[str, float]]]:
    """{answer grade_id: ('演習 73.2', {test cell grade_id: points})}: the graded test cells that follow each
    answer cell, and the exercise's number from the first line of the first one."""
    result, current = {}, None
    for cell in release.cells:
        if is_answer_cell(cell):
            current = nbgrader_meta(cell)["grade_id"]
            result[current] = (current, {})
        elif current and is_test_cell(cell):
            label, tests = result[current]
            found = re.search(r"演習\s*(\d+\.\d+)", cell.source.splitlines()[0] if cell.source else "")
            if found and label == current:
                label = f"演習 {found.group(1)}"
            tests[nbgrader_meta(cell)["grade_id"]] = float(nbgrader_meta(cell).get("points", 0) or 0)
            result[current] = (label, tests)
    return result


def read_submission(folder: Path, student: str, assignment: str) -> tuple[dict[str, str] | None, list[Problem]]:
    """The answer cells {grade_id: source} of one submission folder (None if unusable), and its problems."""
    def problem(file: str, message: str) -> Problem:
        return Problem(student, assignment, file, message)

    expected = folder / f"{assignment}.ipynb"
    notebooks = sorted(p for p in folder.iterdir() if p.name.endswith(".ipynb"))
    problems = []
    if expected in notebooks:
        path = expected
        problems += [problem(p.name, f"an extra notebook beside {assignment}.ipynb: not compared")
                     for p in notebooks if p != expected]
    elif len(notebooks) == 1:
        path = notebooks[0]
        problems.append(problem(path.name, f"the notebook is named '{path.name}', not '{assignment}.ipynb' "
                                           "(nbgrader will not grade it): compared anyway"))
    elif notebooks:
        return None, [problem(", ".join(p.name for p in notebooks),
                              f"several notebooks and none named {assignment}.ipynb: not compared")]
    else:
        return None, [problem("-", "no notebook in the submission folder")]
    if path.is_symlink() or not path.is_file():
        return None, problems + [problem(path.name, "not a regular file (a link or a folder): not read")]
    if path.stat().st_size > MAX_NOTEBOOK:
        return None, problems + [problem(path.name, f"larger than {MAX_NOTEBOOK // 1_000_000} MB: not read")]
    try:
        with warnings.catch_warnings():  # nbformat warns about duplicate cell ids: listed below instead
            warnings.simplefilter("ignore")
            nb = nbformat.reads(path.read_text(encoding="utf-8", errors="replace"), as_version=4)
        cells = _cells_by_id(nb)
    except Exception as exc:  # truncated JSON, not a notebook at all, cells without a type, ...
        first = (str(exc).splitlines() or [""])[0][:100]
        return None, problems + [problem(path.name, f"not a readable notebook ({type(exc).__name__}: {first}); "
                                                    "ask the student for the file again")]
    answers = {}
    for gid, found in cells.items():
        code = [c for c in found if c.cell_type in ("code", "markdown") and is_answer_cell(c)]
        if not code:
            continue
        if len(found) > 1:
            problems.append(problem(path.name, f"cell {gid} appears {len(found)} times (copy-pasted cell): "
                                               "all its copies compared as one answer"))
        answers[gid] = "\n\n".join(c.source for c in code)
    return answers, problems


def read_class(submitted: Path, assignment: str) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    """{student: {grade_id: source}} of every submission of one assignment, and the problems found."""
    answers, problems = {}, []
    if not submitted.is_dir():
        return answers, problems
    for student_dir in sorted(submitted.iterdir()):
        folder = student_dir / assignment
        student = student_dir.name
        try:
            if not student_dir.is_dir() or not (folder.exists() or folder.is_symlink()):
                continue
            if folder.is_symlink() or not folder.is_dir():
                problems.append(Problem(student, assignment, folder.name, "not a folder (or a link): not read"))
                continue
            cells, found = read_submission(folder, student, assignment)
        except OSError as exc:
            problems.append(Problem(student, assignment, "-", f"could not be read ({type(exc).__name__})"))
            continue
        problems += found
        if cells is not None:
            answers[student] = cells
    return answers, problems


# ---------------------------------------------------------------------------------------------
# fingerprints (copydetect)

def _fix_class_offsets(fp: CodeFingerprint) -> None:
    """copydetect 0.5.0's filter_code records the offset of a class name as len(name) - 1 instead of the
    running offset, which moves highlights after a `class` statement. The next offset row is the running
    offset plus len(name) - 1, so the right value follows from it."""
    offsets, code = fp.offsets, fp.filtered_code
    for j in range(1, len(offsets) - 1):
        i = offsets[j, 0]
        if code[i:i + 1] == "O" and offsets[j - 1, 0] < i:
            offsets[j, 1] = offsets[j + 1, 1] - offsets[j, 1]


def normalise_text(text: str) -> tuple[str, np.ndarray]:
    """A written answer as compared: full-width and half-width alike (NFKC), lower case, only letters (kana,
    kanji, Latin), digits and mathematical symbols, so spacing, line breaks, punctuation and Markdown marks do
    not hide a copy; and for each character kept, where it is in the text."""
    kept, where = [], []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).lower():
            category = unicodedata.category(c)
            if category[0] in "LN" or category == "Sm":
                kept.append(c)
                where.append(i)
    return "".join(kept), np.array(where, dtype=np.int64)


def fingerprint(source: str, kind: str = "code") -> CodeFingerprint:
    """copydetect's fingerprint of Python code (tokenised and normalised once; see without()), or of a
    written answer's normalised text (`positions`: where each of its characters is in the answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "text":
            normal, where = normalise_text(source)
            fp = CodeFingerprint("answer.txt", TEXT_NOISE, 1, fp=io.StringIO(normal), filter=False)
            fp.positions = where
            return fp
        fp = CodeFingerprint("answer.py", NOISE, GUARANTEE - NOISE + 1, fp=io.StringIO(source), language="python")
    _fix_class_offsets(fp)
    return fp


def without(fp: CodeFingerprint, boilerplate: np.ndarray) -> CodeFingerprint:
    """The fingerprint with the k-grams in `boilerplate` dropped, as CodeFingerprint(boilerplate=...) does,
    without tokenising the code again (every k-gram is a fingerprint: window 1)."""
    out = copy.copy(fp)
    out.hashes, out.hash_idx = get_document_fingerprints(fp.filtered_code, fp.k, 1, boilerplate)
    out.token_coverage = get_token_coverage(out.hash_idx, fp.k, len(fp.filtered_code))
    return out


def kgram_hashes(sources, kind: str = "code") -> set[int]:
    """Every k-gram hash of the given code or text (copydetect takes boilerplate this way: window 1)."""
    hashes = set()
    for source in sources:
        hashes |= {int(h) for h in fingerprint(source, kind).hashes}
    return hashes


def _array(hashes: set[int]) -> np.ndarray:
    return np.array(sorted(hashes), dtype=np.int64)


def compare(x: Answer, y: Answer) -> Pair:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, (share_x, share_y), (slices_x, slices_y) = compare_files(x.counted, y.counted)
        _, raw, _ = compare_files(x.raw, y.raw)
    share_x, share_y = float(share_x), float(share_y)
    score = max(share_x * x.own / max(x.own, MIN_OWN, 1), share_y * y.own / max(y.own, MIN_OWN, 1))
    return Pair(x.student, y.student, score, share_x, share_y, float(max(raw)), slices_x, slices_y)


def is_blank(source: str, stub: str) -> bool:
    """Empty, or still the release's stub (whitespace aside)."""
    def squeeze(text: str) -> str:
        return re.sub(r"\s+", "", text)
    return not source.strip() or squeeze(source) == squeeze(stub)


def analyse_exercise(assignment: str, grade_id: str, label: str, by_student: dict[str, str], stub: str,
                     release_hashes: set[int], solution_hashes: set[int], common: int = COMMON,
                     kind: str = "code") -> Exercise:
    """Compare the answers {student: source} of one exercise pairwise."""
    answers = {s: Answer(s, text) for s, text in by_student.items() if not is_blank(text, stub)}
    full = {s: fingerprint(answer.source, kind) for s, answer in answers.items()}
    base = release_hashes | solution_hashes
    counts = Counter()  # in how many students' answers each k-gram beyond the base occurs
    for fp in full.values():
        counts.update({int(h) for h in fp.hashes} - base)
    boilerplate = base | {h for h, n in counts.items() if n > common}
    counted, release = _array(boilerplate), _array(release_hashes)
    for s, answer in answers.items():
        answer.counted, answer.raw = without(full[s], counted), without(full[s], release)
    pairs = [compare(answers[a], answers[b]) for a, b in itertools.combinations(sorted(answers), 2)]
    pairs.sort(key=lambda p: (-p.score, -p.raw, p.a, p.b))
    unanswered = sorted(s for s in by_student if s not in answers)
    return Exercise(assignment, grade_id, label, answers, unanswered, pairs, boilerplate, kind=kind)


# ---------------------------------------------------------------------------------------------
# what independent correct answers reach

def model_solutions(assignment: str, root: Path = ROOT) -> dict[str, str]:
    """{answer grade_id: the model solution's cell} from source/ (empty if there is none)."""
    path = root / "source" / assignment / f"{assignment}.ipynb"
    if not path.is_file():
        return {}
    return {nbgrader_meta(c)["grade_id"]: c.source for c in nbformat.read(path, as_version=4).cells
            if is_answer_cell(c) and c.cell_type in ("code", "markdown")}


def corpus_entries(assignment: str, root: Path = ROOT) -> list[tuple[str, str, str, str]]:
    """[(kind, answer grade_id, label, source)] of tests/corpus/<assignment>.toml: wrong answers are edits
    of the model solution's cell (`replace`), right answers whole cells (`code`)."""
    path = root / "tests" / "corpus" / f"{assignment}.toml"
    if not path.is_file():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    solutions = model_solutions(assignment, root)
    entries = []
    for item in data.get("wrong", []):
        text = solutions.get(item["answer"])
        if text is not None:
            for old, new in item["replace"]:
                text = text.replace(old, new, 1)
            entries.append(("wrong", item["answer"], item["mistake"], text))
    for item in data.get("right", []):
        entries.append(("right", item["answer"], item["note"], item["code"]))
    return entries


def reference_answers(assignment: str, release, root: Path = ROOT) -> dict[str, list[tuple[str, str]]]:
    """{answer grade_id: [(who, source)]}: the independent correct answers this repository knows: the model
    solution, the corpus's right answers and every sample-class answer (examples/) that earns all its points;
    for a written answer (graded by hand, so no score to go by) every sample-class answer."""
    refs = {gid: [("model solution", text)] for gid, text in model_solutions(assignment, root).items()}
    for kind, gid, label, text in corpus_entries(assignment, root):
        if kind == "right":
            refs.setdefault(gid, []).append((f"corpus: {label}", text))
    expected = root / "examples" / "expected_scores.json"
    scores = json.loads(expected.read_text(encoding="utf-8")) if expected.is_file() else {}
    tests = exercise_tests(release)
    written = {nbgrader_meta(c)["grade_id"]: c.source for c in release.cells
               if is_answer_cell(c) and c.cell_type == "markdown"}
    sample, _ = read_class(root / "examples" / "submitted", assignment)
    for student, answers in sorted(sample.items()):
        got = scores.get(student, {}).get(assignment, {})
        for gid, text in answers.items():
            points = tests.get(gid, ("", {}))[1]
            if (gid in written and not is_blank(text, written[gid])) or (
                    points and all(got.get(test) == top for test, top in points.items())):
                refs.setdefault(gid, []).append((f"sample class: {student}", text))
    return refs


def expected_level(exercise: Exercise, references: list[tuple[str, str]], stub: str,
                   release_hashes: set[int]) -> dict:
    """The highest score and raw similarity between two independent correct answers of this exercise,
    computed as for the class (same boilerplate)."""
    counted, release = _array(exercise.boilerplate), _array(release_hashes)
    refs = []
    for who, text in references:
        if not is_blank(text, stub):
            answer = Answer(who, text)
            fp = fingerprint(text, exercise.kind)
            answer.counted, answer.raw = without(fp, counted), without(fp, release)
            refs.append(answer)
    pairs = [compare(x, y) for x, y in itertools.combinations(refs, 2)]
    if not pairs:
        return {"answers": len(refs)}
    return {"answers": len(refs), "score": max(p.score for p in pairs), "raw": max(p.raw for p in pairs)}


# ---------------------------------------------------------------------------------------------
# one assignment

def analyse(assignment: str, class_answers: dict[str, dict[str, str]], course: Path = ROOT,
            common: int = COMMON, references: bool = True) -> list[Exercise]:
    """Every answer cell of the release, compared across the class {student: {grade_id: source}}."""
    release_path = course_notebook(course, "release", assignment)
    if release_path is None:
        raise FileNotFoundError(f"no release notebook for {assignment}")
    release = nbformat.read(release_path, as_version=4)
    release_hashes = {kind: kgram_hashes((c.source for c in release.cells if c.cell_type == cell_type), kind)
                      for kind, cell_type in (("code", "code"), ("text", "markdown"))}
    source = course_notebook(course, "source", assignment)
    solutions = _cells_by_id(nbformat.read(source, as_version=4)) if source else {}
    tests = exercise_tests(release)
    refs = reference_answers(assignment, release) if references else {}
    result = []
    for index, cell in enumerate(release.cells):
        if not (is_answer_cell(cell) and cell.cell_type in ("code", "markdown")):
            continue
        kind = "code" if cell.cell_type == "code" else "text"
        gid = nbgrader_meta(cell)["grade_id"]
        label = tests.get(gid, (gid,))[0] if kind == "code" else written_label(release.cells, index)
        by_student = {s: cells[gid] for s, cells in class_answers.items() if gid in cells}
        exercise = analyse_exercise(assignment, gid, label, by_student, cell.source, release_hashes[kind],
                                    kgram_hashes((c.source for c in solutions.get(gid, [])), kind), common, kind)
        exercise.unanswered = sorted(set(exercise.unanswered) | (set(class_answers) - set(by_student)))
        exercise.expected = expected_level(exercise, refs.get(gid, []), cell.source, release_hashes[kind])
        result.append(exercise)
    return result


def written_label(cells, index: int) -> str:
    """'演習 73.4（記述）' from the nearest heading above a written answer cell that names the exercise."""
    for cell in reversed(cells[:index]):
        found = re.search(r"演習\s*(\d+\.\d+)", cell.source) if cell.cell_type == "markdown" else None
        if found:
            return f"演習 {found.group(1)}（記述）"
    return nbgrader_meta(cells[index])["grade_id"]


# ---------------------------------------------------------------------------------------------
# report

def printable(text: str) -> str:
    """A name or text from a submission, safe for a terminal: control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def csv_safe(text: str) -> str:
    """A spreadsheet must not run a student's folder name as a formula."""
    text = printable(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _ranges(slices) -> list[tuple[int, int]]:
    if slices is None or np.size(slices) == 0:
        return []
    return [(int(s), int(e)) for s, e in zip(slices[0], slices[1])]


def _boilerplate_ranges(fp: CodeFingerprint, boilerplate: set[int]) -> list[tuple[int, int]]:
    """Where an answer's code is boilerplate (release, model solution, common code), in its own characters."""
    if len(fp.filtered_code) < fp.k:
        return []
    idx = np.array([i for i, h in enumerate(hashed_kgrams(fp.filtered_code, fp.k)) if int(h) in boilerplate],
                   dtype=np.int64)
    if len(idx) == 0:
        return []
    slices = get_copied_slices(idx, fp.k)
    if len(fp.offsets) > 0:  # filtered -> original positions, as copydetect's compare_files does
        where = np.clip(np.searchsorted(fp.offsets[:, 0], slices), 0, len(fp.offsets) - 1)
        slices = slices + fp.offsets[:, 1][where]
    return _ranges(slices)


def line_kinds(source: str, matched: list, boilerplate: list) -> list[tuple[str, str]]:
    """[(kind, line)]: 'c' a line mostly boilerplate, 'm' a line mostly inside the matching code, '' otherwise.
    Comment lines are never marked: comments are not compared."""
    out, start = [], 0
    for line in source.split("\n"):
        chars = [start + i for i, ch in enumerate(line) if not ch.isspace()]
        start += len(line) + 1
        kind = ""
        if chars and not line.lstrip().startswith("#"):
            def inside(ranges):
                return sum(any(s <= c < e for s, e in ranges) for c in chars) / len(chars)
            if inside(boilerplate) >= 0.5:   # never evidence, even where a match runs over it
                kind = "c"
            elif inside(matched) >= 0.5:
                kind = "m"
        out.append((kind, line))
    return out


def _code_html(answer: Answer, slices, boilerplate: set[int]) -> str:
    kinds = line_kinds(answer.source, _ranges(slices), _boilerplate_ranges(answer.counted, boilerplate))
    return "".join(f'<span class="l {kind}"><i>{n}</i>{html.escape(line) or " "}</span>'
                   for n, (kind, line) in enumerate(kinds, start=1))


def _text_html(answer: Answer, slices, boilerplate: set[int]) -> str:
    """A written answer, character by character: matching text marked, release/model/common text grey."""
    fp, text = answer.counted, answer.source
    kinds = [""] * len(text)
    positions = fp.positions

    def paint(ranges, kind):
        for start, end in ranges:
            end = min(end, len(positions))
            if start < end:        # the characters between (spaces, punctuation) go with their neighbours
                for i in range(int(positions[start]), int(positions[end - 1]) + 1):
                    if kinds[i] != "c":
                        kinds[i] = kind
    paint(_boilerplate_ranges(fp, boilerplate), "c")
    paint(_ranges(slices), "m")
    lines, start = [], 0
    for n, line in enumerate(text.split("\n"), start=1):
        parts, i = [], 0
        while i < len(line):
            kind, j = kinds[start + i], i
            while j < len(line) and kinds[start + j] == kind:
                j += 1
            piece = html.escape(line[i:j])
            parts.append(f"<mark>{piece}</mark>" if kind == "m" else f'<span class="g">{piece}</span>' if kind == "c"
                         else piece)
            i = j
        lines.append(f'<span class="l"><i>{n}</i>{"".join(parts) or " "}</span>')
        start += len(line) + 1
    return "".join(lines)


CSS = """
body{font-family:"IPAexGothic","Noto Sans CJK JP",system-ui,sans-serif;margin:1.2em 1.5em;color:#222;max-width:1600px}
h1{font-size:1.5em;margin:0 0 .2em} h2{margin:1.4em 0 .4em;border-bottom:2px solid #444;font-size:1.25em}
h3{margin:1.1em 0 .2em;font-size:1.08em} .meta{color:#555;margin:0 0 .6em;font-size:.9em}
.legend{background:#f4f6f8;padding:.6em 1em;border-radius:6px;font-size:.9em;line-height:1.55}
table{border-collapse:collapse;margin:.4em 0;font-size:.9em} td,th{border:1px solid #ccc;padding:.18em .55em;text-align:left}
th{background:#eee;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.hot td{background:#ffe3dd} .expected{color:#444;font-size:.9em;margin:.2em 0 .4em}
details{margin:.45em 0;border:1px solid #bbb;border-radius:6px;overflow:hidden}
summary{padding:.3em .7em;cursor:pointer;background:#f6f6f6} details.hot>summary{background:#ffe3dd}
.side{display:grid;grid-template-columns:1fr 1fr} .side>div{overflow-x:auto;min-width:0}
.side>div+div{border-left:1px solid #ccc} .who{font-weight:600;padding:.25em .6em;background:#eef1f4;border-bottom:1px solid #ddd}
pre{margin:0;font-size:12px;line-height:1.38;font-family:"DejaVu Sans Mono","IPAexGothic",monospace}
.l{display:block;padding-right:.6em;white-space:pre}
.l i{display:inline-block;width:2.4em;color:#999;font-style:normal;text-align:right;padding-right:.7em;user-select:none}
.l.m{background:#ffc4b8} .l.c{color:#a0a0a0} .problems td{background:#fff6d5}
pre.t .l{white-space:pre-wrap} .l mark{background:#ffc4b8;color:inherit} .l .g{color:#a0a0a0}
.tag{display:inline-block;padding:0 .45em;border-radius:4px;background:#b03a2e;color:#fff;font-size:.85em;white-space:nowrap}
.swatch{display:inline-block;padding:0 .4em;border-radius:3px} a{color:#1a5fb4}
"""


def _answer_html(ex: Exercise, student: str, slices) -> str:
    if ex.kind == "text":
        return f'<pre class="t">{_text_html(ex.answers[student], slices, ex.boilerplate)}</pre>'
    return f"<pre>{_code_html(ex.answers[student], slices, ex.boilerplate)}</pre>"


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _above(pair: Pair, exercise: Exercise) -> bool:
    top = exercise.independent_max
    return top is not None and pair.score > top


def render_html(results: dict[str, list[Exercise]], problems: list[Problem], threshold: float,
                course: Path, common: int) -> str:
    e = html.escape

    def name(student: str) -> str:
        return e(printable(student))

    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
           '<meta name="viewport" content="width=device-width,initial-scale=1">',
           f"<title>Similarity report</title><style>{CSS}</style></head><body>",
           "<h1>Similarity report</h1>",
           f'<p class="meta">{e(str(course))} · {e(time.strftime("%Y-%m-%d %H:%M"))} · pairs listed from a score of '
           f"{_pct(threshold)} · copydetect, k = {NOISE} · code of more than {common} students is common</p>",
           '<div class="legend"><b>How to read it.</b> Every two answers to the same exercise are compared. '
           "What the release notebook already contains (stub, lecture code, restated engine), the model solution "
           f"and code written by more than {common} students never count; the rest is each answer's <i>own code</i>. "
           "<b>score</b>: the larger share of one answer's own code that is also in the other; renamed variables, "
           "comments, strings, blank lines and spacing do not hide a match. An answer with little own code (one "
           f"line, or the model solution with a token changed) counts as {MIN_OWN} characters long, so it cannot "
           "reach 100 %. <b>raw</b>: similarity with only the release removed. <b>independent</b>: the highest score "
           "between correct answers written independently (model solution, corpus, sample class); a pair "
           '<span class="tag">above independent</span> is worth opening. Lines '
           '<span class="swatch l m" style="display:inline">highlighted</span> match the other answer; '
           '<span class="swatch l c" style="display:inline">grey</span> lines are release, model solution or common '
           "code. <b>Written answers</b> (記述) are compared the same way on their text (k = "
           f"{TEXT_NOISE} characters): width, case, spacing, line breaks, punctuation and Markdown marks are ignored, "
           "the question's own words are release; their matching passages are highlighted. "
           "A high score is a reason to look, not a verdict.</div>"]
    out.append("<h2>Summary</h2><table><tr><th>assignment</th><th>exercise</th><th>answers</th><th>blank</th>"
               "<th>pairs listed</th><th>highest score</th><th>independent</th></tr>")
    for assignment, exercises in results.items():
        for ex in exercises:
            listed = [p for p in ex.pairs if p.score >= threshold]
            top = ex.pairs[0].score if ex.pairs else 0.0
            ind = ex.independent_max
            hot = bool(ex.pairs) and _above(ex.pairs[0], ex) and top >= threshold
            out.append(f'<tr class="{"hot" if hot else ""}"><td>{e(assignment)}</td>'
                       f'<td><a href="#{e(assignment)}-{e(ex.grade_id)}">{e(ex.label)}</a></td>'
                       f'<td class="n">{len(ex.answers)}</td><td class="n">{len(ex.unanswered)}</td>'
                       f'<td class="n">{len(listed)}</td><td class="n">{_pct(top)}</td>'
                       f'<td class="n">{"-" if ind is None else _pct(ind)}</td></tr>')
    out.append("</table>")
    if problems:
        out.append(f"<h2>Submissions not compared as they are ({len(problems)})</h2><table class=\"problems\">"
                   "<tr><th>student</th><th>assignment</th><th>file</th><th>problem</th></tr>")
        for p in problems:
            out.append(f"<tr><td>{name(p.student)}</td><td>{e(printable(p.assignment))}</td>"
                       f"<td>{e(printable(p.file))}</td><td>{e(printable(p.message))}</td></tr>")
        out.append("</table>")
    for assignment, exercises in results.items():
        out.append(f"<h2>{e(assignment)}</h2>")
        for ex in exercises:
            listed = [p for p in ex.pairs if p.score >= threshold]
            level = ex.expected
            if "score" in level:
                ref = (f"Independent correct answers ({level['answers']}): score up to {_pct(level['score'])}, "
                       f"raw up to {_pct(level['raw'])}.")
            else:
                ref = "No two independent correct answers to compare with."
            out.append(f'<h3 id="{e(assignment)}-{e(ex.grade_id)}">{e(ex.label)} <small>({e(ex.grade_id)})</small></h3>'
                       f'<p class="expected">{len(ex.answers)} answers compared, {len(ex.unanswered)} blank or missing. '
                       f"{ref} {len(listed)} pair(s) from {_pct(threshold)}.</p>")
            if not listed:
                continue
            own = "own text" if ex.kind == "text" else "own code"
            out.append("<table><tr><th>#</th><th>student</th><th>student</th><th>score</th>"
                       f"<th>{own} of first found in second</th><th>{own} of second found in first</th>"
                       "<th>raw</th><th></th></tr>")
            for rank, p in enumerate(listed, start=1):
                hot = _above(p, ex)
                out.append(f'<tr class="{"hot" if hot else ""}"><td class="n">{rank}</td><td>{name(p.a)}</td>'
                           f'<td>{name(p.b)}</td><td class="n">{_pct(p.score)}</td><td class="n">{_pct(p.share_a)}</td>'
                           f'<td class="n">{_pct(p.share_b)}</td><td class="n">{_pct(p.raw)}</td>'
                           f'<td>{"<span class=tag>above independent</span>" if hot else ""}</td></tr>')
            out.append("</table>")
            for rank, p in enumerate(listed, start=1):
                hot = _above(p, ex)
                out.append(f'<details class="{"hot" if hot else ""}"{" open" if hot and rank <= 2 else ""}>'
                           f"<summary>#{rank} {name(p.a)} ↔ {name(p.b)}: score {_pct(p.score)} "
                           f"({own} found: {_pct(p.share_a)} / {_pct(p.share_b)}), raw {_pct(p.raw)}</summary>"
                           '<div class="side">'
                           f'<div><div class="who">{name(p.a)}</div>'
                           f"{_answer_html(ex, p.a, p.slices_a)}</div>"
                           f'<div><div class="who">{name(p.b)}</div>'
                           f"{_answer_html(ex, p.b, p.slices_b)}</div>"
                           "</div></details>")
    out.append("</body></html>")
    return "\n".join(out)


def write_csv(path: Path, results: dict[str, list[Exercise]], threshold: float) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["assignment", "exercise", "grade_id", "student_a", "student_b", "score", "share_a", "share_b",
                    "own_a", "own_b", "raw", "independent_max", "listed"])
        for assignment, exercises in results.items():
            for ex in exercises:
                top = ex.independent_max
                for p in ex.pairs:
                    w.writerow([assignment, ex.label, ex.grade_id, csv_safe(p.a), csv_safe(p.b), f"{p.score:.3f}",
                                f"{p.share_a:.3f}", f"{p.share_b:.3f}", ex.answers[p.a].own, ex.answers[p.b].own,
                                f"{p.raw:.3f}", "" if top is None else f"{top:.3f}", int(p.score >= threshold)])


def run(course: Path, names: list[str], out: Path, threshold: float = THRESHOLD, common: int = COMMON,
        references: bool = True) -> tuple[dict[str, list[Exercise]], list[Problem]]:
    """Compare every named assignment of the class in course/submitted; write the HTML and CSV into out."""
    submitted = course / "submitted"
    results, problems = {}, []
    known = set(assignments())
    for name in names:
        if course_notebook(course, "release", name) is None:
            problems.append(Problem("-", name, "-", "unknown assignment (no release notebook): skipped"))
            continue
        class_answers, found = read_class(submitted, name)
        problems += found
        results[name] = analyse(name, class_answers, course, common, references)
    if submitted.is_dir():
        for folder in sorted(submitted.glob("*/*")):
            if folder.is_dir() and folder.name not in known and folder.name not in results:
                problems.append(Problem(folder.parent.name, folder.name, "-", "unknown assignment folder: not compared"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "similarity.html").write_text(render_html(results, problems, threshold, course, common), encoding="utf-8")
    write_csv(out / "similarity.csv", results, threshold)
    return results, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ROOT if (ROOT / "submitted").is_dir() else ROOT / "examples"
    parser.add_argument("--course", type=Path, default=default,
                        help="course directory holding submitted/ (default: this repository, or examples/)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "similarity", help="where the report goes")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="list pairs from this score (0-1)")
    parser.add_argument("--common", type=int, default=COMMON,
                        help="code in the answers of more than N students is common, not copied")
    parser.add_argument("names", nargs="*", help="assignments (default: all)")
    args = parser.parse_args(argv)
    if not (args.course / "submitted").is_dir():
        print(f"no submitted/ folder in {args.course}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    out = args.out.resolve()
    results, problems = run(args.course.resolve(), args.names or assignments(), out, args.threshold, args.common)
    for name, exercises in results.items():
        for ex in exercises:
            listed = [p for p in ex.pairs if p.score >= args.threshold]
            top = ex.independent_max
            print(f"{name:<24} {ex.label:<10} {len(ex.answers):>4} answers   independent up to "
                  f"{'-' if top is None else _pct(top):>5}   {len(listed)} pair(s) from {_pct(args.threshold)}")
            for p in listed[:5]:
                mark = "   above independent" if _above(p, ex) else ""
                print(f"    {_pct(p.score):>6}  {printable(p.a)} <-> {printable(p.b)}{mark}")
            if len(listed) > 5:
                print(f"    ... {len(listed) - 5} more in the report")
    for p in problems:
        print(f"not compared as it is: {printable(p.student)} {printable(p.assignment)} {printable(p.file)}: "
              f"{printable(p.message)}")
    print(f"report: {out / 'similarity.html'} (CSV: similarity.csv), {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
