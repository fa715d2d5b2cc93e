"""Shared fixtures: the expensive steps (a fresh release build, the sample-class autograde)
run once per session, in the background, and are shared by every test that needs them."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coursetools.common import (  # noqa: E402,F401  (re-exported for the test modules)
    assignments, is_answer_cell, is_test_cell, nbgrader_meta, release_notebook, source_notebook,
)

ASSIGNMENTS = assignments()


def read_nb(path: Path):
    return nbformat.read(path, as_version=4)



# The two slow, independent jobs (a fresh release build and the sample-class autograde) start in
# background threads as soon as collection shows they are needed; they spend their time waiting on
# nbgrader subprocesses and kernels, so on 2 cores they overlap with the validator and nbval tests.
# Tests that need the autograde result are moved to the end of the run.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slow-fixture")
_jobs: dict = {}
_scratch = Path(tempfile.mkdtemp(prefix="course-tests-"))


def _start(name, fn):
    if name not in _jobs:
        _jobs[name] = _pool.submit(fn)
    return _jobs[name]


def _build_release():
    from coursetools.build import build_release

    out = _scratch / "fresh-release"
    build_release(out=out)
    return out


def _run_demo():
    from coursetools.demo import run_demo

    return run_demo(_scratch / "demo", verbose=False)


def _run_corpus():
    from qa.corpus import autograde_packed

    return autograde_packed(_scratch / "corpus")


def _run_hostile():
    from qa.hostile import run

    return run(_scratch / "hostile")


SLOW = {"demo": _run_demo, "corpus_autograde": _run_corpus, "hostile_run": _run_hostile,
        "fresh_build": _build_release}


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: start only the jobs the selected tests need
def pytest_collection_modifyitems(session, config, items):
    uses = lambda item, name: name in getattr(item, "fixturenames", ())
    # import nbgrader fully in this thread first: its packages import each other, and a test importing
    # nbgrader.converters while a background job imports nbgrader.apps fails with a circular ImportError
    import nbgrader.apps  # noqa: F401
    import nbgrader.converters  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401
    import nbgrader.validator  # noqa: F401
    for name, job in SLOW.items():
        if any(uses(i, name) for i in items):
            _start(name, job)
    # stable sort: tests that wait for an autograde run last
    items.sort(key=lambda item: any(uses(item, name) for name in ("demo", "corpus_autograde", "hostile_run")))


def pytest_sessionfinish(session, exitstatus):
    _pool.shutdown(wait=True)
    shutil.rmtree(_scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def fresh_build():
    """release/ and notebooks/ built from source/ right now, in a temporary folder."""
    return _start("fresh_build", _build_release).result()


@pytest.fixture(scope="session")
def demo():
    """The sample class autograded in a scratch course (what `make demo` does)."""
    return _start("demo", _run_demo).result()


@pytest.fixture(scope="session")
def corpus_autograde():
    """Every corpus entry packed into submissions and graded by nbgrader autograde."""
    return _start("corpus_autograde", _run_corpus).result()


@pytest.fixture(scope="session")
def hostile_run():
    """The hostile class graded like a real class (one sandbox per submission, tests in the grader)."""
    return _start("hostile_run", _run_hostile).result()


@pytest.fixture(scope="session")
def expected_scores():
    return json.loads((ROOT / "examples" / "expected_scores.json").read_text(encoding="utf-8"))


@pytest.fixture(params=ASSIGNMENTS)
def assignment(request):
    return request.param


@pytest.fixture
def source_nb(assignment):
    return read_nb(source_notebook(assignment))
