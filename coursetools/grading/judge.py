"""The tests' side of grading: test cells run here, in a sandbox of their own.

    started by coursetools.grading.sandbox; fd 0 is the orchestrator's channel, --runner-fd the
    runner's (coursetools/grading/runner.py, the student's sandbox)

The orchestrator (nbgrader's process, coursetools/grading/session.py) sends the notebook's code
cells one at a time. A student cell is passed on to the runner; a test cell (visible and hidden
parts, restored by nbgrader from the gradebook) is executed here, in a namespace of its own that
holds NumPy, math and the builtins:

- a name the cell reads that it did not define is fetched from the runner as plain data or as a
  RemoteObject (coursetools/grading/proxies.py); every use of a RemoteObject is a request;
- an object of the test handed to student code is a stand-in (coursetools/grading/standins.py):
  an explicit allowlist of methods and attributes, plain data in and out;
- dicts, lists and arrays passed to student functions are copied there and back (copy-restore);
- a test cell that rebinds a name it read from the student's namespace (a reference
  implementation swapped in for a later exercise) rebinds it there too.

What goes back to the orchestrator is, per cell, the verdict and bounded text: the cell's output,
and the error (its name and message) when the cell raised. This process can write nothing of
the course; if student code ever subverted it, the most it could do is lie about this submission.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import io
import math
import os
import re
import secrets
import select
import socket
import sys
import time
import textwrap
import traceback
import types

import numpy as np

from . import wire
from .proxies import ProxyTypes, RemoteArray, RemoteMethod, RemoteObject
from .standins import StandIn, standin_for

TRUSTED_NAMES = {"np": np, "numpy": np, "math": math}
STANDINS_PER_SUBMISSION = 200_000


class SandboxGone(Exception):
    """The runner died, broke the protocol or stopped answering."""


class JudgeTimeout(Exception):
    """A cell or call did not finish in time."""


CellTimeoutError = type("CellTimeoutError", (Exception,), {})


def _student_error(error: dict) -> Exception:
    """An exception raised by student code, re-raised here by name (builtin types only)."""
    error = error if isinstance(error, dict) else {}
    name = str(error.get("ename", "Error"))[:80]
    message = str(error.get("evalue", ""))[:wire.TEXT_LIMIT]
    if name == "CellTimeoutError":
        return CellTimeoutError(message)
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:  # noqa: BLE001
            pass
    return _named_error(name)(message)


_ERROR_TYPES: dict[str, type] = {}


def _named_error(name: str) -> type:
    safe = "".join(ch for ch in name if ch.isalnum() or ch == "_")[:60] or "Error"
    if safe not in _ERROR_TYPES:
        if len(_ERROR_TYPES) > 200:
            return RuntimeError
        _ERROR_TYPES[safe] = type(safe, (Exception,), {})
    return _ERROR_TYPES[safe]


class Judge:
    """Test cells of one submission, talking to that submission's runner."""

    def __init__(self, runner: wire.Channel, cell_timeout: float = 60):
        self.channel = runner
        self.cell_timeout = cell_timeout
        self.cell_deadline = math.inf
        self.namespace: dict = {}
        self.from_student: set = set()
        self.read_from_student: set = set()
        self.proxies: dict[int, RemoteObject] = {}
        self.methods: dict = {}          # student type ref -> names of functions its class defines
        self.types = ProxyTypes()
        self.standins: dict[str, StandIn] = {}     # token -> stand-in handed to student code
        self.tokens: dict[int, str] = {}           # id(target) -> token (the stand-in keeps target alive)
        self.dirty: dict = {}            # RemoteArrays changed here, written back with the next message
        self._pending_restore = None
        self.passed: dict[str, bool] = {}   # verdicts of this submission's earlier test cells
        self.cell_defs: dict = {}           # name -> (source, names it uses) of the test cell's top-level defs
        self.cell_names: set = set()        # names the test cell binds at its top level

    # -- messages --------------------------------------------------------------------------------
    def _recv(self):
        try:
            message = self.channel.recv(deadline=self.cell_deadline + 2)   # the runner's own alarm fires first
        except wire.Timeout:
            raise JudgeTimeout() from None
        except (wire.WireError, OSError) as error:
            raise SandboxGone(f"unreadable reply: {error}") from None
        if message is None:
            raise SandboxGone("the runner stopped")
        if not isinstance(message, dict):
            raise SandboxGone("bad message")
        return message

    def _flush(self) -> list:
        writes = [wire.encode_array(np.asarray(a), origin=a._origin) for a in self.dirty.values()]
        self.dirty = {}
        return writes

    def request(self, op, raw=False, **fields):
        """Send a request; serve the runner's requests to stand-ins until the reply comes."""
        left = self.cell_deadline - time.monotonic()
        if left <= 0:
            raise JudgeTimeout()
        fields.setdefault("timeout", max(0.05, min(left, self.cell_timeout)))
        if self.dirty:
            fields["w"] = self._flush()
        try:
            self.channel.send(dict(fields, op=op))
        except wire.WireError as error:
            raise ValueError(f"受講者のコードに渡す値が大きすぎます（{error}）") from None
        except OSError:
            raise SandboxGone("the runner stopped") from None
        while True:
            message = self._recv()
            kind = message.get("op")
            if kind == "reply":
                if "restore" in message and self._pending_restore is not None:
                    self._pending_restore(message["restore"])
                if "error" in message:
                    raise _student_error(message["error"])
                return message.get("value") if raw else self.decode(message.get("value"))
            if kind in ("s_call", "s_get", "s_set"):
                self._serve_standin(message)
                continue
            raise SandboxGone(f"unexpected message {str(kind)[:40]!r}")

    def _serve_standin(self, message):
        """Student code used a stand-in: one of the names its allowlist declares, plain data in."""
        saved, self._pending_restore = self._pending_restore, None
        try:
            standin = self.standins.get(str(message.get("s")))
            if standin is None:
                raise ValueError("採点側のオブジェクトが見つかりません")
            op = message["op"]
            if op == "s_call":
                args, kwargs = self.decode(message.get("args")), self.decode(message.get("kwargs"))
                if not isinstance(args, tuple) or not isinstance(kwargs, dict) or \
                        not all(isinstance(k, str) for k in kwargs):
                    raise TypeError("引数の形が正しくありません")
                value = standin.call(str(message.get("m")), args, kwargs)
            elif op == "s_get":
                value = standin.get(str(message.get("f")))
            else:
                value = self.decode(message.get("value"))
                if not _plain(value):
                    raise TypeError("採点側のオブジェクトの属性には数値・配列などの値だけを代入できます")
                standin.set(str(message.get("f")), value)
                value = None
            reply = {"op": "reply", "value": self.encode(value)}
        except (SandboxGone, JudgeTimeout):
            raise
        except Exception as error:  # noqa: BLE001 - reported to the student code that asked
            reply = {"op": "reply", "error": wire.error_dict(error)}
        finally:
            self._pending_restore = saved
        if self.dirty:
            reply["w"] = self._flush()
        try:
            self.channel.send(reply)
        except wire.WireError as error:
            self.channel.send({"op": "reply", "error": {"ename": "ValueError", "evalue": str(error)[:500]}})
        except OSError:
            raise SandboxGone("the runner stopped") from None

    # -- values ----------------------------------------------------------------------------------
    def encode(self, value, depth=0, tokens=None):
        if depth > wire.MAX_DEPTH:
            raise ValueError("value nested too deeply")
        if value is None or type(value) in (bool, float, str, bytes):
            return value
        if type(value) is int:
            return value if -(1 << 63) <= value < 1 << 64 else {"$int": str(value)}
        if isinstance(value, RemoteObject):
            return {"$r": object.__getattribute__(value, "_ref")}
        if isinstance(value, RemoteMethod):
            return {"$rm": object.__getattribute__(value.obj, "_ref"), "m": value.name}
        if isinstance(value, np.ndarray) and value.dtype.kind in wire.NUMERIC_KINDS:
            origin = value._origin if isinstance(value, RemoteArray) else None   # a student's array: written back
            return self._token(wire.encode_array(np.asarray(value), origin=origin), value, tokens)
        if isinstance(value, np.generic) and value.dtype.kind in wire.NUMERIC_KINDS:
            return wire.encode_array(value)
        if type(value) is complex:
            return {"$c": [value.real, value.imag]}
        if type(value) is tuple:
            return {"$t": [self.encode(v, depth + 1, tokens) for v in value]}
        if type(value) in (set, frozenset):
            return {"$set": [self.encode(v, depth + 1, tokens) for v in value]}
        if type(value) is list:
            return self._token({"$l": [self.encode(v, depth + 1, tokens) for v in value]}, value, tokens)
        if type(value) is dict:
            out = {"$d": [[self.encode(k, depth + 1, tokens), self.encode(v, depth + 1, tokens)]
                          for k, v in value.items()]}
            return self._token(out, value, tokens)
        if isinstance(value, (float, int)) and not isinstance(value, bool):   # subclasses: plain numbers
            return float(value) if isinstance(value, float) else int(value)
        return self._standin(value)

    def _standin(self, value):
        token = self.tokens.get(id(value))
        if token is not None and self.standins[token].target is value:
            return self.standins[token].spec(token)
        standin = standin_for(value)
        if standin is None:
            raise TypeError(f"採点側の {type(value).__name__} は受講者のコードに渡せません"
                            "（テストの作成者へ: __standin__ で許可リストを宣言してください）")
        if len(self.standins) >= STANDINS_PER_SUBMISSION:
            raise ValueError("採点側のオブジェクトを受講者のコードに渡しすぎました")
        token = secrets.token_hex(8)
        self.standins[token] = standin
        self.tokens[id(value)] = token
        return standin.spec(token)

    @staticmethod
    def _token(out, value, tokens):
        if tokens is not None:
            out["t"] = tokens.setdefault(id(value), (len(tokens), value))[0]
        return out

    def decode(self, value, depth=0):
        if depth > wire.MAX_DEPTH:
            raise SandboxGone("reply nested too deeply")
        if value is None or type(value) in (bool, int, float, str, bytes):
            return value
        if type(value) is list:
            raise SandboxGone("untagged list in a reply")
        if type(value) is not dict:
            raise SandboxGone("bad value in a reply")
        try:
            if "$nd" in value:
                array = wire.decode_array(value)
                if isinstance(array, np.ndarray) and value.get("o") is not None:
                    array = array.view(RemoteArray)
                    array._origin, array._judge = int(value["o"]), self
                return array
            if "$l" in value:
                return [self.decode(v, depth + 1) for v in value["$l"]]
            if "$t" in value:
                return tuple(self.decode(v, depth + 1) for v in value["$t"])
            if "$set" in value:
                return {self.decode(v, depth + 1) for v in value["$set"]}
            if "$c" in value:
                re_, im = value["$c"]
                return complex(float(re_), float(im))
            if "$int" in value:
                return int(str(value["$int"])[:4000])
            if "$r" in value:
                return self._proxy(value)
            if "$s" in value:
                standin = self.standins.get(str(value["$s"]))
                if standin is None:
                    raise KeyError("unknown stand-in")
                return standin.target
        except (KeyError, TypeError, ValueError, wire.WireError) as error:
            raise SandboxGone(f"bad value in a reply: {type(error).__name__}") from None
        raise SandboxGone("unknown value in a reply")

    def _proxy(self, value):
        ref = int(value["$r"])
        if ref not in self.proxies:
            proxy = object.__new__(self.types.get(str(value.get("n", "object"))))
            object.__setattr__(proxy, "_judge", self)
            object.__setattr__(proxy, "_ref", ref)
            object.__setattr__(proxy, "_kind", "dict" if value.get("k") == "dict" else "object")
            object.__setattr__(proxy, "_ty", value.get("ty"))
            object.__setattr__(proxy, "_shadow", set())
            if isinstance(value.get("m"), list):
                self.methods[value.get("ty")] = {str(m) for m in value["m"][:500]}
            self.proxies[ref] = proxy
        if isinstance(value.get("sh"), list):
            self.proxies[ref]._shadow.update(str(n) for n in value["sh"][:500])
        return self.proxies[ref]

    def call(self, proxy, args, kwargs, method=None):
        """Call a student function: arguments copied there and back (copy-restore)."""
        tokens: dict = {}
        enc_args = self.encode(tuple(args), tokens=tokens)
        enc_kwargs = {"$d": [[k, self.encode(v, 1, tokens)] for k, v in kwargs.items()]}
        originals = {token: value for token, value in tokens.values()}
        saved = self._pending_restore
        self._pending_restore = lambda state: self._restore(state, originals)
        try:
            extra = {"method": method} if method else {}
            return self.request("call", ref=object.__getattribute__(proxy, "_ref"), args=enc_args,
                                kwargs=enc_kwargs, **extra)
        finally:
            self._pending_restore = saved

    def _restore(self, state, originals):
        """Apply the final state of the arguments the student received (dicts, lists, arrays)."""
        if not isinstance(state, list):
            return
        decoded = {}
        for item in state:
            if isinstance(item, list) and len(item) == 2 and item[0] in originals:
                decoded[item[0]] = item[1]

        def value_of(v):
            if isinstance(v, dict) and "$in" in v and v["$in"] in originals:
                return originals[v["$in"]]
            return self.decode(v)

        for token, raw in decoded.items():
            target = originals[token]
            if isinstance(target, dict) and isinstance(raw, dict) and "$d" in raw:
                new = {self.decode(k): value_of(v) for k, v in raw["$d"]}
                target.clear()
                target.update(new)
            elif isinstance(target, list) and isinstance(raw, dict) and "$l" in raw:
                target[:] = [value_of(v) for v in raw["$l"]]
            elif isinstance(target, np.ndarray) and isinstance(raw, dict) and "$nd" in raw:
                array = wire.decode_array(raw)
                if isinstance(array, np.ndarray) and array.shape == target.shape and target.flags.writeable:
                    target[...] = array

    # -- cells -----------------------------------------------------------------------------------
    def exec_student(self, source: str, timeout: float | None = None) -> dict:
        timeout = self.cell_timeout if timeout is None else timeout
        self.cell_deadline = time.monotonic() + timeout
        reply = self.request("exec", raw=True, source=source, timeout=timeout)
        if not isinstance(reply, dict):
            raise SandboxGone("bad exec reply")
        error = reply.get("error")
        result = {"stdout": wire.bounded(reply.get("stdout")), "stderr": wire.bounded(reply.get("stderr")),
                  "error": None}
        if isinstance(error, dict):
            result["error"] = {"ename": wire.bounded(error.get("ename"), 80) or "Error",
                               "evalue": wire.bounded(error.get("evalue"), wire.TEXT_LIMIT), "traceback": []}
        return result

    def exec_test(self, source: str, name: str, timeout: float | None = None) -> dict:
        """Run a test cell here; names it reads come from the student as plain data or references."""
        timeout = self.cell_timeout if timeout is None else timeout
        self.cell_deadline = time.monotonic() + timeout
        code = compile(source, name, "exec")
        self.namespace = dict(TRUSTED_NAMES)   # nothing carries over from an earlier test cell
        self.cell_defs, self.cell_names = _top_level_definitions(source)
        self.namespace["_grader_passed"] = self.earlier_passed
        self.from_student, self.read_from_student = set(), set()
        # The test's own names (a leading underscore: _want, _JudgeNode, _grader_train) are never
        # asked of the student: a student who defined one would be told the test's values below.
        wanted = sorted(n for n in _global_names(code) - set(self.namespace) - set(dir(builtins))
                        if not n.startswith("_"))
        result = {"stdout": "", "stderr": "", "error": None}
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                if wanted:
                    found = self.request("resolve", raw=True, names=wanted)
                    if not isinstance(found, dict):
                        raise SandboxGone("bad resolve reply")
                    for key, value in found.items():
                        if key in wanted:
                            self.namespace[key] = self.decode(value)
                            self.from_student.add(key)
                self.namespace["__builtins__"] = builtins
                exec(code, self.namespace, _Locals(self))
        except (SandboxGone, JudgeTimeout):
            raise
        except Exception as error:  # noqa: BLE001 - the test failed
            result["error"] = dict(wire.error_dict(error), traceback=traceback.format_exception(error)[-20:])
        if result["error"] is None:
            hidden = _hidden_bound_names(source)
            for name in _visible_names(source):   # what the visible part defines, later cells may use
                if name in self.namespace and name not in self.read_from_student and name not in hidden:
                    try:
                        self.propagate(name, self.namespace[name])
                    except (TypeError, ValueError):
                        pass
        result["stdout"], result["stderr"] = wire.bounded(out.getvalue()), wire.bounded(err.getvalue())
        return result

    def earlier_passed(self, *grade_ids: str) -> bool:
        """For a hidden test: did the test cells with these grade ids pass in this submission?

        75.4's test keeps the student's own optimisers and train where their tests passed and swaps
        in reference ones only where they failed (one mistake costs points once; a reference run
        from here costs a round trip per call). A plain kernel has no _grader_passed: the test then
        swaps all three.
        """
        return bool(grade_ids) and all(self.passed.get(str(i), False) is True for i in grade_ids)

    def propagate(self, name, value):
        """A test cell rebound a student name: rebind it in the student's namespace too.

        A reference implementation the test defines at the top level of the cell (a function or
        class that uses nothing else of the test but other such definitions) is sent as its source
        and defined in the student's process, where it runs as fast as the student's own code would;
        anything else is bound as a stand-in."""
        chain = self._shippable(value)
        if chain is not None:
            for definition in chain:
                self.request("define", source=definition)
            self.request("setglobal", name=name, value={"$def": value.__name__})
            return
        self.request("setglobal", name=name, value=self.encode(value))

    def _shippable(self, value) -> list[str] | None:
        """Sources to define, in order, for a test-level function or class (None if it is not one)."""
        defs = self.cell_defs
        if not isinstance(value, (type, types.FunctionType)) or getattr(value, "__name__", None) not in defs:
            return None
        if self.namespace.get(value.__name__) is not value:
            return None
        order, seen = [], set()

        def visit(name) -> bool:
            if name in seen:
                return True
            seen.add(name)
            node_source, uses = defs[name]
            for other in uses & self.cell_names:
                if other not in defs or not visit(other):
                    return False         # it needs a value of the test: keep it in the judge
            order.append(node_source)
            return True

        return order if visit(value.__name__) else None

    def run_cell(self, kind: str, source: str, name: str, timeout: float | None = None) -> dict:
        """One cell; a result with "gone" set when the runner must be replaced."""
        try:
            if kind == "test":
                return self.exec_test(source, name, timeout)
            return self.exec_student(source, timeout)
        except JudgeTimeout:
            return {"stdout": "", "stderr": "", "gone": "timeout",
                    "error": {"ename": "CellTimeoutError", "traceback": [],
                              "evalue": "制限時間内に終わらなかったため、採点用の実行環境を停止しました"}}
        except SandboxGone as error:
            return {"stdout": "", "stderr": "", "gone": str(error)[:200],
                    "error": {"ename": "SandboxError", "traceback": [],
                              "evalue": "採点用の実行環境が停止しました（os._exit、クラッシュ、またはメモリ不足）"}}

    # -- variants (coursetools.qa.fastgrade): fork the runner at an answer cell ---------------------
    def fork(self) -> wire.Channel:
        """Ask the runner to fork; returns the channel to the child."""
        self.cell_deadline = time.monotonic() + 60
        self.channel.send({"op": "fork", "timeout": 60})
        if not select.select([self.channel.read_fd], [], [], 60)[0]:
            raise JudgeTimeout()
        sock = socket.socket(fileno=os.dup(self.channel.read_fd))
        try:
            mark, fds, _, _ = socket.recv_fds(sock, 1, 1)   # one byte, outside the frames
        finally:
            sock.close()
        if mark != b"F" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise SandboxGone("the runner did not fork")
        child = wire.Channel(fds[0], budget=self.channel.budget)
        parent, self.channel = self.channel, child
        try:
            hello = self._recv()            # the child's reply to "fork"
        finally:
            self.channel = parent
        value = hello.get("value")
        if not isinstance(value, dict) or value.get("child") is not True:
            raise SandboxGone("the child did not start")
        return child

    def reap(self) -> None:
        self.channel.send({"op": "reap"})
        self.cell_deadline = time.monotonic() + 60
        reply = self._recv()
        if reply.get("op") != "reply":
            raise SandboxGone("the runner did not reap its child")

    def variants(self, cells: list[dict], variants: list[dict]) -> dict:
        """Grade variants of one notebook: the base cells run once; at an answer cell with variants
        the runner forks and each child runs its variant and the cells after it (see fastgrade)."""
        results = {}
        by_answer: dict[str, list[dict]] = {}
        for v in variants:
            by_answer.setdefault(v["answer_id"], []).append(v)
        ends = {}
        current = None
        for cell in cells:
            if cell["kind"] == "answer":
                current = cell["grade_id"]
            elif cell["kind"] == "test" and current:
                ends[current] = cell["grade_id"]
        self.passed = {}
        for i, cell in enumerate(cells):
            if cell["kind"] == "answer":
                for variant in by_answer.get(cell["grade_id"], []):
                    results[variant["key"]] = self._variant(cells, i, variant, ends)
            result = self.run_cell("test" if cell["kind"] == "test" else "code", cell["source"],
                                   f"<{cell['grade_id'] or 'cell'}>", 600)
            if cell["kind"] == "test":
                self.passed[cell["grade_id"]] = result["error"] is None
        return results

    def _variant(self, cells, start, variant, ends) -> dict:
        failed, passed, messages = [], [], {}
        try:
            child = self.fork()
        except (SandboxGone, JudgeTimeout, OSError) as error:
            return {"failed": [], "passed": [], "crashed": f"fork failed: {error}"}
        parent, self.channel = self.channel, child
        outcome = {}
        saved_passed = dict(self.passed)
        timeout = float(variant.get("cell_timeout", self.cell_timeout))
        until = time.monotonic() + float(variant.get("deadline", 600))
        try:
            mode = variant["mode"]
            later = variant.get("later", {})
            steps = [("code", variant["source"], "")]
            for cell in cells[start + 1:]:
                if mode == "exercise" and cell["kind"] == "answer":
                    break
                source = later.get(cell["grade_id"], cell["source"]) if cell["kind"] == "answer" else cell["source"]
                steps.append(("test" if cell["kind"] == "test" else "code", source, cell["grade_id"]))
                if mode == "exercise" and cell["grade_id"] == ends.get(variant["answer_id"]):
                    break
            for kind, source, grade_id in steps:
                left = until - time.monotonic()
                if left <= 0:
                    outcome["timed_out"] = True
                    break
                result = self.run_cell(kind, source, f"<{grade_id or 'variant ' + str(variant['key'])[:40]}>",
                                       min(timeout, left))
                if result.get("gone") == "timeout":
                    if kind == "test":
                        failed.append(grade_id)
                        messages[grade_id] = f"timeout after {timeout:g} s"
                    outcome["timed_out"] = True
                    break
                if result.get("gone"):
                    if kind == "test":
                        failed.append(grade_id)
                    outcome["crashed"] = f"the runner stopped ({result['gone']})"
                    break
                if kind == "test":
                    error = result["error"]
                    self.passed[grade_id] = error is None
                    (passed if error is None else failed).append(grade_id)
                    if error is not None:
                        messages[grade_id] = f"{error['ename']}: {error['evalue']}"[:300]
                        if mode == "first-failure":
                            break
        finally:
            self.channel = parent
            self.passed = saved_passed
            with contextlib.suppress(OSError):
                os.close(child.read_fd)
            self.reap()
            self.proxies.clear()       # the child's objects are gone
        return dict(outcome, failed=failed, passed=passed, messages=messages)


