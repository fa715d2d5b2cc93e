"""The similarity report (coursetools/similarity.py), on a test class built from the corpus.

Every answer of tests/corpus/ and of the sample class (aoki's alternatives, chiba's mistakes, the
corpus's wrong and right answers) is handed in by a different student, s01, s02, ...; a student who
has no such answer left for an exercise hands in the model solution. Then copies are planted: whole
notebooks copied exactly, with renamed identifiers, reformatted, and with independent statements
reordered, and in one exercise per notebook a student copies part of a classmate's answer. Every
planted pair must score above every independent pair, exercise by exercise.
"""
from __future__ import annotations

import ast
import difflib
import io
import json
import re
import shutil
import tokenize
from pathlib import Path

import nbformat
import numpy as np
import pytest

from coursetools import similarity
from coursetools.common import ROOT, assignments, is_answer_cell, nbgrader_meta, release_notebook
from qa.corpus import filled_release

SAMPLE = ROOT / "examples" / "submitted"
HOSTILE = "<script>alert('x')<\\script>"  # a folder name cannot hold "/"


# ---------------------------------------------------------------------------------------------
# disguises a copier uses

def rename_identifiers(source: str) -> str:
    """Every variable and parameter the cell binds gets another name (the functions and classes the
    tests call keep theirs, as a copier's must; keyword arguments of calls keep theirs)."""
    bound = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.arg) and node.arg not in ("self", "cls"):
            bound.add(node.arg)
    names = {name: f"v{i}_{name[::-1]}" for i, name in enumerate(sorted(bound))}
    code = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.NL, tokenize.COMMENT)]
    calls, renames = [], []   # calls: is each open bracket a call's (where `name=` is a keyword)?
    for i, tok in enumerate(code):
        before = code[i - 1] if i else None
        after = code[i + 1].string if i + 1 < len(code) else ""
        if tok.type == tokenize.OP and tok.string in "([{":
            defines = i >= 2 and code[i - 2].string in ("def", "class")
            calls.append(tok.string == "(" and before is not None and not defines
                         and (before.type == tokenize.NAME or before.string in ")]"))
        elif tok.type == tokenize.OP and tok.string in ")]}" and calls:
            calls.pop()
        keyword = after == "=" and calls and calls[-1]
        if tok.type == tokenize.NAME and tok.string in names and not keyword and (before is None or before.string != "."):
            renames.append(tok.start)
    lines = source.split("\n")
    for row, col in sorted(renames, reverse=True):
        line = lines[row - 1]
        end = col + len(re.match(r"\w+", line[col:]).group(0))
        lines[row - 1] = line[:col] + names[line[col:end]] + line[end:]
    return "\n".join(lines)


LINE_START = (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT)


def reformat(source: str) -> str:
    """Every token kept, everything else changed: comments dropped and others added, two-space
    indentation, other spacing, a blank line after each header, single-quoted docstrings."""
    tokens, level = [], 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        kind, text = tok.type, tok.string
        if kind == tokenize.COMMENT:
            continue
        if kind == tokenize.INDENT:
            level += 1
            text = "  " * level
        elif kind == tokenize.DEDENT:
            level -= 1
        elif kind == tokenize.STRING and text.startswith('"""'):
            text = "'''" + text[3:-3] + "'''"
        elif kind == tokenize.NAME and text == "return" and (not tokens or tokens[-1][0] in LINE_START):
            tokens += [(tokenize.COMMENT, "# my own step"), (tokenize.NL, "\n")]
        tokens.append((kind, text))
    return re.sub(r"^(\s*(def|class) .*:)$", r"\1\n", tokenize.untokenize(tokens), flags=re.MULTILINE)


def _pure(node) -> bool:
    """No call that could change state: only calls of plain functions and of NumPy (f(x), np.exp(x))."""
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        func = call.func
        numpy = (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "np"
                 and func.attr != "random")
        if not (isinstance(func, ast.Name) or numpy):
            return False
    return True


