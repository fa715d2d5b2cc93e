"""Hostile and broken submissions, and what grading must do with each (tests/test_hostile.py).

    python -m qa.hostile [--workdir build/hostile]   # grade them and print the outcomes

Every case is a submission of Notebook 71 (or 74 for the gradient-checker cheat) built from the
release notebook. They are graded together in one scratch course, the way a real class is graded
(coursetools.grading.autograde: a runner and a judge sandbox per submission), with a short cell
timeout so that the deliberate infinite loops cost seconds, not minutes. Each case states its
expected outcome: the score of every graded cell, or "review" (not graded; the instructor is told
why); `review_too` marks graded submissions that must also be reported (their sandbox restarted).
The cheats come from what a hostile student tried against the earlier design, where test cells ran
in the student's own kernel: IPython transformers and hooks, patched builtins and NumPy, reading
the test's variables, reading the course's solutions, writing the gradebook, processes that
outlive grading, HTML and JavaScript in outputs and markdown.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from coursetools.common import ROOT, is_answer_cell, is_test_cell, make_scratch_course, nbgrader, nbgrader_meta, release_notebook
from .fastgrade import plan

A71, A74, A75 = "71_chain_rule", "74_backprop_matrix", "75_training_loop"
CELL_TIMEOUT = 10  # seconds; the slowest graded cell of 71, 74 and 75 needs well under 5 s
SLOW_MARGIN = 15   # seconds over the median before a submission is listed as slow (make autograde: 10)


def solution(assignment: str, answer_id: str) -> str:
    return next(c.source for c in plan(assignment) if c.grade_id == answer_id)


def with_answers(assignment: str, answers: dict[str, str], blank_others: bool = False):
    """The release notebook with answer cells set (default: the solution for the others)."""
    nb = nbformat.read(release_notebook(assignment), as_version=4)
    for cell in nb.cells:
        if is_answer_cell(cell):
            gid = nbgrader_meta(cell)["grade_id"]
            if gid in answers:
                cell.source = answers[gid]
            elif not blank_others and cell.cell_type == "code":   # written (markdown) answers keep their stub
                cell.source = solution(assignment, gid)
    return nb


def _edit_tests(nb, how: str):
    cells = []
    for cell in nb.cells:
        if is_test_cell(cell):
            if how == "edit":
                cell.source = "# テストを消しました\npass"
            elif how == "delete":
                continue
            elif how == "markdown":
                cell = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
            elif how == "duplicate":
                cells.append(nbformat.from_dict(json.loads(json.dumps(cell))))
        cells.append(cell)
    nb.cells = cells
    return nb


ALL_71 = {"ex71_1-tests": 3.0, "ex71_2-tests": 2.0, "ex71_3-tests": 2.0, "ex71_3-vjp-tests": 2.0,
          "ex71_4-answer": 0.0, "ex71_5-answer": 0.0}  # 71.4, 71.5: written answers, graded by hand (0 until then)
NONE_71 = {k: 0.0 for k in ALL_71}
ALL_75 = {"ex75_1-tests": 2.0, "ex75_2-tests": 3.0, "ex75_3-loop-tests": 3.0, "ex75_3-modes-tests": 2.0,
          "ex75_4-tests": 2.0, "ex75_5-forward-tests": 1.0, "ex75_5-backward-tests": 2.0}
ALL_74 = {"ex74_1-tests": 2.0, "ex74_2-tests": 3.0, "ex74_3-forward-tests": 1.0, "ex74_3-backward-tests": 2.0,
          "ex74_4-forward-tests": 2.0, "ex74_4-backward-tests": 2.0}

ANY_EQ = '''
class _Anything(float):
    """何とでも「等しい」ふりをする値"""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __abs__(self): return _Anything(0.0)
    def __sub__(self, other): return _Anything(0.0)
    def __rsub__(self, other): return _Anything(0.0)
    def __hash__(self): return 0
    def __array__(self, dtype=None, copy=None): return np.zeros(())

def df1(x): return _Anything(0.0)
def df2(x): return _Anything(0.0)
def df3(x): return _Anything(0.0)
'''

PATCHES = '''
import math
np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_almost_equal = lambda *a, **k: None
math.isclose = lambda *a, **k: True

def df1(x): return 0.0
def df2(x): return 0.0
def df3(x): return 0.0
'''

# df1..df3 that are right only at the points the visible tests use; the hidden tests would catch
# them, unless the comparison itself is disabled (np.max patched, or np replaced by a fake).
FAKE_DERIVATIVES = '''
def _fake(at, value):
    """見えるテストの点でだけ正しい値を返し、ほかの点では 0 を返す"""
    return lambda x: np.where(np.asarray(x, dtype=float) == at, value, 0.0)

df1, df2, df3 = _fake(0.0, 6.0), _fake(0.0, 1.0), _fake(1 / 3, 0.75)
'''

PATCH_NUMPY_CORE = FAKE_DERIVATIVES + '''
np.max = lambda *a, **k: 0.0  # 隠しテストの「最大誤差」をいつも 0 にする
'''

REBIND_NP = FAKE_DERIVATIVES + '''
import numpy as _numpy

class _FakeNumPy:
    """max だけがいつも 0 を返す、NumPy のふりをするオブジェクト"""
    def __getattr__(self, name):
        return getattr(_numpy, name)

    def max(self, *args, **kwargs):
        return 0.0

np = _FakeNumPy()
'''

# the answer cell (ex61) of each case that passes when tests run in the student's kernel
NUMPY_CHEATS = {"h-cheat-np-max": PATCH_NUMPY_CORE, "h-cheat-np-fake": REBIND_NP}

# cheats that rewrite or hide what later cells do, inside IPython (the runner uses IPython too)
IPYTHON_CHEATS = FAKE_DERIVATIVES + '''
_ip = get_ipython()
_ip.input_transformers_post.append(lambda lines: ["pass\\n"] if lines and "テスト" in lines[0] else lines)
import ast as _ast
class _Blank(_ast.NodeTransformer):
    def visit_Assert(self, node):
        return None
_ip.ast_transformers.append(_Blank())
_ip.set_custom_exc((AssertionError,), lambda *a, **k: None)
_ip.events.register("post_run_cell", lambda result: setattr(result, "error_in_exec", None))
'''

BUILTIN_CHEATS = FAKE_DERIVATIVES + '''
import builtins as _b, numpy as _np, types as _types
_b.abs = lambda x: 0.0
_b.all = lambda x: True
_b.float = lambda *a: 0.0
vars(_np)["max"] = lambda *a, **k: 0.0
vars(_np)["allclose"] = lambda *a, **k: True
_types.ModuleType.__setattr__(_np, "abs", lambda *a, **k: 0.0)
def abs(x):
    return 0.0
'''

# answers that look for the test's own values: the caller's frame, globals, a trace function
SNOOP_CHEATS = '''
import sys as _sys
def _expected_from_callers(x):
    frame = _sys._getframe(1)
    while frame is not None:
        for name in ("_num", "_expected", "_want", "expected"):
            if name in frame.f_locals:
                return frame.f_locals[name]
            if name in frame.f_globals:
                return frame.f_globals[name]
        frame = frame.f_back
    return 0.0
df1 = df2 = df3 = _expected_from_callers
def _tracer(frame, event, arg):
    if event == "return" and frame.f_code.co_name == "<module>":
        for name in list(frame.f_locals):
            if name.startswith("_") and isinstance(frame.f_locals[name], float):
                frame.f_locals[name] = 0.0
    return _tracer
_sys.settrace(_tracer)
import threading as _threading, time as _time
def _keep_patching():
    import numpy as _np
    while True:
        try:
            _np.max = lambda *a, **k: 0.0
        except Exception:
            pass
        _time.sleep(0.001)
_threading.Thread(target=_keep_patching, daemon=True).start()
'''

# reading the instructor's files: the solutions in source/, other submissions, the gradebook
SNOOP_FILES = '''
import os as _os, sys as _sys, time as _time
_found, _stop = [], _time.monotonic() + 4
_wanted = ("gradebook.db", "71_chain_rule.ipynb", "nbgrader_config.py", "judge.py", "hostile.py")
for _top in sorted(set(_os.listdir("/")) - {"proc", "sys", "dev"}):
    for _dir, _subdirs, _files in _os.walk("/" + _top):
        _found += [_os.path.join(_dir, f) for f in _files if f in _wanted]
        if _time.monotonic() > _stop:
            break
_found = [p for p in _found if not p.startswith(_sys.prefix + "/")]   # the read-only runtime is visible by design
print("FILES:", _found or "none found")
_wrote = []
for _path in _found + ["/work/gradebook.db", "../gradebook.db"]:
    try:
        with open(_path, "a") as _f:
            _f.write("x")
        _wrote.append(_path)
    except OSError:
        pass
print("WROTE:", _wrote or "nothing")
print("IN:", [s[:60] for s in globals().get("In", [])] if "In" in globals() else "no In")
'''

# a process that outlives its cell and the grading, and tries to write afterwards
LINGER = '''
import os as _os, subprocess as _subprocess, time as _time
_subprocess.Popen(["sleep", "1000"], start_new_session=True)
if _os.fork() == 0:
    _os.setsid()
    _time.sleep(3)
    for _path in ("/work/gradebook.db", "gradebook.db"):
        try:
            open(_path, "a").write("late")
        except OSError:
            pass
    _time.sleep(1000)
    _os._exit(0)
'''

HTML_OUTPUT = '''
from IPython.display import HTML, Javascript, display
display(HTML('<script>alert("student")</script><img src=x onerror="alert(1)">'))
display(Javascript('alert("student js")'))
'''


# ------------------------------------------------------------------------------------------------
# the channel between the grader and student code (issue 20): objects a test hands over, replies,
# state left behind for the next submission, data the student can reach, slowness

# 75.3's train, wrapped: before training it walks every object the test handed over, reading the
# attributes a spy, an rng or a library object has (and what they lead to), then writes some
WALK = """
_WALKED = []
def _walk(obj, label, depth=0):
    if depth > 2 or isinstance(obj, (int, float, str, bytes, np.ndarray, list, tuple, dict)) or obj is None:
        return
    if depth == 0 and globals().get(type(obj).__name__) is type(obj):   # the notebook's own classes
        return
    for _name in ("bit_generator", "state", "ctypes", "inner", "calls", "targets", "v", "m", "local",
                  "__globals__", "__code__", "__closure__", "__func__", "__self__", "__wrapped__"):
        try:
            _value = getattr(obj, _name)
        except Exception:
            continue
        _WALKED.append(f"{label}.{_name}")
        _walk(_value, f"{label}.{_name}", depth + 1)

