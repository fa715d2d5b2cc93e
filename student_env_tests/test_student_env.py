"""The student edition (notebooks/) in a plain environment, as Colab or `pip install` gives it.

`make test-student-env` runs this. A second virtual environment, build/student-env, holds only
requirements-student.txt (NumPy, matplotlib, scikit-learn and ipykernel at the oldest versions the
course supports; no nbgrader, no matplotlib-fontja). Every notebook of notebooks/ is executed there
top to bottom (a kernel of that environment, driven by nbclient from the course's .venv), errors
allowed: only answer cells and graded test cells may fail, since their answers are blank.

The setup cell is also run as Colab would run it: a fake `google.colab` module on the kernel's path,
once with the package index unreachable (the notice, default fonts, no error) and once with the
real index (matplotlib-fontja installed on the spot and registered, no notice).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coursetools.common import assignments, is_answer_cell, is_test_cell  # noqa: E402
from qa.corpus import filled_release, solution_answers  # noqa: E402

ENV = ROOT / "build" / "student-env"
REQUIREMENTS = ROOT / "requirements-student.txt"
FONT_NOTICE = "matplotlib-fontja がないため"


def _python() -> Path:
    return ENV / "bin" / "python"


@pytest.fixture(scope="session")
def student_python() -> Path:
    """build/student-env with requirements-student.txt only (rebuilt when that file changes)."""
    stamp = ENV / ".requirements"
    wanted = REQUIREMENTS.read_text(encoding="utf-8")
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(ENV)], check=True)
        pip = [str(_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(wanted, encoding="utf-8")
    subprocess.run([str(_python()), "-m", "pip", "uninstall", "-q", "-y", "matplotlib-fontja"],
                   capture_output=True)   # left over from the Colab check of an earlier run
    return _python()


def _kernel(tmp: Path, python: Path, extra_env: dict | None = None) -> str:
    """A kernelspec (in tmp, put on JUPYTER_PATH) that starts `python -m ipykernel_launcher`."""
    name = f"student-env-{tmp.name}"   # one name per test: jupyter_client may cache kernelspecs by name
    spec = tmp / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    env = {"MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", **(extra_env or {})}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name, "language": "python", "env": env}), encoding="utf-8")
    os.environ["JUPYTER_PATH"] = str(tmp)
    return name


def _run(nb, kernel: str, workdir: Path):
    NotebookClient(nb, timeout=300, kernel_name=kernel, allow_errors=True, record_timing=False,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def _errors(cell) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue', '')[:200]}" for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_the_environment_is_what_the_readme_says(student_python):
    """Only the runtime packages: no nbgrader, no matplotlib-fontja; the pinned versions."""
    code = ("import importlib.util, numpy, matplotlib, sklearn; "
            "print(numpy.__version__, matplotlib.__version__, sklearn.__version__, "
            "importlib.util.find_spec('nbgrader') is None, importlib.util.find_spec('matplotlib_fontja') is None)")
    out = subprocess.run([str(student_python), "-c", code], capture_output=True, text=True, check=True).stdout.split()
    pins = dict(line.split("==") for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()
                if "==" in line and not line.startswith("#"))
    assert out[:3] == [pins["numpy"], pins["matplotlib"], pins["scikit-learn"]], out
    assert out[3:] == ["True", "True"], "the student environment must have neither nbgrader nor matplotlib-fontja"


def _answered(name: str):
    """The student edition with every answer cell replaced by the solution's."""
    return filled_release(name, solution_answers(name))