def _plain(value, depth=0) -> bool:
    """Whether a decoded value is plain data only (no student reference, no stand-in target)."""
    if depth > wire.MAX_DEPTH:
        return False
    if value is None or type(value) in (bool, int, float, complex, str, bytes):
        return True
    if isinstance(value, (np.ndarray, np.generic)):
        return True
    if type(value) in (list, tuple, set):
        return all(_plain(v, depth + 1) for v in value)
    return False


class _Locals(dict):
    """Top-level names of a test cell: writes go to the judge's namespace, and rebinding a name
    the cell read from the student's namespace is done there as well."""

    def __init__(self, judge):
        super().__init__()
        self.judge = judge

    def __getitem__(self, name):
        if name in self.judge.from_student:
            self.judge.read_from_student.add(name)
        return self.judge.namespace[name]

    def __setitem__(self, name, value):
        self.judge.namespace[name] = value
        if name in self.judge.read_from_student and _swappable(value):
            self.judge.propagate(name, value)

    def __delitem__(self, name):
        del self.judge.namespace[name]

    def __contains__(self, name):
        return name in self.judge.namespace


def _swappable(value) -> bool:
    """What a test may put in place of a student name while it runs: a function or class (a
    reference implementation) or a student object (the original put back); never plain data,
    which could carry the test's expected values into the student's process."""
    return isinstance(value, (type, types.FunctionType, RemoteObject, RemoteMethod, StandIn))


