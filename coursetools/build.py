"""Generate release/, notebooks/ and solutions/ from source/ (never edit those by hand).

    python -m coursetools.build release     # nbgrader generate_assignment -> release/ + notebooks/
    python -m coursetools.build solutions   # execute every source notebook -> solutions/
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from . import leakage
from .common import ROOT, assignments, make_scratch_course, nbgrader, source_notebook


def build_release(out: Path = ROOT, names: list[str] | None = None) -> None:
    """Run nbgrader generate_assignment in a scratch course and copy the result to out/."""
    names = names or assignments()
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        course = make_scratch_course(Path(tmp))
        for name in names:
            nbgrader(["generate_assignment", name, "--force"], course)
            generated = course / "release" / name
            target = out / "release" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(generated, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            flat = out / "notebooks" / f"{name}.ipynb"
            flat.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(generated / f"{name}.ipynb", flat)


def execute_notebook(path: Path, timeout: int = 300):
    """Execute a notebook in a scratch working directory and return it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="run-") as tmp:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": tmp}}).execute()
    return nb


def build_solutions(out: Path = ROOT, names: list[str] | None = None) -> None:
    (out / "solutions").mkdir(parents=True, exist_ok=True)
    for name in names or assignments():
        start = time.perf_counter()
        nb = execute_notebook(source_notebook(name))
        nbformat.write(nb, out / "solutions" / f"{name}.ipynb")
        print(f"solutions/{name}.ipynb  executed in {time.perf_counter() - start:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["release", "solutions"])
    parser.add_argument("names", nargs="*", help="assignments (default: all in source/)")
    args = parser.parse_args(argv)
    if args.what == "release":
        build_release(names=args.names or None)
        print(f"release/ and notebooks/ generated for {', '.join(args.names or assignments())}")
        return leakage.main()
    build_solutions(names=args.names or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