_solution_train = train
def train(model, loss_fn, optimizer, X, y, *args, **kwargs):
    for _label, _obj in (("loss_fn", loss_fn), ("optimizer", optimizer), ("rng", kwargs.get("rng"))):
        _walk(_obj, _label)
        for _name in ("calls", "targets", "inner", "bit_generator"):
            try:
                setattr(_obj, _name, None) if _obj is not None else None
            except Exception:
                pass
    return _solution_train(model, loss_fn, optimizer, X, y, *args, **kwargs)
"""
WALK_REPORT = 'print("WALK:", sorted(set(_WALKED)) or "nothing of the grader")\n'

# 75.3's train: calls the rng's ctypes function pointers with a null pointer (in the grader's process,
# where the Generator lives, that is a segmentation fault), then trains honestly
ESCAPE = """
_solution_train = train
_ESCAPE = []
def train(model, loss_fn, optimizer, X, y, *args, **kwargs):
    _rng = kwargs.get("rng")
    if _rng is not None and not isinstance(_rng, np.random.Generator):    # not one of its own
        try:
            _ESCAPE.append(int(_rng.bit_generator.ctypes.next_uint64(0)))
        except Exception as _error:
            _ESCAPE.append(type(_error).__name__)
    return _solution_train(model, loss_fn, optimizer, X, y, *args, **kwargs)
