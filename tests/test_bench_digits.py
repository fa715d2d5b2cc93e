"""make bench-digits loads Notebook 75's engine from its definitions only (imports, functions, classes,
UPPER_CASE constants): a definition that leans on a lower-case helper variable breaks it (CI's bench-smoke
found one). Checked here in a second, so make test catches it before CI does."""
from qa.bench_digits import load_engine


def test_the_digits_engine_loads_from_the_notebooks_definitions_and_reads_the_digits():
    ns = load_engine()
    X_tr, y_tr, X_va, y_va, X_te, y_te = ns["load_digits_split"](0)
    assert X_tr.shape[1] == 64 and len(X_tr) + len(X_va) + len(X_te) == 1797
    assert 0.0 <= X_tr.min() and X_tr.max() <= 1.0 and set(y_te) <= set(range(10))
