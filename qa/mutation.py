"""Grader mutation testing: do the hidden tests notice small bugs in a correct answer?

    python -m qa.mutation [--sample N] [--jobs 2] [names...]

Every solution region (### BEGIN SOLUTION ... ### END SOLUTION) is mutated one small change at a
time: arithmetic operators swapped, a term or factor dropped, `+=` turned into `=` or `-=`,
comparisons shifted by one, constants changed, axis arguments changed or dropped, transposes
dropped, sum<->mean / max<->min / zeros<->ones swapped, a statement deleted. Each mutant is
graded like nbgrader autograde would grade it (qa/fastgrade.py: the grader's judge, the runner forked at each answer cell) and is *killed* when some
graded cell of the notebook loses its points.

Mutants that cannot be told apart from the solution by any test (equivalent mutants) are listed
in tests/mutation_equivalent.json with a one-line reason; they do not count. The report gives,
per notebook and per exercise, the share of the other mutants that are killed, and lists every
survivor. Exit status 1 when a notebook is below 90 % or a listed equivalent no longer exists.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from coursetools.common import ROOT, assignments
from .fastgrade import Variant, plan, run_variants

EQUIVALENTS = ROOT / "tests" / "mutation_equivalent.json"
TARGET = 0.90

BINOP_SWAPS = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult],
               ast.Pow: [ast.Mult], ast.MatMult: [ast.Mult], ast.FloorDiv: [ast.Div], ast.Mod: [ast.FloorDiv]}
AUG_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
CMP_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
NAME_SWAPS = {"sum": "mean", "mean": "sum", "max": "min", "min": "max", "argmax": "argmin",
              "argmin": "argmax", "zeros_like": "ones_like", "ones_like": "zeros_like", "zeros": "ones",
              "ones": "zeros", "maximum": "minimum", "minimum": "maximum",
              # the graph operations of Notebooks 72 and 73: the wrong node type
              "Add": "Subtract", "Subtract": "Add", "Multiply": "Add", "Sigmoid": "ReLU", "ReLU": "Sigmoid",
              "tanh": "sinh", "exp": "expm1"}
SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@",
          ast.FloorDiv: "//", ast.Mod: "%"}


@dataclass
class Mutant:
    assignment: str
    answer_id: str
    line: int          # line number within the cell (1-based)
    before: str        # the changed source segment
    after: str
    source: str        # the whole mutated cell

    @property
    def key(self) -> str:
        return f"{self.assignment}/{self.answer_id} L{self.line}: {self.before} -> {self.after}"


def _solution_lines(source: str) -> set[int]:
    """1-based numbers of the lines strictly inside BEGIN/END SOLUTION markers (all regions)."""
    inside, region = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if "### END SOLUTION" in line:
            region = False
        if region:
            inside.add(number)
        if "### BEGIN SOLUTION" in line:
            region = True
    return inside


def _assigned_names(tree: ast.AST, inside: set[int]) -> list[str]:
    """Variables bound in the solution regions, in order of first binding."""
    names = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.lineno in inside
                and node.id not in names):
            names.append(node.id)
    return names


def _replacements(node: ast.AST, names: list[str]):
    """Alternative nodes (or statement source strings) for one node."""
    out = []
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names and len(names) > 1:
        # wired to the wrong variable: the next variable bound in the solution
        out.append(ast.Name(names[(names.index(node.id) + 1) % len(names)], ast.Load()))
    if isinstance(node, ast.BinOp):
        for op in BINOP_SWAPS.get(type(node.op), []):
            out.append(ast.BinOp(node.left, op(), node.right))
        if isinstance(node.op, (ast.Add, ast.Sub)):
            out += [node.left, node.right]
        elif isinstance(node.op, (ast.Mult, ast.Div, ast.MatMult)):
            out.append(node.left)
            if isinstance(node.op, ast.Mult):
                out.append(node.right)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        out.append(node.operand)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in CMP_SWAPS:
        out.append(ast.Compare(node.left, [CMP_SWAPS[type(node.ops[0])]()], node.comparators))
    elif isinstance(node, ast.BoolOp):
        out.append(ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values))
    elif isinstance(node, ast.Constant) and not isinstance(node.value, str) and node.value is not None:
        v = node.value
        if isinstance(v, bool):
            out.append(ast.Constant(not v))
        elif isinstance(v, int):
            out.append(ast.Constant(v + 1))
            if v not in (0, 1):
                out.append(ast.Constant(v - 1))
        elif isinstance(v, float):
            out.append(ast.Constant(1.0 if v == 0 else v * 10))
    elif isinstance(node, ast.Attribute) and node.attr == "T":
        out.append(node.value)
    elif isinstance(node, ast.Call):
        for i, kw in enumerate(node.keywords):
            if kw.arg in ("axis", "keepdims"):
                dropped = copy.copy(node)
                dropped.keywords = node.keywords[:i] + node.keywords[i + 1:]
                out.append(dropped)
            if kw.arg == "axis" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int):
                changed = copy.deepcopy(node)
                changed.keywords[i].value = ast.Constant(1 if kw.value.value in (0, -1) else 0)
                out.append(changed)
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in NAME_SWAPS:
            swapped = copy.deepcopy(node)
            if isinstance(func, ast.Attribute):
                swapped.func.attr = NAME_SWAPS[name]
            else:
                swapped.func.id = NAME_SWAPS[name]
            out.append(swapped)
        if len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
            swapped_args = copy.copy(node)  # arguments in the wrong order
            swapped_args.args = [node.args[1], node.args[0]] + node.args[2:]
            out.append(swapped_args)
        if node.args and not isinstance(node.args[0], ast.Starred) and name not in ("range", "len", "enumerate", "zip", "reversed"):
            out.append(node.args[0])  # the operation left out: f(x, ...) -> x
    elif isinstance(node, ast.AugAssign):
        out.append(ast.Assign([node.target], node.value, lineno=0))
        if type(node.op) in AUG_SWAPS:
            out.append(ast.AugAssign(node.target, AUG_SWAPS[type(node.op)](), node.value))
    if isinstance(node, (ast.AugAssign, ast.Expr)) or (
            isinstance(node, ast.Assign) and all(isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets)):
        out.append("pass")  # a forgotten statement
    return out


def _splice(source: str, node: ast.AST, text: str) -> str:
    """Replace node's source segment (ast offsets are UTF-8 bytes) with text."""
    lines = source.encode("utf-8").splitlines(keepends=True)
    start = sum(len(l) for l in lines[:node.lineno - 1]) + node.col_offset
    end = sum(len(l) for l in lines[:node.end_lineno - 1]) + node.end_col_offset
    data = source.encode("utf-8")
    return (data[:start] + text.encode("utf-8") + data[end:]).decode("utf-8")