"""
ESCAPE_REPORT = 'print("ESCAPE:", "blocked" if all(isinstance(e, str) for e in _ESCAPE) else _ESCAPE)\n'

# 75.3's train that never shuffles, then forges what the test's spies recorded: the number of
# optimizer calls, and the targets the batch recorder saw, computed from a copy of the rng's state
FORGE = """
def train(model, loss_fn, optimizer, X, y, epochs, batch_size=32, rng=None, X_val=None, y_val=None, log_every=0):
    history = {"loss": []}
    if X_val is not None:
        history["val_loss"], history["val_acc"] = [], []
    copy = None
    try:
        copy = np.random.default_rng()
        copy.bit_generator.state = rng.bit_generator.state
    except Exception:
        copy = None
    for epoch in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch_size):          # never shuffled
            idx = np.arange(start, min(start + batch_size, len(X)))
            model.zero_grad()
            loss = loss_fn.forward(model.forward(X[idx]), y[idx])
            model.backward(loss_fn.backward())
            optimizer.update(model.parameters(), model.gradients())
            total += loss * len(idx)
        history["loss"].append(total / len(X))
        if X_val is not None:
            history["val_loss"].append(loss_fn.forward(model.forward(X_val), y_val))
            history["val_acc"].append(accuracy(model, X_val, y_val))
    if copy is not None:                                     # what an honest train would have shown the spies
        forged = []
        for epoch in range(epochs):
            order = copy.permutation(len(X))
            forged += [np.asarray(y[order[i:i + batch_size]], dtype=float).copy() for i in range(0, len(X), batch_size)]
        try:
            loss_fn.targets = forged
            optimizer.calls = epochs * len(range(0, len(X), batch_size))
        except Exception:
            pass
    return history
