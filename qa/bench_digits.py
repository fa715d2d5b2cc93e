"""Benchmark: train the digits MLP of Notebook 75 and report wall time per epoch and accuracy.

    python -m qa.bench_digits [--runs 5] [--epochs 40]

The NumPy engine is not copied here: the code cells of source/75_training_loop that define it
are executed, and the solution of exercise 75.4 (train_digits_classifier) sets the recipe:
MLP [64, 128, 10] with ReLU, Adam (lr 1e-3), batch 32. If PyTorch is importable, the identical
network (same initial weights, same mini-batch order, same optimizer settings) is trained with
torch on the CPU and the time ratio is printed. PyTorch is never a requirement of the course.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time

import nbformat
import numpy as np

from coursetools.common import source_notebook

ASSIGNMENT = "75_training_loop"
SOLUTION = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.MULTILINE)


def load_engine() -> dict:
    """Execute the definitions of Notebook 75 (imports, functions, classes, UPPER_CASE constants),
    not its demos and experiments, and return their namespace. Each cell is parsed and only its
    definitions run, so a cell that defines a class and then demonstrates it contributes the class."""
    import ast

    nb = nbformat.read(source_notebook(ASSIGNMENT), as_version=4)
    namespace: dict = {"__name__": "bench_digits"}
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("grade"):
            continue
        try:
            tree = ast.parse(SOLUTION.sub("", cell.source))
        except SyntaxError:
            continue
        keep = [node for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
                or (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets))
                or (isinstance(node, ast.Try) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in node.body))]
        if keep:
            exec(compile(ast.Module(body=keep, type_ignores=[]), f"<{ASSIGNMENT}>", "exec"), namespace)
    missing = [name for name in ("MLP", "train", "Adam", "SoftmaxCrossEntropy", "load_digits_split", "accuracy")
               if name not in namespace]
    if missing:
        raise RuntimeError(f"Notebook 75 no longer defines {', '.join(missing)} at the top level of a cell")
    return namespace


def numpy_run(ns: dict, epochs: int, seed: int):
    X_tr, y_tr, X_va, y_va, X_te, y_te = ns["load_digits_split"](0)
    model = ns["MLP"]([64, 128, 10], activation="relu", rng=np.random.default_rng(seed))
    init = {k: v.copy() for k, v in model.parameters().items()}
    start = time.perf_counter()
    ns["train"](model, ns["SoftmaxCrossEntropy"](), ns["Adam"](lr=1e-3), X_tr, y_tr, epochs=epochs,
                batch_size=32, rng=np.random.default_rng(seed))
    seconds = time.perf_counter() - start
    return seconds / epochs, ns["accuracy"](model, X_te, y_te), init


def torch_run(torch, ns: dict, init: dict, epochs: int, seed: int):
    X_tr, y_tr, X_va, y_va, X_te, y_te = ns["load_digits_split"](0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(init["0.W"].T)), net[0].bias.copy_(torch.from_numpy(init["0.b"]))
        net[2].weight.copy_(torch.from_numpy(init["2.W"].T)), net[2].bias.copy_(torch.from_numpy(init["2.b"]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, y = torch.from_numpy(X_tr), torch.from_numpy(y_tr)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        for idx in ns["iterate_minibatches"](len(X_tr), 32, rng):
            opt.zero_grad()
            loss_fn(net(X[idx]), y[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        acc = float((net(torch.from_numpy(X_te)).argmax(1).numpy() == y_te).mean())
    return seconds / epochs, acc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)
    ns = load_engine()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rows = []
    for run in range(args.runs):
        per_epoch, acc, init = numpy_run(ns, args.epochs, seed=100 + run)
        row = {"numpy_s": per_epoch, "numpy_acc": acc}
        if torch is not None:
            row["torch_s"], row["torch_acc"] = torch_run(torch, ns, init, args.epochs, seed=100 + run)
        rows.append(row)
        print(f"run {run + 1}: numpy {per_epoch * 1000:.1f} ms/epoch, test acc {acc:.2%}"
              + (f" | torch {row['torch_s'] * 1000:.1f} ms/epoch, test acc {row['torch_acc']:.2%}" if torch else ""))
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"\nmedian of {args.runs} runs, {args.epochs} epochs, batch 32, MLP [64, 128, 10], Adam 1e-3 (float64):")
    print(f"  NumPy engine : {med['numpy_s'] * 1000:.1f} ms/epoch, {med['numpy_s'] * args.epochs:.2f} s total, test accuracy {med['numpy_acc']:.2%}")
    if torch is not None:
        print(f"  PyTorch CPU  : {med['torch_s'] * 1000:.1f} ms/epoch (torch {torch.__version__}, 1 thread), test accuracy {med['torch_acc']:.2%}")
        print(f"  time ratio NumPy / PyTorch: {med['numpy_s'] / med['torch_s']:.2f}")
    else:
        print("  (PyTorch is not importable: the comparison is skipped; it is never required)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