@pytest.mark.parametrize("name", assignments())
def test_every_notebook_answered_runs_without_any_error(student_python, tmp_path, name):
    """With the answers filled in, every cell runs: lecture, figures, visible tests, old versions."""
    nb = _run(_answered(name), _kernel(tmp_path, student_python), tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert FONT_NOTICE in _text(code[0]), f"{name}: no notice about the missing Japanese font"
    failed = [(i, c.source.splitlines()[0][:60], _errors(c)) for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and _errors(c)]
    assert not failed, f"{name}: cells fail in a plain environment: {failed}"


@pytest.mark.parametrize("name", assignments())
def test_every_blank_notebook_fails_only_where_an_answer_is_missing(student_python, tmp_path, name):
    """As handed out: answer cells raise NotImplementedError, test cells fail, and a lecture cell may
    only fail with the NotImplementedError of a blank answer it calls ("試してみましょう")."""
    nb = _run(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4),
              _kernel(tmp_path, student_python), tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not _errors(code[0]), f"{name}: the setup cell failed: {_errors(code[0])}"
    stray = [(i, c.source.splitlines()[0][:60], _errors(c)) for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and _errors(c) and not (is_answer_cell(c) or is_test_cell(c))
             and not all(e.startswith("NotImplementedError") for e in _errors(c))]
    assert not stray, f"{name}: lecture cells fail for another reason than a blank answer: {stray}"
    assert any(e.startswith("NotImplementedError") for c in code for e in _errors(c)), \
        f"{name}: no blank answer raised NotImplementedError (is this the student edition?)"


def _setup_only(name: str):
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = [nb.cells[first]]
    nb.cells[0].source += "\nprint('FONT', plt.rcParams['font.family'], 'matplotlib_fontja' in sys.modules)"
    return nb


def _fake_colab(tmp: Path) -> dict:
    """Kernel environment of a Colab look-alike: `google.colab` importable and imported at start-up
    (Colab's kernel imports it before any cell runs), through an IPython startup file."""
    path = tmp / "fake-colab"
    (path / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (path / "google" / "__init__.py").write_text("", encoding="utf-8")
    (path / "google" / "colab" / "__init__.py").write_text("", encoding="utf-8")
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-colab.py").write_text("import google.colab\n", encoding="utf-8")
    return {"PYTHONPATH": str(path), "IPYTHONDIR": str(tmp / "ipython")}


def test_colab_without_network_gets_the_notice_and_default_fonts(student_python, tmp_path):
    # no package source answers (an unreachable index, no local wheels or pip config): as without network
    env = {**_fake_colab(tmp_path), "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "",
           "PIP_CONFIG_FILE": os.devnull,
           "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_NO_CACHE_DIR": "1"}
    nb = _run(_setup_only("73_backprop_scalar"), _kernel(tmp_path, student_python, env), tmp_path)
    cell = nb.cells[0]
    assert not _errors(cell), _errors(cell)
    assert FONT_NOTICE in _text(cell)
    assert _text(cell).split("FONT", 1)[1].split() == ["['sans-serif']", "False"], _text(cell)


def test_colab_with_network_installs_the_font_on_the_spot(student_python, tmp_path):
    env = _fake_colab(tmp_path)
    try:
        nb = _run(_setup_only("73_backprop_scalar"), _kernel(tmp_path, student_python, env), tmp_path)
    finally:
        subprocess.run([str(student_python), "-m", "pip", "uninstall", "-q", "-y", "matplotlib-fontja"],
                       capture_output=True)
    cell = nb.cells[0]
    assert not _errors(cell), _errors(cell)
    assert FONT_NOTICE not in _text(cell), "pip install in the setup cell did not make the font importable"
    assert _text(cell).split("FONT", 1)[1].split() == ["['IPAexGothic']", "True"], _text(cell)


def test_75_without_scikit_learn_fails_only_in_the_digits_cells_with_a_clear_message(student_python, tmp_path):
    """scikit-learn hidden (a stand-in package that raises ModuleNotFoundError): the setup cell says
    what is missing, every cell that does not use the digits runs; the loading cell and 6.4 say that
    scikit-learn is missing, later digits cells miss the data it would have made (NameError)."""
    shadow = tmp_path / "no-sklearn" / "sklearn"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'sklearn'\", name='sklearn')\n",
                                        encoding="utf-8")
    nb = _run(_answered("75_training_loop"),
              _kernel(tmp_path, student_python, {"PYTHONPATH": str(shadow.parent)}), tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "scikit-learn がないため" in _text(code[0]), _text(code[0])
    failed = [(c.source.splitlines()[0][:50], _errors(c)) for c in code if _errors(c)]
    assert failed, "the digits cells cannot run without scikit-learn"
    digits_names = {"X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "digits_result"}
    unclear = [(first, errors) for first, errors in failed
               if not all("scikit-learn" in e or "演習 75.4" in e
                          or e.startswith("NameError") and e.split("'")[1] in digits_names for e in errors)]
    assert not unclear, f"cells fail without saying that scikit-learn or exercise 6.4 is missing: {unclear}"