"""

# 75.4: a "model" that looks the test images up in a table of the labels (it never learns)
LOOKUP = """
def train_digits_classifier(seed=0):
    X_tr, y_tr, X_va, y_va, X_te, y_te = load_digits_split(seed)
    model = MLP([64, 16, 10], activation="relu", rng=np.random.default_rng(1))
    table = {row.tobytes(): label for row, label in zip(X_te, y_te)}
    untrained = model.forward
    def forward(x):
        x = np.asarray(x, dtype=float)
        out = np.zeros((len(x), 10))
        for i, row in enumerate(x):
            if row.tobytes() not in table:
                return untrained(x)
            out[i, table[row.tobytes()]] = 1.0
        return out
    model.forward = forward
    return {"model": model, "history": {"loss": [2.3]}, "test_accuracy": 1.0}
"""

# replies over the channel's budget, written by student code: a 200 MB array, then raw frames
HUGE_REPLY = """
def df1(x):
    return np.zeros(25_000_000) + x          # 200 MB
"""
RAW_FRAMES = """
import os as _os
for _fd in range(3, 64):
    try:
        if _os.readlink(f"/proc/self/fd/{_fd}").startswith("socket:"):
            _os.write(_fd, (2 ** 31 - 1).to_bytes(4, "big") + b"\\x91" * 5000)
    except OSError:
        pass
"""
MANY_TYPES = """
def df1(x):
    return [type(f"T{i}", (), {})() for i in range(20000)]
"""

# state for whoever is graded next: a key in the kernel's per-user keyring, files in /tmp and /dev/shm,
# a process; a new user namespace; then what the next submission finds
STATE_WRITER = """
import ctypes as _ctypes, os as _os, subprocess as _subprocess
_libc = _ctypes.CDLL(None, use_errno=True)
_key = _libc.syscall(248, b"user", b"neural-engine-note", b"left by the last student", 24, -4)   # add_key, user keyring
print("KEYRING:", "blocked" if _key < 0 else f"key {_key} written")
_userns = _libc.unshare(0x10000000)                                                            # CLONE_NEWUSER
print("USERNS:", "blocked" if _userns != 0 else "created")
for _path in ("/tmp/neural-engine-note", "/dev/shm/neural-engine-note"):
    try:
        open(_path, "w").write("left by the last student")
    except OSError:
        pass
_subprocess.Popen(["sleep", "1000"], start_new_session=True)
"""
STATE_READER = """
import ctypes as _ctypes, os as _os
_libc = _ctypes.CDLL(None, use_errno=True)
_found = []
_key = _libc.syscall(249, b"user", b"neural-engine-note", None, 0)                                 # request_key
if _key >= 0:
    _found.append(f"keyring key {_key}")
for _path in ("/tmp/neural-engine-note", "/dev/shm/neural-engine-note"):
    if _os.path.exists(_path):
        _found.append(_path)
_others = [p for p in _os.listdir("/proc") if p.isdigit() and int(p) != _os.getpid()
           and "sleep" in open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")]
_found += [f"process {p}" for p in _others]
print("STATE:", _found or "none found")
"""

# 71.1 answered by what the test itself holds: the runner (the student's own process) is patched to
# claim every name the test asks for, so that the test's later assignments to those names (its
# expected values) would be pushed into the student's namespace; df1..df3 return what was pushed
LEAK = """
import gc as _gc
_runner = next(o for o in _gc.get_objects() if type(o).__name__ == "Runner" and hasattr(o, "dispatch"))
_asked, _pushed, _dispatch = [], [], _runner.dispatch
def _claim_everything(op, m):
    if op == "resolve":
        found, extra = _dispatch(op, m)
        _asked.extend(m["names"])
        for _n in m["names"]:
            found.setdefault(_n, None)
        return found, extra
    if op == "setglobal":
        _pushed.append(m["name"])
    return _dispatch(op, m)
_runner.dispatch = _claim_everything
def _pushed_value(x):
    for _n in ("_want", "_expected", "_num"):
        if isinstance(globals().get(_n), np.ndarray):
            return globals()[_n]
    return np.zeros_like(np.asarray(x, dtype=float)) + 6.0
df1 = df2 = df3 = _pushed_value
"""
LEAK_REPORT = ('print("LEAKED:", [n for n in _asked if n.startswith("_")] + _pushed or "nothing")\n')

SLOW = "import time\ntime.sleep(9)\n"


def _insert_after(nb, grade_id: str, source: str):
    """A code cell of the student's own, right after the cell with this grade id."""
    at = next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == grade_id)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source))
    return nb


