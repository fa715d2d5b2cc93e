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
import html
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
        code = {nbgrader_meta(c)["grade_id"] for c in nbformat.read(release_notebook(assignment), as_version=4).cells
                if is_answer_cell(c) and c.cell_type == "code"}          # written answers: see build_written_class
        solutions = {gid: _strip_markers(text) for gid, text in similarity.model_solutions(assignment).items()
                     if gid in code}
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
    for ex in (e for e in exercises if e.kind == "code"):    # written answers: build_written_class
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
                  if is_answer_cell(c))                             # code and written answers
    assert page.count("<h3 id=") == answers
    rows = (out / "similarity.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + answers   # aoki and chiba answer everything, baba hands in the blank release


# ---------------------------------------------------------------------------------------------
# written answers (Markdown answer cells, graded by hand)

# One more independent answer to every written question, in words of its own (the sample class has aoki's
# full answers and chiba's thin ones).
OWN_WRITTEN = {
    "ex70_5-answer": "η を 0.39 にしてもまだ損失は減り、0.41 では 40 歩のうちに大きくなりました。境目は step_limits の "
                     "largest（約 0.397）とほぼ重なっています。\n\n1 次の近似は曲面を平面とみなしますが、実際の損失には "
                     "曲率の項 η²φ''/2 が残ります。学習率を上げるとこの項が η の 2 乗で効いてきて、いちばん急に曲がる方向では "
                     "1 歩ごとに誤差が 1 − ηλ 倍されます。ηλ が 2 を超えると絶対値が 1 を超え、振動しながら膨らんでいきます。",
    "ex70_6-answer": "中心差分ではパラメータ 1 つにつき損失の評価が 2 回要るので、n 個なら 2n 回です。しかも 1 回の評価が "
                     "ネットワーク全体の順伝播なので、100 万パラメータでは 1 回の更新に順伝播 200 万回ぶんかかり、"
                     "逆伝播（順伝播のおよそ数倍で全勾配）とは比べものになりません。\n\n役に立つのは、自分で書いた backward の "
                     "検算です。小さな入力で両者の相対誤差を見れば、実装の誤りが分かります。",
    "ex71_4-answer": "損失がスカラーなので、VJP を 1 回流せば 100 万個の偏微分が同時にそろいます。JVP は入力の方向を 1 つ "
                     "選ぶたびに 1 本の方向微分しか返さないので、同じものを得るには 100 万回の伝播が要ります。\n\n"
                     "引き換えに、逆向きに進むときに使う中間結果（各層の入力など）を順伝播の間ずっと保存しておく必要があり、"
                     "メモリを多く使います。",
    "ex71_5-answer": "入力は時刻の 1 つだけで出力が 1000 個なので、フォワードモードが向いています。接ベクトルとして dt = 1 を "
                     "流す 1 回の伝播で、1000 個の位置すべての微分が得られます。リバースモードは出力 1 つごとに 1 回の逆伝播に "
                     "なるので、1000 回繰り返すことになります。",
    "ex72_5-answer": "先にグラフを固定するやり方では、どの枝を通るかが x の値しだいなのに、組み立ての時点では値がありません。"
                     "2 乗の枝か符号反転の枝のどちらかしかグラフに入れられず、compile したグラフは入力が変わっても同じ計算を"
                     "するので、符号によっては答えが合いません。\n\n実行しながらグラフを作る方式なら、その回の入力で実際に"
                     "選ばれた演算だけが記録されるので、分岐も普通の Python のまま書けます。",
    "ex72_6-answer": "たとえば 3 と 3 を足すグラフで、値が同じ定数ノードを 2 つ作ったとします。値で同一かどうかを見ると "
                     "2 つ目のノードがすでに訪れたものと扱われ、トポロジカル順から落ちてしまいます。すると順伝播でそのノードの "
                     "値が設定されず、逆伝播でも片方にしか grad が積まれません。別々のオブジェクトかどうかは id でしか判定"
                     "できません。",
    "ex73_4-answer": "確認できたのは、その点での各パラメータの解析的な勾配が、有限差分による近似と相対誤差の範囲で合っている"
                     "ことだけです。\n\n確認できていないのは、まずモデルそのものが正しい式になっているかどうか（ノードの"
                     "つなぎ間違いは両方の勾配に同じように入ります）。次に、調べなかった別の入力や別の初期値でも合うかどうか"
                     "です（たとえば ReLU の 0 付近）。",
    "ex73_5-answer": "1. 種がすべて 1 なので、出力の要素を全部足したスカラーを各パラメータで微分した値が grad に入ります。\n"
                     "2. 種を v にすると、v と出力の内積 v·y をパラメータで微分した値、つまりベクトルとヤコビ行列の積 vᵀJ "
                     "が得られます。これは Notebook 71 の VJP そのもので、1 回の逆伝播で 1 本の VJP が求まります。",
}
WRITTEN_ASSIGNMENTS = ("70_derivatives", "71_chain_rule", "72_computational_graph", "73_backprop_scalar")


def written_answers(student: str, assignment: str) -> dict[str, str]:
    nb = nbformat.read(SAMPLE / student / assignment / f"{assignment}.ipynb", as_version=4)
    return {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells if is_answer_cell(c) and c.cell_type == "markdown"}


def sentences(text: str) -> list[str]:
    return [s + "。" for s in re.split(r"。\s*", text.strip()) if s.strip()]


OWN_ENDING = "授業で扱った小さな例を手で計算して確かめたので、この説明で合っていると考えています。"


def first_half(text: str) -> str:
    """The first sentences of text, at least half of it."""
    out = ""
    for sentence in sentences(text):
        out += sentence
        if len(out) * 2 >= len(text):
            break
    return out


def disguise(text: str) -> str:
    """What a copier does to prose: the sentences in another order, other line breaks and spacing, full-width
    digits and Latin letters, other punctuation."""
    parts = sentences(text)
    parts = parts[1::2] + parts[0::2]
    wide = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"})
    return "\n".join(p.translate(wide).replace("、", "， ").replace("。", "．") for p in parts)


@pytest.fixture(scope="module")
def written_class(tmp_path_factory):
    return build_written_class(tmp_path_factory.mktemp("written"))


def build_written_class(course: Path):
    """aoki, chiba and own (independent); exact, disguised and partial copies of aoki's (partial: the first
    sentences, at least half of the text, then a sentence of the copier's own). Reported on."""
    sources = {"aoki": {"A"}, "chiba": {"C"}, "own": {"O"}, "exact": {"A"}, "disguised": {"A"}, "partial": {"A"}}
    for assignment in WRITTEN_ASSIGNMENTS:
        aoki, chiba = written_answers("aoki", assignment), written_answers("chiba", assignment)
        for student in sources:
            cells = {}
            for gid in aoki:
                cells[gid] = {"aoki": aoki[gid], "chiba": chiba[gid], "own": OWN_WRITTEN[gid], "exact": aoki[gid],
                              "disguised": disguise(aoki[gid]), "partial": first_half(aoki[gid]) + "\n\n" + OWN_ENDING,
                              }[student]
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True)
            nb = filled_release(assignment, {})
            for cell in nb.cells:
                gid = nbgrader_meta(cell).get("grade_id")
                if gid in cells:
                    cell.source = cells[gid]
            nbformat.write(nb, folder / f"{assignment}.ipynb")
    results, problems = similarity.run(course, list(WRITTEN_ASSIGNMENTS), course / "report")
    return course, sources, results, problems