def _names(node, ctx) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _independent(a, b) -> bool:
    """Two statements that can run in either order: two definitions, or two assignments to plain names
    neither of which reads or writes what the other writes, without calls that could change state."""
    if all(isinstance(s, (ast.FunctionDef, ast.ClassDef)) for s in (a, b)):
        return a.name != b.name and not a.decorator_list and not b.decorator_list
    if not all(isinstance(s, ast.Assign) and all(isinstance(t, ast.Name) for t in s.targets) and _pure(s)
               for s in (a, b)):
        return False
    wa, wb = _names(a, ast.Store), _names(b, ast.Store)
    return not (wa & (wb | _names(b, ast.Load)) or wb & _names(a, ast.Load))


def reorder(source: str) -> tuple[str, int]:
    """Swap adjacent independent statements (at every level), keeping their text; returns the new
    source and the number of swaps."""
    swaps = []

    def visit(body):
        i = 0
        while i + 1 < len(body):
            a, b = body[i], body[i + 1]
            if _independent(a, b) and a.end_lineno < b.lineno and a.col_offset == b.col_offset:
                swaps.append((a.lineno - 1, a.end_lineno, b.lineno - 1, b.end_lineno))
                i += 2
            else:
                i += 1
        for node in body:
            for name in ("body", "orelse", "finalbody"):
                inner = getattr(node, name, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    visit(inner)

    visit(ast.parse(source).body)
    lines = source.split("\n")
    for a0, a1, b0, b1 in sorted(swaps, reverse=True):
        lines[a0:b1] = lines[b0:b1] + lines[a1:b0] + lines[a0:a1]
    return "\n".join(lines), len(swaps)


def _parts(source: str) -> tuple[list[int], int]:
    """Where the parts of an answer start (0-based lines), and how many of the last ones a partial copy
    takes: the last method of a class, the last of several definitions, the second half of a function."""
    body = ast.parse(source).body
    if len(body) == 1 and isinstance(body[0], ast.ClassDef):
        return [m.lineno - 1 for m in body[0].body if isinstance(m, ast.FunctionDef)], 1
    if len(body) == 1 and isinstance(body[0], ast.FunctionDef):
        starts = [n.lineno - 1 for n in body[0].body]
        return starts, len(starts) // 2
    return [n.lineno - 1 for n in body], 1


def partial_copy(copied: str, own: str) -> tuple[str, int]:
    """`own` with its last part replaced by the last part of `copied` (see _parts); returns the new answer
    and the line where the copied part starts."""
    (ours, _), (theirs, take) = _parts(own), _parts(copied)
    keep = ours[max(1, len(ours) - take)]
    return "\n".join(own.split("\n")[:keep] + copied.split("\n")[theirs[len(theirs) - take]:]), keep


def can_copy_part(copied: str, own: str) -> bool:
    (ours, _), (theirs, take) = _parts(own), _parts(copied)
    return len(theirs) >= 2 and len(ours) >= 2 and take >= 1


# ---------------------------------------------------------------------------------------------
# the test class

def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _normalised(source: str) -> str:
    return similarity.fingerprint(source).filtered_code


class TestClass:
    """{student: {grade_id: source}} of one assignment, and which pairs are planted copies."""
    __test__ = False  # not a pytest test class

    def __init__(self, assignment: str):
        self.assignment = assignment
        solutions = {gid: _strip_markers(text) for gid, text in similarity.model_solutions(assignment).items()}
        # answers written independently of the model solution first (aoki's, the corpus's right answers),
        # then chiba's mistakes and the corpus's wrong answers (edits of the model solution)
        sample = similarity.read_class(SAMPLE, assignment)[0]
        corpus = similarity.corpus_entries(assignment)
        written = (sorted(sample["aoki"].items()) + [(gid, text) for kind, gid, _, text in corpus if kind == "right"]
                   + sorted(sample["chiba"].items()) + [(gid, text) for kind, gid, _, text in corpus if kind == "wrong"])
        entries = {}
        for gid, solution in solutions.items():
            seen, own = {_normalised(solution)}, []
            for answer, text in written:
                text = _strip_markers(text)
                if answer == gid and _normalised(text) not in seen:  # identical answers are not independent
                    seen.add(_normalised(text))
                    own.append(text)
            entries[gid] = own
        self.gids = list(solutions)
        count = max(len(texts) for texts in entries.values())
        self.answers = {f"s{i + 1:02d}": {gid: texts[i] if i < len(texts) else solutions[gid]
                                          for gid, texts in entries.items()} for i in range(count)}
        own_answer = {s: {gid for gid, texts in entries.items() if i < len(texts)} for i, s in enumerate(self.answers)}
        self.groups = {gid: {s: {s} for s in self.answers} for gid in self.gids}

        # copies are made of s01 (aoki's answers, all written independently of the model solution) and of
        # every student whose answers all have at least MIN_OWN code of their own: a copy of the model
        # solution with one token changed leaves nothing any fingerprint could tell from the same slip
        own = {ex.grade_id: {s: a.own for s, a in ex.answers.items()}
               for ex in similarity.analyse(assignment, self.answers, references=False)}
        originals = ["s01"] + [s for s in self.answers if s != "s01" and
                               all(own[gid].get(s, 0) >= similarity.MIN_OWN for gid in self.gids)]
        self.disguised = {}
        disguises = [("exact", lambda text: text), ("renamed", rename_identifiers), ("reformatted", reformat),
                     ("reordered", lambda text: reorder(text)[0])]
        for k, (kind, disguise) in enumerate(disguises):
            original = originals[k % len(originals)]
            copier = f"{kind}-{original}"
            self.answers[copier] = {gid: disguise(text) for gid, text in self.answers[original].items()}
            self.disguised[kind] = (copier, original)
            for gid in self.gids:
                self._join(gid, copier, original)

        # one student copies the last part of one exercise's answer (a method, a definition, the second
        # half of a function) from aoki's and writes the rest, and the rest of their notebook, themselves
        copied = {original for _, original in self.disguised.values()}
        candidates = [(own[gid]["s01"], gid, s) for gid in self.gids for s in sorted(own_answer)
                      if s not in copied and gid in own_answer[s]
                      and can_copy_part(self.answers["s01"][gid], self.answers[s][gid])]
        assert candidates, f"{assignment}: no exercise to copy a part of"
        _, gid, copier = max(candidates)
        self.answers[copier][gid], start = partial_copy(self.answers["s01"][gid], self.answers[copier][gid])
        self.partial = (gid, copier, "s01", start)
        self._join(gid, copier, "s01")

    def _join(self, gid: str, a: str, b: str) -> None:
        groups = self.groups[gid]
        merged = groups.get(a, {a}) | groups.get(b, {b})
        for s in merged:
            groups[s] = merged

    def planted(self, gid: str, a: str, b: str) -> bool:
        return b in self.groups[gid].get(a, {a})

    def write(self, course: Path) -> None:
        for student, cells in self.answers.items():
            folder = course / "submitted" / student / self.assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(filled_release(self.assignment, cells), folder / f"{self.assignment}.ipynb")


def ranking(test_class: TestClass, exercises, score=lambda pair: pair.score) -> dict[str, tuple[list, list]]:
    """{grade_id: (planted pairs lowest first, independent pairs highest first)}, each [(score, a, b)]."""
    table = {}
    for ex in exercises:
        planted = sorted((score(p), p.a, p.b) for p in ex.pairs if test_class.planted(ex.grade_id, p.a, p.b))
        independent = sorted(((score(p), p.a, p.b) for p in ex.pairs
                              if not test_class.planted(ex.grade_id, p.a, p.b)), reverse=True)
        table[ex.grade_id] = (planted, independent)
    return table


def misranked(table: dict) -> list[str]:
    """Exercises where some independent pair scores at least as high as some planted pair."""
    return [f"{gid}: planted {planted[0][1]}~{planted[0][2]} {planted[0][0]:.2f} <= "
            f"independent {independent[0][1]}~{independent[0][2]} {independent[0][0]:.2f}"
            for gid, (planted, independent) in table.items()
            if independent and planted[0][0] <= independent[0][0]]


@pytest.fixture(scope="module")
def corpus_class(tmp_path_factory):
    """The test class of every assignment, written as submissions into a scratch course and reported on."""
    course = tmp_path_factory.mktemp("similarity")
    classes = {a: TestClass(a) for a in assignments()}
    for test_class in classes.values():
        test_class.write(course)
    results, problems = similarity.run(course, list(classes), course / "report")
    return course, classes, results, problems


# ---------------------------------------------------------------------------------------------
# the ranking

def test_every_planted_copy_ranks_above_every_independent_pair(corpus_class):
    course, classes, results, problems = corpus_class
    assert problems == []
    failures = []
    for assignment, test_class in classes.items():
        table = ranking(test_class, results[assignment])
        failures += [f"{assignment} {line}" for line in misranked(table)]
        for gid, (planted, independent) in table.items():
            pairs = {(a, b) for _, a, b in planted}
            for copier, original in test_class.disguised.values():  # every copy was compared with its original
                assert (min(copier, original), max(copier, original)) in pairs, f"{assignment} {gid}: {copier}"
            assert independent, f"{assignment} {gid}: no independent pairs"
    assert not failures, "planted copies not above every independent pair:\n" + "\n".join(failures)


def test_the_disguises_are_real(corpus_class):
    _, classes, _, _ = corpus_class
    reordered = changed = 0
    for assignment, test_class in classes.items():
        for kind, (copier, original) in test_class.disguised.items():
            differ = [gid for gid in test_class.gids
                      if test_class.answers[copier][gid] != test_class.answers[original][gid]]
            if kind == "reordered":
                reordered += len(differ)
                assert differ, f"{assignment}: the reordered copy swapped nothing"
            elif kind != "exact":
                changed += len(differ)
                assert len(differ) == len(test_class.gids), f"{assignment}: {kind} left {set(test_class.gids) - set(differ)}"
        gid, copier, original, start = test_class.partial
        text = test_class.answers[copier][gid].split("\n")
        assert 0 < start < len(text) and text[start:] != test_class.answers[original][gid].split("\n")
    exercises = sum(len(c.gids) for c in classes.values())
    assert reordered >= exercises // 3, f"statements reordered in only {reordered} of {exercises} exercises"


def test_highlights_show_the_copied_part(corpus_class):
    """The partial copier's lines taken from aoki are highlighted side by side; lines they wrote that aoki's
    answer does not have (names aside) are not."""
    _, classes, results, _ = corpus_class
    for assignment, test_class in classes.items():
        gid, copier, original, start = test_class.partial
        exercise = next(ex for ex in results[assignment] if ex.grade_id == gid)
        pair = next(p for p in exercise.pairs if {p.a, p.b} == {copier, original})
        slices = pair.slices_a if pair.a == copier else pair.slices_b
        answer = exercise.answers[copier]
        kinds = similarity.line_kinds(answer.source, similarity._ranges(slices),
                                      similarity._boilerplate_ranges(answer.counted, exercise.boilerplate))
        theirs = {_normalised(line.strip()) for line in test_class.answers[original][gid].split("\n")}
        copied = [k for k, line in kinds[start:] if line.strip() and k != "c"]
        written = [k for k, line in kinds[:start] if line.strip() and k != "c" and _normalised(line.strip()) not in theirs]
        assert copied and sum(k == "m" for k in copied) >= 0.7 * len(copied), (assignment, kinds[start:])
        assert sum(k == "m" for k in written) <= 1, (assignment, kinds[:start])  # a match may spill into one line


def test_class_names_keep_highlights_in_place():
    """copydetect 0.5.0 records a wrong offset for class names; similarity repairs it, so offsets grow."""
    for assignment in assignments():
        for text in similarity.model_solutions(assignment).values():
            offsets = similarity.fingerprint(text).offsets
            if len(offsets):
                assert np.all(np.diff(offsets[:, 1]) >= 0), (assignment, text[:60])


# ---------------------------------------------------------------------------------------------
# each ingredient is needed: without it, the same class is mis-ranked

def _reanalyse(assignment: str, test_class: TestClass, release: bool, solution: bool):
    nb = nbformat.read(release_notebook(assignment), as_version=4)
    release_hashes = similarity.kgram_hashes(c.source for c in nb.cells if c.cell_type == "code") if release else set()
    solutions = similarity.model_solutions(assignment)
    stubs = {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells if is_answer_cell(c)}
    return [similarity.analyse_exercise(assignment, gid, gid, {s: cells[gid] for s, cells in test_class.answers.items()},
                                        stubs[gid], release_hashes,
                                        similarity.kgram_hashes([solutions[gid]]) if solution else set())
            for gid in test_class.gids]


def test_without_the_release_and_model_solution_as_boilerplate_copies_drown(corpus_class):
    _, classes, results, _ = corpus_class
    bare = [line for a, c in classes.items() for line in misranked(ranking(c, _reanalyse(a, c, False, False)))]
    release_only = [line for a, c in classes.items() for line in misranked(ranking(c, results[a], lambda p: p.raw))]
    assert len(bare) >= 5, bare
    assert len(release_only) >= 5, release_only


def test_naive_text_comparison_misses_disguised_copies(corpus_class):
    _, classes, results, _ = corpus_class

    def ratio(pair, answers):
        return difflib.SequenceMatcher(None, answers[pair.a], answers[pair.b]).ratio()

    naive = [line for a, c in classes.items() for ex in results[a]
             for line in misranked(ranking(c, [ex], lambda p, ex=ex: ratio(p, {s: x.source for s, x in ex.answers.items()})))]
    assert len(naive) >= 5, naive


def test_without_the_minimum_of_own_code_a_one_line_slip_looks_like_a_copy(corpus_class, monkeypatch):
    _, classes, _, _ = corpus_class
    monkeypatch.setattr(similarity, "MIN_OWN", 0)
    plain = [line for a, c in classes.items()
             for line in misranked(ranking(c, similarity.analyse(a, c.answers, references=False)))]
    assert plain, "copydetect's plain share ranks the test class right: MIN_OWN would not be needed"


# ---------------------------------------------------------------------------------------------
# the report

def test_report_files(corpus_class):
    course, classes, results, _ = corpus_class
    page = (course / "report" / "similarity.html").read_text(encoding="utf-8")
    rows = (course / "report" / "similarity.csv").read_text(encoding="utf-8").splitlines()
    pairs = sum(len(ex.pairs) for exercises in results.values() for ex in exercises)
    assert len(rows) == pairs + 1
    for assignment, test_class in classes.items():
        copier, original = test_class.disguised["renamed"]
        assert f"{copier}</td>" in page and f'id="{assignment}-{test_class.gids[0]}"' in page
    assert "<script" not in page.lower()
    assert 'class="l m"' in page and "above independent" in page and "Independent correct answers" in page


def _copy_sample(course: Path, assignment: str, students=("aoki", "baba", "chiba")) -> Path:
    for student in students:
        shutil.copytree(SAMPLE / student / assignment, course / "submitted" / student / assignment)
    return course / "submitted"


def test_bad_input_is_listed_and_the_rest_compared(tmp_path, capsys):
    assignment = "73_backprop_scalar"
    submitted = _copy_sample(tmp_path, assignment)
    text = (SAMPLE / "aoki" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8")

    def put(student: str, name: str, content: str | None = text) -> Path:
        folder = submitted / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        if content is not None:
            (folder / name).write_text(content, encoding="utf-8")
        return folder

    put("truncated", f"{assignment}.ipynb", text[: len(text) // 2])
    put("renamed", f"{assignment} (1).ipynb")
    put("empty", "notes.txt", "nothing here")
    put("two", "a.ipynb")
    put("two", "b.ipynb")
    nb = json.loads(text)
    gid = [nbgrader_meta(c)["grade_id"] for c in nbformat.read(release_notebook(assignment), as_version=4).cells
           if is_answer_cell(c) and c.cell_type == "code"][-1]
    nb["cells"] += [cell for cell in nb["cells"] if cell["metadata"].get("nbgrader", {}).get("grade_id") == gid]
    put("twice", f"{assignment}.ipynb", json.dumps(nb))
    (put("linked", "x", None) / f"{assignment}.ipynb").symlink_to(SAMPLE / "aoki" / assignment / f"{assignment}.ipynb")
    (submitted / "aoki" / "99_unknown").mkdir()

    out = tmp_path / "report"
    assert similarity.main(["--course", str(tmp_path), "--out", str(out), assignment]) == 0
    printed = capsys.readouterr().out
    page = (out / "similarity.html").read_text(encoding="utf-8")
    for student, words in [("truncated", "not a readable notebook"), ("renamed", "compared anyway"),
                           ("empty", "no notebook"), ("two", "several notebooks"), ("twice", "appears 2 times"),
                           ("linked", "not a regular file"), ("aoki", "unknown assignment folder")]:
        assert any(student in line and words in line for line in printed.splitlines()), (student, printed)
        assert re.search(rf"<td>{student}</td>.*{re.escape(words)}", page), student
    # the renamed notebook and the one with a duplicated cell are still compared: they are copies of aoki's
    csv = (out / "similarity.csv").read_text(encoding="utf-8")
    assert re.search(rf"{gid},aoki,renamed,1\.000", csv) and re.search(rf"{gid},aoki,twice,", csv)
    assert ",truncated," not in csv and ",linked," not in csv


def test_hostile_names_and_code_are_escaped(tmp_path, capsys):
    assignment = "74_backprop_matrix"
    submitted = _copy_sample(tmp_path, assignment)
    formula, terminal = "=HYPERLINK(\"x\")", "red\x1b[31mname"
    notebook = SAMPLE / "aoki" / assignment / f"{assignment}.ipynb"
    for student in (HOSTILE, formula, terminal):
        nb = nbformat.read(notebook, as_version=4)
        for cell in nb.cells:
            if is_answer_cell(cell):
                cell.source += "\n# </pre></div><script>alert(1)</script><img src=x onerror=alert(2)>"
        (submitted / student / assignment).mkdir(parents=True)
        nbformat.write(nb, submitted / student / assignment / f"{assignment}.ipynb")
    out = tmp_path / "report"
    assert similarity.main(["--course", str(tmp_path), "--out", str(out), assignment]) == 0
    page = (out / "similarity.html").read_text(encoding="utf-8")
    assert "<td>&lt;script&gt;alert(&#x27;x&#x27;)&lt;\\script&gt;</td>" in page   # the name, escaped and shown
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "Content-Security-Policy" in page
    rows = (out / "similarity.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in rows and ",=HYPERLINK" not in rows
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "red\\x1b[31mname" in printed


def test_sample_class_report(tmp_path):
    out = tmp_path / "report"
    assert similarity.main(["--course", str(ROOT / "examples"), "--out", str(out)]) == 0
    page = (out / "similarity.html").read_text(encoding="utf-8")
    answers = sum(1 for a in assignments() for c in nbformat.read(release_notebook(a), as_version=4).cells
                  if is_answer_cell(c) and c.cell_type == "code")   # written answers are not compared
    assert page.count("<h3 id=") == answers
    rows = (out / "similarity.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + answers   # aoki and chiba answer everything, baba hands in the blank release