@dataclass
class Case:
    student: str
    what: str
    assignment: str
    build: Callable[[], object]          # -> notebook (or bytes for a broken file)
    expect: dict | str                   # {grade_id: score} or "review"
    filename: str = ""                   # default: <assignment>.ipynb
    expect_output: str | tuple = ""      # text(s) that must appear in the autograded notebook
    notes: list = field(default_factory=list)
    review_too: bool = False             # graded with expect, and reported for review as well
    extra_files: dict = field(default_factory=dict)   # {name: text} placed next to the notebook
    slow: bool = False                   # listed for review as slow (review_too must be set too)


def cases(network_port: int | None = None) -> list[Case]:
    s61, s62 = solution(A71, "ex71_1-answer"), solution(A71, "ex71_2-answer")
    network_probe = ""
    if network_port:
        network_probe = f'''
import socket as _socket, threading as _threading
def _probe(where):
    try:
        _socket.create_connection(("127.0.0.1", {network_port}), timeout=3).close()
        print(f"NETWORK: reachable ({{where}})")
    except OSError as _error:
        print(f"NETWORK: blocked ({{where}})", type(_error).__name__)
_probe("main thread")
_t = _threading.Thread(target=_probe, args=("another thread",))
_t.start()
_t.join()
'''
    s63 = solution(A75, "ex75_3-answer")
    return [
        Case("h-control", "the solution, unchanged (control: grading under limits loses nothing)", A71,
             lambda: with_answers(A71, {}), ALL_71),
        Case("h-loop", "df2 loops forever: its test cell is interrupted at the time limit", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61.replace(
                 "    return np.cos(x) * np.exp(np.sin(x))", "    while True:\n        pass")}),
             {**ALL_71, "ex71_1-tests": 0.0}),
        Case("h-sleep", "a very slow call at the end of an answer cell (after correct definitions)", A71,
             lambda: with_answers(A71, {"ex71_2-answer": s62 + "\nimport time\ntime.sleep(10 ** 6)\n"}), ALL_71),
        Case("h-output", "100 000 printed lines and one 30 MB line (after correct definitions)", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + "\nfor _i in range(100000):\n    print(_i)\n"
                                                             "print('x' * 30_000_000)\n"}), ALL_71),
        Case("h-sysexit", "import sys; sys.exit() in an answer cell", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + "\nimport sys\nsys.exit()\n"}), ALL_71),
        Case("h-kill", "os._exit(0) at the end of an answer cell kills the sandbox: that cell is lost (its "
             "exercise scores 0), the sandbox restarts, the rest is graded, and the instructor is told", A71,
             lambda: with_answers(A71, {"ex71_2-answer": s62 + "\nimport os\nos._exit(0)\n"}),
             {**ALL_71, "ex71_2-tests": 0.0}, review_too=True),
        Case("h-stderr", "correct code that writes warnings to stderr keeps its points", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + "\nimport sys, warnings\n"
                                        "print('注意: 標準エラーへの出力', file=sys.stderr)\n"
                                        "warnings.warn('古い書き方です', DeprecationWarning, stacklevel=1)\n"}),
             ALL_71),
        Case("h-edited-tests", "blank answers, every test cell replaced by `pass`", A71,
             lambda: _edit_tests(with_answers(A71, {}, blank_others=True), "edit"), NONE_71),
        Case("h-deleted-tests", "blank answers, every test cell deleted", A71,
             lambda: _edit_tests(with_answers(A71, {}, blank_others=True), "delete"), NONE_71),
        Case("h-markdown-tests", "blank answers, every test cell converted to markdown", A71,
             lambda: _edit_tests(with_answers(A71, {}, blank_others=True), "markdown"), NONE_71),
        Case("h-duplicated-tests", "blank answers, every test cell copy-pasted (duplicate ids)", A71,
             lambda: _edit_tests(with_answers(A71, {}, blank_others=True), "duplicate"), "review"),
        Case("h-cheat-eq", "df1..df3 return a value whose ==, <, abs() and - always 'agree'", A71,
             lambda: with_answers(A71, {"ex71_1-answer": ANY_EQ}, blank_others=True), NONE_71),
        Case("h-cheat-patch", "np.allclose, np.isclose, np.testing and math.isclose patched to pass", A71,
             lambda: with_answers(A71, {"ex71_1-answer": PATCHES}, blank_others=True), NONE_71),
        Case("h-cheat-np-max", "visible-test-only df1..df3 plus np.max patched to return 0 (the hidden tests' "
             "comparison): the tests use the grader's NumPy", A71,
             lambda: with_answers(A71, {"ex71_1-answer": NUMPY_CHEATS["h-cheat-np-max"]}, blank_others=True), NONE_71),
        Case("h-cheat-np-fake", "visible-test-only df1..df3 plus `np` rebound to a fake whose max returns 0", A71,
             lambda: with_answers(A71, {"ex71_1-answer": NUMPY_CHEATS["h-cheat-np-fake"]}, blank_others=True), NONE_71),
        Case("h-cheat-ipython", "visible-test-only df1..df3 plus IPython input and AST transformers that blank "
             "the test cells, a custom exception handler and a post_run_cell hook that hide failures", A71,
             lambda: with_answers(A71, {"ex71_1-answer": IPYTHON_CHEATS}, blank_others=True), NONE_71),
        Case("h-cheat-builtins", "visible-test-only df1..df3 plus builtins patched (abs, all, float), "
             "`def abs`, NumPy patched through vars(np) and ModuleType.__setattr__", A71,
             lambda: with_answers(A71, {"ex71_1-answer": BUILTIN_CHEATS}, blank_others=True), NONE_71),
        Case("h-cheat-snoop", "df1..df3 read the test's expected values from the caller's frames and globals; a "
             "trace function rewrites the test's variables; a thread keeps patching np.max", A71,
             lambda: with_answers(A71, {"ex71_1-answer": SNOOP_CHEATS}, blank_others=True), NONE_71),
        Case("h-files", "reads and writes every instructor file it can find (solutions in source/, gradebook, "
             "other submissions, the grader's code) and prints In; the right answers otherwise", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + SNOOP_FILES}), ALL_71,
             expect_output="FILES: none found"),
        Case("h-shadow", "blank answers plus numpy.py and sitecustomize.py next to the notebook that would fake "
             "everything if imported", A71,
             lambda: with_answers(A71, {}, blank_others=True), NONE_71,
             extra_files={"numpy.py": "raise SystemExit('shadowed numpy imported')\n",
                          "sitecustomize.py": "import builtins\nbuiltins.abs = lambda x: 0.0\n"}),
        Case("h-linger", "starts a process and a forked daemon that outlive the cell and try to write the "
             "gradebook later; the right answers otherwise", A71,
             lambda: with_answers(A71, {"ex71_2-answer": s62 + LINGER}), ALL_71),
        Case("h-html", "HTML and JavaScript outputs, and a markdown cell with a script, an onerror handler and "
             "javascript: links (inline and by a reference definition)", A71,
             lambda: _with_markdown(with_answers(A71, {"ex71_1-answer": s61 + HTML_OUTPUT}),
                                    '<script>alert("md")</script><img src=x onerror="alert(2)">'
                                    '[click](javascript:alert(3)) [こちら][r]\n\n[r]: javascript:alert(document.cookie)'),
             ALL_71),
        Case("h-cheat-checker", "74: the lecture's checkers replaced (relative_error returns 0.0, numerical_gradient "
             "zeros) next to a wrong Linear.backward (the bias gradient averaged over the batch)", A74,
             lambda: with_answers(A74, {"ex74_2-answer": "relative_error = lambda analytic, numeric: 0.0\n"
                                        "numerical_gradient = lambda f, x, h=1e-5: np.zeros_like(x)\n"
                                        + solution(A74, "ex74_2-answer").replace("dout.sum(axis=0)", "dout.mean(axis=0)")}),
             {**ALL_74, "ex74_2-tests": 0.0}),  # the rest is honest work
        Case("h-renamed", "saved by the browser as '71_chain_rule (1).ipynb'", A71,
             lambda: with_answers(A71, {}), "review", filename="71_chain_rule (1).ipynb"),
        Case("h-truncated", "an upload cut off in the middle of the JSON", A71,
             lambda: nbformat.writes(with_answers(A71, {})).encode()[:5000], "review"),
        Case("h-memory", "a memory bomb after correct definitions: stopped by the sandbox's memory limit", A71,
             # np.zeros takes fresh zero pages from the OS without touching them, so the address-space
             # limit stops the loop within milliseconds; np.ones wrote ~2 GiB first, which on a loaded CI
             # machine took longer than the 10 s cell limit (a CellTimeoutError instead of the MemoryError)
             lambda: with_answers(A71, {"ex71_1-answer": s61 + "\n_hog = []\nwhile True:\n"
                                                             "    _hog.append(np.zeros(10 ** 7))\n"}),
             ALL_71, expect_output="MemoryError"),
        Case("h-network", "student code tries to open a connection to a server of the grading machine", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + network_probe}), ALL_71,
             expect_output="NETWORK: blocked"),
        # -- the channel between the grader and student code
        Case("h-control-75", "75, the solution unchanged (control for the cases below)", A75,
             lambda: with_answers(A75, {}), ALL_75),
        Case("h-walk", "75.3's train walks every object the tests hand it (rng, spy optimiser, recording loss) "
             "for bit_generator, state, ctypes, recorded calls and targets, __globals__, ..., writes some, then "
             "trains correctly", A75,
             lambda: _insert_after(with_answers(A75, {"ex75_3-answer": s63 + WALK}), "ex75_3-modes-tests", WALK_REPORT),
             ALL_75, expect_output="WALK: nothing of the grader"),
        Case("h-escape", "75.3's train calls the rng's ctypes function pointers with a null pointer (a segfault "
             "of the grader where the Generator lives), then trains correctly", A75,
             lambda: _insert_after(with_answers(A75, {"ex75_3-answer": s63 + ESCAPE}), "ex75_3-modes-tests", ESCAPE_REPORT),
             ALL_75, expect_output="ESCAPE: blocked"),
        Case("h-forge-spy", "75.3's train never shuffles and then writes the spies' records (call count, the "
             "targets seen) from a copy of the rng's state", A75,
             lambda: with_answers(A75, {"ex75_3-answer": FORGE}), {**ALL_75, "ex75_3-loop-tests": 0.0, "ex75_3-modes-tests": 0.0}),
        Case("h-lookup", "75.4 returns an untrained MLP whose forward looks the test images up in a table of "
             "their labels (100 % on the test split, nothing learnt)", A75,
             lambda: with_answers(A75, {"ex75_4-answer": LOOKUP}), {**ALL_75, "ex75_4-tests": 0.0}),
        Case("h-huge-reply", "df1 returns a 200 MB array (over the channel's budget)", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + HUGE_REPLY}), {**ALL_71, "ex71_1-tests": 0.0}),
        Case("h-raw-frames", "an answer cell writes raw frames to the channel itself: a 2 GiB length, then "
             "5000 levels of nesting; the sandboxes are replaced, that cell is lost", A71,
             lambda: with_answers(A71, {"ex71_2-answer": s62 + RAW_FRAMES}),
             {**ALL_71, "ex71_2-tests": 0.0}, review_too=True),
        Case("h-many-types", "df1 returns 20 000 objects of 20 000 distinct classes", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + MANY_TYPES}), {**ALL_71, "ex71_1-tests": 0.0}),
        Case("h-state-a", "writes a key into the kernel's per-user keyring, creates a user namespace, leaves files "
             "in /tmp and /dev/shm and a process, for whoever is graded next; right answers", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + STATE_WRITER}), ALL_71,
             expect_output=("KEYRING: blocked", "USERNS: blocked")),
        Case("h-state-b", "looks for what an earlier submission left: the keyring key, the files, the process; "
             "right answers", A71,
             lambda: with_answers(A71, {"ex71_1-answer": s61 + STATE_READER}), ALL_71,
             expect_output="STATE: none found"),
        Case("h-reorder", "75.4's cells moved above 75.1's answer; 75.1-75.3 answered with the reference "
             "implementations 75.4's test swaps in (Momentum = _GraderMomentum, ...)", A75,
             lambda: _reordered_75(with_answers(A75, {"ex75_1-answer": "Momentum = _GraderMomentum\n",
                                                      "ex75_2-answer": "Adam = _GraderAdam\n",
                                                      "ex75_3-answer": "train = _grader_train\n"})), "review"),
        Case("h-leak", "71.1's runner claims every name the test asks for, so that the test's own assignments "
             "(expected values) would be pushed into the student's namespace; df1..df3 return them", A71,
             lambda: _insert_after(with_answers(A71, {"ex71_1-answer": LEAK}), "ex71_1-tests", LEAK_REPORT),
             {**ALL_71, "ex71_1-tests": 0.0}, expect_output="LEAKED: nothing"),
        Case("h-slow", "right answers, and four cells of its own that each sleep 9 s (just under the cell limit)", A71,
             lambda: _slow(with_answers(A71, {})), ALL_71, review_too=True, slow=True),
    ]