def _hidden_bound_names(source: str) -> set:
    """Names bound anywhere inside the hidden regions of a test cell."""
    names = set()
    for region in re.findall(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", source, flags=re.S):
        names |= set(re.findall(r"\b([A-Za-z_]\w*)\s*(?:,\s*[A-Za-z_]\w*\s*)*=(?!=)", region))
        try:
            tree = ast.parse(textwrap.dedent(region))
        except SyntaxError:
            continue
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def _visible_names(source: str) -> list:
    """Top-level names bound by the visible part of a test cell (students see that code)."""
    visible = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", source, flags=re.S)
    try:
        tree = ast.parse(visible)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        targets = []
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for n in ast.walk(target):
                if isinstance(n, ast.Name) and n.id not in names:
                    names.append(n.id)
    return names


def _top_level_definitions(source: str) -> tuple[dict, set]:
    """({name: (source, global names it uses)} of the cell's top-level functions and classes,
    every name the cell binds at its top level)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}, set()
    defs, bound = {}, set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - {node.name}
            defs[node.name] = (ast.get_source_segment(source, node, padded=False) or "", used)
            bound.add(node.name)
        for sub in ast.walk(node) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For,
                                                        ast.With, ast.Import, ast.ImportFrom, ast.Try)) else ():
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                bound.add(sub.id)
            elif isinstance(sub, ast.alias):
                bound.add((sub.asname or sub.name).split(".")[0])
    return defs, bound


def _global_names(code) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _global_names(const)
    return names


# ------------------------------------------------------------------------------------------------
# the process

def serve(control: wire.Channel, runner: wire.Channel, cell_timeout: float) -> None:
    """Answer the orchestrator until it says bye or goes away."""
    judge = Judge(runner, cell_timeout)
    judge.cell_deadline = time.monotonic() + 120
    try:
        hello = judge._recv()
        ok = hello.get("op") == "ready"
    except (SandboxGone, JudgeTimeout):
        ok = False
    control.send({"op": "ready" if ok else "failed"})
    if not ok:
        return
    while True:
        message = control.recv()
        if message is None or message.get("op") == "bye":
            with contextlib.suppress(OSError, wire.WireError):
                runner.send({"op": "bye"})
            return
        op = message.get("op")
        if op == "cell":
            passed = message.get("passed")
            judge.passed = {str(k)[:80]: v is True for k, v in passed.items()} if isinstance(passed, dict) else {}
            result = judge.run_cell(str(message.get("kind")), str(message.get("source", "")),
                                    str(message.get("name", "<cell>"))[:80], float(message.get("timeout", cell_timeout)))
            control.send(dict(result, op="done"))
            if result.get("gone"):
                return
        elif op == "variants":
            control.send({"op": "verdicts", "results": judge.variants(message["cells"], message["variants"])})
        else:
            return


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runner-fd", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    control_fd = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1):
        os.dup2(devnull, target)
    control = wire.Channel(control_fd, budget=wire.CONTROL)
    runner = wire.Channel(args.runner_fd, budget=wire.STUDENT)
    serve(control, runner, args.timeout)
    sys.stdout.flush()
    os._exit(0)
