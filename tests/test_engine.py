"""One engine across Notebooks 74-76.

The layer engine is introduced in 74 (layers, losses, Sequential and MLP with its norm/dropout/residual hooks)
and 75 (optimisers, the training loop `train`) and grows from there: 75 plugs its Dropout and 76 its
BatchNorm and Residual into the same MLP, and 76 trains with 75's train.
A later notebook that restates a class or function restates it word for word: the same source lines
as the notebook that introduced it (nbgrader's solution markers removed, so an exercise's answer
restated later counts too). A name a later notebook deliberately redefines differently must be listed
in EXTENSIONS with the reason, so a student who read one notebook knows the others."""
import ast
import re

import nbformat
import pytest

from coursetools.common import source_notebook

ENGINE = ["74_backprop_matrix", "75_training_loop", "76_gradient_pathology"]
EXTENSIONS: dict[tuple[str, str], str] = {}   # (notebook, name) -> why it differs from the first definition
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.MULTILINE)


def definitions(nb) -> dict[str, str]:
    """Top-level classes, functions and constants of the notebook's lecture and answer cells (not its tests)."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("grade"):
            continue
        source = MARKER.sub("", cell.source)
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and node.targets[0].id.isupper():
                name = node.targets[0].id
            else:
                continue
            found[name] = "\n".join(lines[node.lineno - 1:node.end_lineno])
    return found


def drifts(per_notebook: dict[str, dict[str, str]], extensions=EXTENSIONS) -> list[str]:
    """Names restated in a later notebook with a different definition (and no listed reason)."""
    first: dict[str, tuple[str, str]] = {}
    found = []
    for notebook, defs in per_notebook.items():
        for name, source in defs.items():
            if name not in first:
                first[name] = (notebook, source)
            elif source != first[name][1] and (notebook, name) not in extensions:
                found.append(f"{notebook}: {name} differs from its definition in {first[name][0]}")
    return found


def test_the_check_notices_a_drift():
    base = {"74": {"Linear": "class Linear:\n    pass"}}
    assert not drifts({**base, "75": {"Linear": "class Linear:\n    pass"}})
    assert drifts({**base, "75": {"Linear": "class Linear:\n    x = 1"}}) == ["75: Linear differs from its definition in 74"]
    assert not drifts({**base, "75": {"Linear": "class Linear:\n    x = 1"}}, {("75", "Linear"): "on purpose"})


@pytest.fixture(scope="module")
def engine():
    return {name: definitions(nbformat.read(source_notebook(name), as_version=4)) for name in ENGINE}


def test_later_notebooks_restate_the_engine_word_for_word(engine):
    assert not drifts(engine), "\n".join(drifts(engine))


def test_the_engine_is_restated_where_it_is_used(engine):
    """75 and 76 build on 74's layers and MLP (76 also on 75's optimisers and train) by restating them, not by
    redefining them; the layers 75 and 76 add (Dropout, BatchNorm, Residual) are new names, not new MLPs."""
    for name in ("INIT_STD", "Layer", "check_batch", "Linear", "ReLU", "Tanh", "LeakyReLU", "MSELoss",
                 "Sequential", "MLP"):
        assert all(name in engine[nb] for nb in ENGINE), f"{name} is not restated in every engine notebook"
    assert "SoftmaxCrossEntropy" in engine["75_training_loop"]
    for name in ("accuracy", "iterate_minibatches", "Optimizer", "SGD", "Momentum", "Adam", "train"):
        assert name in engine["76_gradient_pathology"], name
    assert "Dropout" in engine["75_training_loop"]
    for name in ("BatchNorm", "Residual"):
        assert name in engine["76_gradient_pathology"], name
    for notebook, extension in EXTENSIONS:
        assert extension in engine[notebook], f"EXTENSIONS lists {notebook}/{extension}, which is not defined there"