def _reordered_75(nb):
    """75.4's answer and test cells moved above 75.1's answer: 75.4's test would swap the reference
    Momentum, Adam and train into the namespace before 75.1-75.3 are answered and tested."""
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    answer, test = ids.index("ex75_4-answer"), ids.index("ex75_4-tests")
    moved = [nb.cells[answer], nb.cells[test]]
    for index in sorted((answer, test), reverse=True):
        del nb.cells[index]
    at = [nbgrader_meta(c).get("grade_id") for c in nb.cells].index("ex75_1-answer")
    nb.cells[at:at] = [nbformat.v4.new_code_cell("train = Momentum = Adam = None\n")] + moved
    return nb


def _slow(nb):
    for grade_id in ("ex71_1-answer", "ex71_1-tests", "ex71_2-answer", "ex71_2-tests"):
        _insert_after(nb, grade_id, SLOW)
    return nb


def _with_markdown(nb, text: str):
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(text))
    return nb


def _listen() -> tuple[socket.socket, int]:
    """A local TCP server the network probe tries to reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve():
        while True:
            try:
                server.accept()[0].close()
            except OSError:  # the server socket was closed: stop
                return

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def _output_text(path: Path) -> str:
    """Everything the graded notebook's cells printed or raised (not their source)."""
    parts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
            parts += [str(v) for v in out.get("data", {}).values()]
    return "\n".join(parts)


