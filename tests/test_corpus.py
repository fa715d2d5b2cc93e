"""The wrong-answer and right-answer corpus (tests/corpus/*.toml, examples/submitted/aoki).

Wrong answers students really write must lose points on their own exercise and nowhere else;
answers written differently from the solution must get every point. Checked twice: each entry
alone with qa.fastgrade (the grader's judge, forking the runner at each answer cell), and all entries packed into a few submissions per notebook and
graded by real `nbgrader autograde` (which must agree cell by cell)."""
import functools

import pytest

from conftest import ASSIGNMENTS
from qa import corpus
from qa.fastgrade import Variant, exercises, plan, run_variants


@functools.lru_cache(maxsize=None)
def isolated(name):
    entries = corpus.load(name)
    return entries, run_variants(name, [Variant(e.key, e.answer_id, e.source, "full") for e in entries])


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_exercise_has_two_wrong_answers_and_a_right_one(name):
    entries = corpus.load(name)
    solutions = corpus.solution_answers(name)
    for answer, solution in solutions.items():
        wrong = [e for e in entries if e.answer_id == answer and e.kind == "wrong"]
        right = [e for e in entries if e.answer_id == answer and e.kind == "right"]
        assert len(wrong) >= 2, f"{name}/{answer}: needs at least two realistic wrong answers in tests/corpus/{name}.toml"
        assert right, f"{name}/{answer}: needs an alternative correct answer"
        for e in wrong + right:
            assert not corpus.same_program(e.source, solution), f"{e.key}: this is the solution itself"
    assert len({e.key for e in entries}) == len(entries), f"{name}: two corpus entries with the same description"


def test_a_replacement_must_match_the_solution_exactly_once():
    with pytest.raises(ValueError, match="occurs 0 times"):
        corpus._apply("x = 1\n", [["y = 2", "y = 3"]], "demo")
    with pytest.raises(ValueError, match="occurs 2 times"):
        corpus._apply("x = 1\nx = 1\n", [["x = 1", "x = 2"]], "demo")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_wrong_answers_lose_points_on_their_own_exercise_only(name):
    entries, verdicts = isolated(name)
    tests_of = exercises(plan(name))
    for e in entries:
        if e.kind != "wrong":
            continue
        v = verdicts[e.key]
        assert not v.timed_out and not v.crashed, f"{e.key}: {v}"
        assert v.failed, f"{e.key}: keeps every point (no test notices this mistake)"
        others = set(v.failed) - set(tests_of[e.answer_id])
        assert not others, f"{e.key}: also costs points on {sorted(others)} (one mistake must cost points once)"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_right_answers_get_every_point(name):
    entries, verdicts = isolated(name)
    for e in entries:
        if e.kind == "right":
            assert not verdicts[e.key].killed, f"{e.key}: a correct answer lost points: {verdicts[e.key].messages}"


def test_packing_grades_every_wrong_answer_once_and_every_exercise_correct_once():
    for name in ASSIGNMENTS:
        entries = corpus.load(name)
        packed = corpus.submissions(name, entries)
        used = [chosen[a].key for chosen in packed for a in chosen if chosen[a].kind == "wrong"]
        assert sorted(used) == sorted(e.key for e in entries if e.kind == "wrong"), name
        for answer in {e.answer_id for e in entries}:
            assert any(chosen[answer].kind == "right" for chosen in packed), f"{name}/{answer} is never graded correct"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_nbgrader_autograde_agrees_with_the_isolated_verdicts(corpus_autograde, name):
    entries, verdicts = isolated(name)
    result = corpus_autograde[name]
    for s, chosen in enumerate(result["packed"], start=1):
        must_fail = corpus.predicted_failures(name, chosen, verdicts)
        # written answers (manually graded markdown cells, exNN_k-answer) score 0 until an instructor grades them
        expected = {cell: (0.0 if cell in must_fail or cell.endswith("-answer") else top)
                    for cell, top in result["max"].items()}
        got = result["scores"][f"corpus{s}"]
        wrong = {a: e.label for a, e in chosen.items() if e.kind == "wrong"}
        assert got == expected, f"{name} corpus{s} (wrong answers: {wrong}): nbgrader gave {got}, expected {expected}"
