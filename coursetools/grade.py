"""Autograde a real class and say which submissions need a human.

    python -m coursetools.grade [--course DIR] [--limits] [--offline] [assignments...]

Runs `nbgrader autograde` for every assignment that has submissions (or the ones named) and then
reports, per student, every submission that was *not* graded and why, instead of letting it show
up as a silent 0 in grades.csv:

- the expected notebook is missing (e.g. renamed by the browser to "73_backprop_scalar (1).ipynb")
  or is not valid notebook JSON (truncated upload);
- nbgrader could not grade it: the kernel died (os._exit, a crash, the memory limit), a cell could
  not be executed, ... (nbgrader logs these and goes on with the other students);
- no autograded copy exists afterwards, for any other reason.

--limits runs the kernels under resource limits (memory, CPU time, file size, processes; see
coursetools.limited_kernel) and --offline also cuts them off the network where the OS allows it.
Afterwards it lists the red flags of coursetools.redflags (cheat patterns, edited test cells).
Exit status 0 when everything was graded and nothing is flagged, 1 when something needs a human.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .common import ROOT, nbgrader_meta, venv_env

KERNEL_NAME = "neural-engine-limited"


@dataclass
class Review:
    student: str
    assignment: str
    reason: str


def write_kernelspec(where: Path) -> Path:
    """A kernelspec for coursetools.limited_kernel under where/kernels/; returns the JUPYTER_PATH entry."""
    spec = where / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "coursetools.limited_kernel", "-f", "{connection_file}"],
        "display_name": "Python 3 (limited, for grading)",
        "language": "python",
        "env": {"PYTHONPATH": str(ROOT)},
    }, indent=1), encoding="utf-8")
    return where


def check_files(course: Path, assignment: str) -> list[Review]:
    """Submissions whose notebook nbgrader cannot even open."""
    found = []
    for folder in sorted((course / "submitted").glob(f"*/{assignment}")):
        student, expected = folder.parent.name, folder / f"{assignment}.ipynb"
        if not expected.is_file():
            others = sorted(p.name for p in folder.glob("*.ipynb"))
            hint = f"; found {', '.join(others)} (rename it to {expected.name} and grade again)" if others else ""
            found.append(Review(student, assignment, f"no {expected.name} in the submission{hint}"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nbformat warns about (and renumbers) duplicate cell ids
                nb = nbformat.read(expected, as_version=4)
        except Exception as error:  # noqa: BLE001 - any unreadable file is a finding
            found.append(Review(student, assignment, f"{expected.name} is not a readable notebook "
                                                     f"(truncated upload?): {type(error).__name__}"))
            continue
        ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade_id")]
        copies = sorted({i for i in ids if ids.count(i) > 1})
        if copies:
            found.append(Review(student, assignment, f"graded cells copy-pasted (duplicate ids {', '.join(copies)}): "
                                                     "nbgrader cannot grade it; delete the copies and grade again"))
    return found


def _traceback_after(log: str, head: str) -> str:
    """The traceback nbgrader logs right after `head` (its continuation lines are indented)."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if head in line:
            block = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("[") and block and not nxt.rstrip().endswith("Traceback (most recent call last):"):
                    break
                block.append(nxt)
            return "\n".join(block)
    return ""


def _cause(log: str, student: str, assignment: str) -> str:
    """The most telling line of nbgrader's traceback for one failed submission."""
    head = f"There was an error processing assignment: "
    for line in log.splitlines():
        if head in line and line.replace(os.sep, "/").rstrip().endswith(f"/{student}/{assignment}"):
            text = _traceback_after(log, line.strip())
            break
    else:
        return "nbgrader could not grade it (see its log)"
    for pattern, reason in ((r"DeadKernelError|Kernel died", "the kernel died while running the notebook "
                             "(os._exit, a crash or the memory limit)"),
                            (r"CellTimeoutError|timed out", "a cell did not finish in time"),
                            (r"MemoryError", "the kernel ran out of memory")):
        if re.search(pattern, text):
            return reason
    errors = [l.strip() for l in text.splitlines() if re.match(r"\s*\w+(Error|Exception)\b", l)]
    return ("nbgrader could not grade it: " + errors[-1][:200]) if errors else "nbgrader could not grade it (see its log)"