def test_written_copies_rank_above_independent_written_answers(written_class):
    course, sources, results, problems = written_class
    assert problems == []
    failures, seen = [], 0
    for assignment in WRITTEN_ASSIGNMENTS:
        for ex in (e for e in results[assignment] if e.kind == "text"):
            seen += 1
            assert re.fullmatch(r"演習 \d+\.\d+（記述）", ex.label), ex.label
            planted = [p for p in ex.pairs if sources[p.a] & sources[p.b]]
            independent = [p for p in ex.pairs if not sources[p.a] & sources[p.b]]
            assert len(planted) == 6 and len(independent) == 9, (ex.grade_id, len(planted), len(independent))
            low = min(planted, key=lambda p: p.score)
            high = max(independent, key=lambda p: p.score)
            if low.score <= high.score or low.score < similarity.THRESHOLD:
                failures.append(f"{ex.grade_id}: planted {low.a}~{low.b} {low.score:.2f}, "
                                f"independent {high.a}~{high.b} {high.score:.2f}")
            exact = next(p for p in ex.pairs if {p.a, p.b} == {"aoki", "exact"})
            assert exact.share_a == pytest.approx(1.0) == exact.share_b, (ex.grade_id, exact)
    assert seen == 8
    assert not failures, failures


def test_the_written_disguise_is_real():
    text = written_answers("aoki", "73_backprop_scalar")["ex73_4-answer"]
    changed = disguise(text)
    assert difflib.SequenceMatcher(None, text, changed, autojunk=False).ratio() < 0.6
    assert similarity.normalise_text(changed)[0] != similarity.normalise_text(text)[0]   # reordered, not equal


def test_written_highlights_mark_the_copied_sentences(written_class):
    course, _, results, _ = written_class
    ex = next(e for e in results["73_backprop_scalar"] if e.grade_id == "ex73_4-answer")
    pair = next(p for p in ex.pairs if {p.a, p.b} == {"aoki", "partial"})
    slices = pair.slices_a if pair.a == "partial" else pair.slices_b
    page = similarity._text_html(ex.answers["partial"], slices, ex.boilerplate)
    marked = "".join(re.findall(r"<mark>(.*?)</mark>", page))
    first = sentences(written_answers("aoki", "73_backprop_scalar")["ex73_4-answer"])[0]
    assert html.unescape(first[:-1]) in html.unescape(marked)      # aoki's sentence, copied: marked
    assert OWN_ENDING[:10] not in html.unescape(marked)              # the copier's own words: not marked
    report = (course / "report" / "similarity.html").read_text(encoding="utf-8")
    assert '<pre class="t">' in report and "<mark>" in report and "演習 73.4（記述）" in report


def test_without_text_normalisation_disguised_written_copies_slip_under(tmp_path, monkeypatch):
    monkeypatch.setattr(similarity, "normalise_text",
                        lambda text: (text, np.arange(len(text), dtype=np.int64)))     # the raw text
    _, sources, results, _ = build_written_class(tmp_path)
    slipped = [ex.grade_id for a in WRITTEN_ASSIGNMENTS for ex in results[a] if ex.kind == "text"
               for p in ex.pairs if {p.a, p.b} == {"aoki", "disguised"} and p.score < similarity.THRESHOLD]
    assert len(slipped) >= 4, slipped
