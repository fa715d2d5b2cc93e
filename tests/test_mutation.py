"""Grader mutation testing, fast part (`make mutation` grades all ~930 mutants and prints the report).

Here: the mutation operators do what they claim, the list of equivalent mutants is current, and
a spread sample of mutants of every notebook is killed by the hidden tests."""
import pytest

from conftest import ASSIGNMENTS
from qa import mutation

CELL = '''def f(x, W):
    """doc"""
    y = x + 1
    ### BEGIN SOLUTION
    out = np.zeros_like(x)
    out += (x @ W.T).sum(axis=0)
    if y > 0:
        out[0] = -y
    return out
    ### END SOLUTION
'''


def test_operators_cover_the_usual_slips_and_stay_inside_the_solution():
    found = {(m.before, m.after) for m in mutation.mutants_of_cell("nb", "ex-answer", CELL)}
    afters = {after for _, after in found}
    assert ("out += (x @ W.T).sum(axis=0)", "out = (x @ W.T).sum(axis=0)") in found  # += -> =
    assert ("out += (x @ W.T).sum(axis=0)", "pass") in found                         # forgotten statement
    assert ("W.T", "(W)") in found                                                   # transpose dropped
    assert ("(x @ W.T).sum(axis=0)", "((x @ W.T).sum(axis=1))") in found             # wrong axis
    assert ("(x @ W.T).sum(axis=0)", "((x @ W.T).sum())") in found                   # axis dropped
    assert ("(x @ W.T).sum(axis=0)", "((x @ W.T).mean(axis=0))") in found            # sum <-> mean
    assert ("y > 0", "(y >= 0)") in found and ("-y", "(y)") in found
    assert ("np.zeros_like(x)", "(np.ones_like(x))") in found
    assert not any("x + 1" in before for before, _ in found), "mutated a line outside the solution region"
    assert "(2)" not in afters, "the constant 1 of `y = x + 1` lies outside the solution region"
    for m in mutation.mutants_of_cell("nb", "ex-answer", CELL):
        compile(m.source, "<mutant>", "exec")
        assert m.source.splitlines()[:3] == CELL.splitlines()[:3]


def test_listed_equivalent_mutants_exist_and_say_why():
    equivalents = mutation.load_equivalents()
    generated = {m.key for name in ASSIGNMENTS for m in mutation.mutants(name)}
    stale = sorted(set(equivalents) - generated)
    assert not stale, f"tests/mutation_equivalent.json lists mutants that are no longer generated: {stale}"
    assert all(len(reason.split()) >= 5 for reason in equivalents.values()), "every equivalent mutant needs a reason"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_sample_of_mutants_is_killed(name):
    equivalents = mutation.load_equivalents()
    candidates = [m for m in mutation.mutants(name) if m.key not in equivalents]
    picked = mutation.sample(candidates, 12)
    verdicts = mutation.grade_mutants(name, picked)
    survivors = [m.key for m in picked if not verdicts[m.key].killed]
    assert not survivors, f"mutants that no hidden test notices (strengthen the tests or list them as equivalent): {survivors}"