def autograde(course: Path, names: list[str] | None = None, limits: bool = False, offline: bool = False,
              extra_args: list[str] | None = None) -> tuple[list[Review], str]:
    """Autograde; returns (submissions that need review, nbgrader's log)."""
    course = Path(course).resolve()
    names = names or sorted({p.name for p in (course / "submitted").glob("*/*") if p.is_dir()})
    env = venv_env()
    args = list(extra_args or [])
    if limits or offline:
        env["JUPYTER_PATH"] = os.pathsep.join([str(write_kernelspec(course / "build")), env.get("JUPYTER_PATH", "")])
        args.append(f"--Execute.kernel_name={KERNEL_NAME}")
        if offline:
            env["NEURAL_ENGINE_OFFLINE"] = "1"
    reviews, logs = [], []
    for name in names:
        unreadable = check_files(course, name)
        reviews += unreadable
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", name, "--force", *args],
                              cwd=course, env=env, text=True, capture_output=True)
        log = proc.stdout + proc.stderr
        logs.append(log)
        if "while loading config" in log or "Traceback" in log and "There was an error processing" not in log:
            raise RuntimeError(f"nbgrader autograde {name} failed before grading anyone:\n{log[-4000:]}")
        flagged = {(r.student, r.assignment) for r in reviews}
        for student in re.findall(rf"There was an error processing assignment '{re.escape(name)}' for student '([^']+)'", log):
            if (student, name) not in flagged:
                reviews.append(Review(student, name, _cause(log, student, name)))
                flagged.add((student, name))
        for folder in sorted((course / "submitted").glob(f"*/{name}")):
            student = folder.parent.name
            if (student, name) not in flagged and not (course / "autograded" / student / name / f"{name}.ipynb").is_file():
                reviews.append(Review(student, name, "no autograded notebook was produced (see nbgrader's log)"))
    return reviews, "\n".join(logs)


def main(argv: list[str] | None = None) -> int:
    from .limited_kernel import network_isolation_available
    from .redflags import scan

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=ROOT)
    parser.add_argument("--limits", action="store_true", help="kernels under memory/CPU/file/process limits")
    parser.add_argument("--offline", action="store_true", help="kernels without network (implies --limits)")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if not (args.course / "submitted").is_dir():
        print(f"no submitted/ folder in {args.course}: collect the submissions first "
              "(nbgrader collect, or copy them to submitted/<student>/<assignment>/)", file=sys.stderr)
        return 2
    if args.offline and not network_isolation_available():
        print("warning: this machine does not allow network namespaces (needs root or CAP_SYS_ADMIN); "
              "grading with limits but WITH network access", file=sys.stderr)
    reviews, log = autograde(args.course, args.names, limits=args.limits or args.offline, offline=args.offline)
    (args.course / "build").mkdir(exist_ok=True)
    (args.course / "build" / "autograde.log").write_text(log, encoding="utf-8")
    flags = [f for f in scan(args.course / "submitted") if not args.names or f.assignment in args.names]
    if not reviews:
        print("every submission was autograded (nbgrader's log: build/autograde.log)")
    else:
        print(f"{len(reviews)} submission(s) need manual review (they are NOT in the gradebook as graded):")
        for r in reviews:
            print(f"  {r.student:<16} {r.assignment:<26} {r.reason}")
        print("nbgrader's log: build/autograde.log")
    if flags:
        print(f"red flags ({len(flags)}; graded, but look at them before releasing grades; `make redflags` lists them again):")
        for f in flags:
            print(f"  {f.line()}")
    return 1 if reviews or flags else 0


if __name__ == "__main__":
    sys.exit(main())