def run(workdir: Path) -> dict:
    """Grade every case; returns {"cases", "scores", "reviews", "outputs", "course", "seconds"}."""
    from coursetools.demo import collect_scores
    from coursetools.grading.autograde import autograde

    server, port = _listen()
    try:
        shutil.rmtree(workdir, ignore_errors=True)
        course = make_scratch_course(workdir)
        all_cases = cases(port)
        for case in all_cases:
            folder = course / "submitted" / case.student / case.assignment
            folder.mkdir(parents=True, exist_ok=True)
            content = case.build()
            target = folder / (case.filename or f"{case.assignment}.ipynb")
            for name, text in case.extra_files.items():
                (folder / name).write_text(text, encoding="utf-8")
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the duplicated-cells case is meant to be invalid
                    nbformat.write(content, target)
        for name in (A71, A74, A75):
            nbgrader(["generate_assignment", name, "--force"], course)
        start = time.perf_counter()
        reviews, log = autograde(course, [A71, A74, A75], overrides={"SandboxedExecute": {"timeout": CELL_TIMEOUT}},
                                 jobs=2, slow_margin=SLOW_MARGIN)
        seconds = time.perf_counter() - start
    finally:
        server.close()
    scores = collect_scores(course)
    outputs = {}
    for case in all_cases:
        path = course / "autograded" / case.student / case.assignment / f"{case.assignment}.ipynb"
        outputs[case.student] = _output_text(path) if path.is_file() else ""
    return {"cases": all_cases, "scores": scores, "reviews": {(r.student, r.assignment): r.reason for r in reviews},
            "outputs": outputs, "course": course, "seconds": seconds, "log": log}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "hostile")
    args = parser.parse_args(argv)
    result = run(args.workdir.resolve())
    print(f"graded in {result['seconds']:.0f} s")
    for case in result["cases"]:
        review = result["reviews"].get((case.student, case.assignment))
        got = result["scores"].get(case.student, {}).get(case.assignment)
        points = f"{sum(got.values()):g} points {got}" if got else "not graded"
        outcome = f"REVIEW: {review}" + (f"\n      -> {points}" if got else "") if review else points
        print(f"  {case.student:<20} {case.what}\n      -> {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
