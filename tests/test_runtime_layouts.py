"""The sandboxes find the Python runtime wherever it lives (issue 26): a course whose .venv is a
symbolic link to a venv elsewhere, and an interpreter outside the course whose packages come from
another directory (a .pth file). Before the fix, the runner was started through the link's path,
which does not exist inside the sandbox, and every cell of a whole class scored 0."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from coursetools.common import ROOT

PREFLIGHT = ("import sys; sys.path.insert(0, {root!r}); from coursetools.grading import session, sandbox; "
             "session.preflight(); print('GRADED', sandbox.python())")


def _preflight(python: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", PREFLIGHT.format(root=str(ROOT))], capture_output=True, text=True,
                          timeout=180, cwd=cwd, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})


@pytest.mark.skipif(not Path(sys.prefix, "pyvenv.cfg").is_file(), reason="the tests run from a venv")
def test_a_course_whose_venv_is_a_symbolic_link(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / ".venv").symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    python = course / ".venv" / "bin" / Path(sys.executable).name
    proc = _preflight(str(python), course)
    assert "GRADED" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert str(Path(sys.prefix).resolve()) in proc.stdout   # started through the real path, not the link


def test_an_interpreter_outside_the_course_with_packages_elsewhere(tmp_path):
    outside = tmp_path / "elsewhere"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(outside)], check=True, timeout=120)
    site = Path(subprocess.run([str(outside / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "course-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    proc = _preflight(str(outside / "bin" / "python"), tmp_path)
    assert "GRADED" in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_a_runtime_that_cannot_start_is_one_clear_error_not_a_class_of_zeros(tmp_path, monkeypatch):
    """An interpreter the sandbox cannot start: make autograde stops before grading anyone, saying why."""
    from coursetools.grading import autograde, sandbox

    monkeypatch.setattr(sandbox, "python", lambda: str(tmp_path / "no-such-venv" / "bin" / "python"))
    (tmp_path / "submitted" / "someone" / "71_chain_rule").mkdir(parents=True)
    with pytest.raises(sandbox.NoSandbox, match="does not start in a sandbox"):
        autograde.autograde(tmp_path, ["71_chain_rule"])
    assert not (tmp_path / "gradebook.db").exists(), "nothing may be graded with a broken runtime"
