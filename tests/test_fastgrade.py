"""qa.fastgrade, the fast driver of the grader's judge used by the corpus and mutation tests (its
agreement with real nbgrader autograde is checked in tests/test_corpus.py)."""
from qa.fastgrade import Variant, exercises, plan, run_variants, submission_variant

A = "71_chain_rule"


def test_verdicts_for_right_wrong_looping_and_dying_answers():
    solution = next(c.source for c in plan(A) if c.grade_id == "ex71_1-answer")
    loop = solution.replace("    return np.cos(x) * np.exp(np.sin(x))", "    while True:\n        pass")
    assert loop != solution
    variants = [
        Variant("right", "ex71_1-answer", solution, "full"),
        Variant("wrong", "ex71_1-answer", solution.replace("np.cos(x) * np.exp", "np.exp"), "full"),
        Variant("loop", "ex71_1-answer", loop, "full"),
        Variant("hang", "ex71_1-answer", solution + "\nimport signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                "while True:\n    pass\n", "full"),
        Variant("dies", "ex71_1-answer", solution + "\nimport os\nos._exit(3)\n", "full"),
        Variant("first", "ex71_1-answer", "raise RuntimeError('x')", "first-failure"),
    ]
    verdicts = run_variants(A, variants, cell_timeout=2)
    assert verdicts["right"].failed == [] and not verdicts["right"].killed
    assert verdicts["right"].passed == [c.grade_id for c in plan(A) if c.kind == "test"]
    assert verdicts["wrong"].failed == ["ex71_1-tests"] and "f2'" in verdicts["wrong"].messages["ex71_1-tests"]
    # the loop runs inside the test's call of df2: the runner's alarm ends it, the test cell fails
    assert verdicts["loop"].failed == ["ex71_1-tests"] and "CellTimeoutError" in verdicts["loop"].messages["ex71_1-tests"]
    # the answer cell ignores the runner's alarm: the judge's deadline ends the variant
    assert verdicts["hang"].timed_out and verdicts["hang"].passed == []
    assert verdicts["dies"].crashed and verdicts["dies"].killed
    assert verdicts["first"].failed == ["ex71_1-tests"] and verdicts["first"].passed == []  # stopped early


def test_a_whole_submission_replaces_every_answer_cell():
    cells = plan(A)
    blank = {c.grade_id: "raise NotImplementedError()" for c in cells if c.kind == "answer"}
    verdict = run_variants(A, [submission_variant("blank", cells, blank)])["blank"]
    assert sorted(verdict.failed) == sorted(t for tests in exercises(cells).values() for t in tests)
