"""Paths and small helpers shared by the build, the demo and the tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtual environment's bin/ (nbgrader shells out to alembic)


def assignments(root: Path = ROOT) -> list[str]:
    """Assignment names: every source/<name>/<name>.ipynb, in sort order (70, 71, ...)."""
    source = root / "source"
    return sorted(p.name for p in source.iterdir() if (p / f"{p.name}.ipynb").is_file())


def source_notebook(name: str, root: Path = ROOT) -> Path:
    return root / "source" / name / f"{name}.ipynb"


def release_notebook(name: str, root: Path = ROOT) -> Path:
    return root / "release" / name / f"{name}.ipynb"


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell) -> bool:
    """A locked, graded test cell (autograded tests), as opposed to an answer cell."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade", False) and not meta.get("solution", False) and cell.cell_type == "code")


def is_answer_cell(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution", False))


def venv_env(**extra) -> dict:
    """The current environment with the virtual environment's bin/ first on PATH (nbgrader calls alembic)."""
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra)


def make_scratch_course(dest: Path, root: Path = ROOT) -> Path:
    """Copy what nbgrader needs (config, plugins, source/) into dest so the repo stays clean."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "nbgrader_config.py", dest / "nbgrader_config.py")
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    shutil.copytree(root / "coursetools", dest / "coursetools", ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(root / "source", dest / "source", ignore=ignore, dirs_exist_ok=True)
    return dest


def nbgrader(args: list[str], course: Path, quiet: bool = True) -> subprocess.CompletedProcess:
    """Run `nbgrader ARGS` in a course directory; raise with its log if it fails.

    An ERROR line counts as failure even with exit code 0: nbgrader logs a broken
    nbgrader_config.py as an ERROR and then carries on *without* the whole config.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course, env=venv_env(), text=True, capture_output=True,
    )
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or "| ERROR]" in log:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed (exit {proc.returncode}):\n{log[-6000:]}")
    if not quiet:
        print(log)
    return proc