def mutants_of_cell(assignment: str, answer_id: str, source: str) -> list[Mutant]:
    inside = _solution_lines(source)
    tree = ast.parse(source)
    names = _assigned_names(tree, inside)
    result, seen = [], set()
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or node.lineno not in inside or node.end_lineno not in inside:
            continue
        before = ast.get_source_segment(source, node) or ""
        for replacement in _replacements(node, names):
            if isinstance(replacement, str):
                text = replacement
            else:
                text = ast.unparse(replacement)
                if isinstance(node, ast.expr):
                    text = f"({text})"
            mutated = _splice(source, node, text)
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            if mutated == source or mutated in seen:
                continue
            seen.add(mutated)
            result.append(Mutant(assignment, answer_id, node.lineno, " ".join(before.split()), text, mutated))
    return result


def mutants(assignment: str) -> list[Mutant]:
    result = []
    for cell in plan(assignment):
        if cell.kind == "answer":
            result += mutants_of_cell(assignment, cell.grade_id, cell.source)
    return result


def sample(items: list, n: int) -> list:
    """n items spread evenly over the list (deterministic)."""
    if n >= len(items):
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


def load_equivalents() -> dict[str, str]:
    return json.loads(EQUIVALENTS.read_text(encoding="utf-8")) if EQUIVALENTS.is_file() else {}


def grade_mutants(assignment: str, items: list[Mutant]) -> dict:
    variants = [Variant(m.key, m.answer_id, m.source, "first-failure") for m in items]
    return run_variants(assignment, variants, variant_deadline=120)


def report(results: dict[str, tuple[list[Mutant], dict]], equivalents: dict[str, str]) -> tuple[str, bool]:
    lines, ok = [], True
    lines.append(f"{'notebook / exercise':<40}{'mutants':>8}{'equiv':>7}{'killed':>8}{'score':>8}")
    survivors = []
    for name, (items, verdicts) in sorted(results.items()):
        ex_rows, total = {}, [0, 0, 0]
        for m in items:
            row = ex_rows.setdefault(m.answer_id, [0, 0, 0])
            equivalent = m.key in equivalents
            killed = verdicts[m.key].killed
            for counts in (row, total):
                counts[0] += 1
                counts[1] += equivalent
                counts[2] += killed and not equivalent
            if not killed and not equivalent:
                survivors.append(m)
        score = total[2] / max(1, total[0] - total[1])
        ok &= score >= TARGET
        lines.append(f"{name:<40}{total[0]:>8}{total[1]:>7}{total[2]:>8}{score:>8.1%}"
                     + ("" if score >= TARGET else "   < 90 %"))
        for answer_id, (n, e, k) in ex_rows.items():
            lines.append(f"  {answer_id:<38}{n:>8}{e:>7}{k:>8}{k / max(1, n - e):>8.1%}")
    listed = [(m.key, equivalents[m.key]) for items, _ in results.values() for m in items if m.key in equivalents]
    lines.append("")
    lines.append(f"equivalent mutants ({len(listed)}, from {EQUIVALENTS.relative_to(ROOT)}):")
    lines += [f"  {key}\n      because {why}" for key, why in listed]
    lines.append("")
    lines.append(f"survivors ({len(survivors)}):" if survivors else "survivors: none")
    lines += [f"  {m.key}" for m in survivors]
    keys = {m.key for items, _ in results.values() for m in items}
    graded = {name for name in results}
    stale = [k for k in equivalents if k.split("/")[0] in graded and k not in keys]
    if stale:
        ok = False
        lines.append("")
        lines.append("listed as equivalent but no longer generated (update tests/mutation_equivalent.json):")
        lines += [f"  {k}" for k in stale]
    killed_equivalents = [k for name, (items, verdicts) in results.items() for k in
                          (m.key for m in items) if k in equivalents and verdicts[k].killed]
    if killed_equivalents:
        ok = False
        lines.append("")
        lines.append("listed as equivalent but killed (remove from tests/mutation_equivalent.json):")
        lines += [f"  {k}" for k in killed_equivalents]
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=0, help="grade only N mutants per notebook (0: all)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks graded in parallel")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    names = args.names or assignments()
    equivalents = load_equivalents()

    def one(name):
        items = mutants(name)
        if args.sample:
            items = sample(items, args.sample)
        return name, (items, grade_mutants(name, items))

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(pool.map(one, names))
    text, ok = report(results, equivalents)
    print(text)
    print(f"\n{sum(len(i) for i, _ in results.values())} mutants graded in {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
