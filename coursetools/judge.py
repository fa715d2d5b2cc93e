"""The trusted side of grading: test cells run here, student code never does.

A submission is graded by two processes. The runner (coursetools/runner.py, in the sandbox of
coursetools/sandbox.py) executes the student's cells. This module executes the test cells, visible
and hidden parts alike, in the grader's own process, in a namespace of its own:

- a name the test cell reads that it did not define (a student function, a lecture class) is
  fetched from the runner as plain data (numbers, strings, NumPy arrays of numbers, lists, tuples)
  or as an opaque `RemoteObject`;
- calling a RemoteObject, reading or setting its attributes, indexing it or doing arithmetic with it
  sends a request to the runner and waits (with a deadline) for a plain-data reply;
- a RemoteObject never takes part in a comparison or a truth test (==, <, bool(), hash are local
  or refused), so a verdict is always computed here from plain data: student code cannot patch
  the comparison, the builtins, NumPy, or the test's own variables, and never sees the test's code;
- judge objects passed to student code (a reference function, a spy optimiser) stay here: the
  student receives a reference it can call with plain data; dicts, lists and arrays passed as
  arguments are copied there and copied back after the call (in-place updates are kept, and so is
  the identity of arrays the student updated in place);
- a test cell that rebinds a name it read from the student's namespace (the reference
  implementation swapped in for a later exercise) rebinds it in the student's namespace too.

`grade_cells(cells, ...)` executes a whole notebook this way and returns nbformat outputs per
cell; coursetools.nbgrader_plugins.SandboxedExecute puts them into the notebook nbgrader grades.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import math
import select
import sys
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from . import runner as wire
from . import sandbox as sandboxes

OUTPUT_LIMIT = wire.OUTPUT_LIMIT
TRUSTED_NAMES = {"np": np, "numpy": np, "math": math}


class SandboxGone(Exception):
    """The runner died or stopped answering: the rest of the submission runs in a new one."""


class JudgeTimeout(Exception):
    """A cell or call did not finish in time (raised in the test cell; shown as 時間切れ)."""


CellTimeoutError = type("CellTimeoutError", (Exception,), {})


def _student_error(error: dict) -> Exception:
    """An exception raised by student code, re-raised here by name (builtin types only)."""
    name = str(error.get("ename", "Error"))
    message = str(error.get("evalue", ""))[:2000]
    if name == "CellTimeoutError":
        return CellTimeoutError(message)
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:  # noqa: BLE001
            pass
    safe = "".join(ch for ch in name if ch.isalnum() or ch == "_")[:60] or "Error"
    return type(safe, (Exception,), {})(message)


# ------------------------------------------------------------------------------------------------
# remote objects (student objects seen from here)

_PROXY_TYPES: dict[tuple, type] = {}


def _no_compare(self, other):
    raise TypeError("受講者のオブジェクトは採点側で大小比較できません（数値や配列を返してください）")


class RemoteObject:
    """A student object. Every operation is a request to the runner; results are plain data."""

    __slots__ = ("_judge", "_ref", "_kind", "_ty", "_shadow", "__weakref__")

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if name in self._judge.methods.get(self._ty, ()) and name not in self._shadow:
            return RemoteMethod(self, name)   # resolved by the student's process when called
        return self._judge.request("getattr", ref=self._ref, name=name)

    def __setattr__(self, name, value):
        if name in RemoteObject.__slots__:
            object.__setattr__(self, name, value)
        else:
            self._shadow.add(name)
            self._judge.request("setattr", ref=self._ref, name=name, value=self._judge.encode(value))

    def __call__(self, *args, **kwargs):
        return self._judge.call(self, args, kwargs)

    def __getitem__(self, key):
        return self._judge.request("getitem", ref=self._ref, key=self._judge.encode(key))

    def __setitem__(self, key, value):
        self._judge.request("setitem", ref=self._ref, key=self._judge.encode(key), value=self._judge.encode(value))

    def __delitem__(self, key):
        self._judge.request("delitem", ref=self._ref, key=self._judge.encode(key))

    def __len__(self):
        n = self._judge.request("len", ref=self._ref)
        if type(n) is not int or n < 0:
            raise TypeError("len() が整数を返しませんでした")
        return n

    def __iter__(self):
        items = self._judge.request("iter", ref=self._ref)
        if not isinstance(items, list):
            raise TypeError("反復できませんでした")
        return iter(items)

    def __contains__(self, item):
        found = self._judge.request("contains", ref=self._ref, item=self._judge.encode(item))
        if type(found) is not bool:
            raise TypeError("in の結果が真偽値ではありません")
        return found

    def keys(self):
        if self._kind == "dict":
            return list(self)
        return self.__getattr__("keys")()

    def items(self):
        if self._kind == "dict":
            return self._judge.call(self, (), {}, method="items")
        return self.__getattr__("items")()

    def values(self):
        if self._kind == "dict":
            return self._judge.call(self, (), {}, method="values")
        return self.__getattr__("values")()

    def get(self, key, default=None):
        if self._kind == "dict":
            return self[key] if key in self else default
        return self.__getattr__("get")(key, default)

    def _convert(self, to, kind):
        value = self._judge.request("convert", ref=self._ref, to=to)
        if isinstance(value, np.generic):
            value = value.item()
        if type(value) is not kind:
            raise TypeError(f"{to}() が {kind.__name__} を返しませんでした")
        return value

    def __float__(self):
        return self._convert("float", float)

    def __int__(self):
        return self._convert("int", int)

    def __index__(self):
        return self._convert("index", int)

    def __complex__(self):
        return self._convert("complex", complex)

    def __str__(self):
        return self._convert("str", str)

    def __repr__(self):
        try:
            return self._convert("repr", str)
        except Exception:  # noqa: BLE001
            return f"<受講者の {type(self).__name__}>"

    def __format__(self, spec):
        return format(str(self), spec)

    def __bool__(self):
        raise TypeError("受講者のオブジェクトは採点側で真偽値として使えません")

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __hash__(self):
        return object.__hash__(self)

    __lt__ = __le__ = __gt__ = __ge__ = _no_compare

    def __array__(self, dtype=None, copy=None):
        raise TypeError("受講者のオブジェクトは配列に変換できません（NumPy 配列を返してください）")

    # isinstance(x, StudentClass) / issubclass
    def __instancecheck__(self, obj):
        if not isinstance(obj, RemoteObject):
            return False
        found = self._judge.request("isinstance", ref=self._ref, value=self._judge.encode(obj))
        return found is True

    def __mro_entries__(self, bases):
        return (object,)  # a judge class "derived" from a student class stays a judge class

    @property
    def __class__(self):
        return dict if self._kind == "dict" else type(self)


class RemoteMethod:
    """obj.name of a student object whose class defines name as a function: called in one request."""

    __slots__ = ("obj", "name")

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __call__(self, *args, **kwargs):
        return self.obj._judge.call(self.obj, args, kwargs, method=self.name)

    def __repr__(self):
        return f"<受講者のメソッド {self.name}>"


def _binary(name, reflected=False):
    def method(self, other):
        a, b = (other, self) if reflected else (self, other)
        return self._judge.request("op", name=name, a=self._judge.encode(a), b=self._judge.encode(b))
    return method


def _unary(name):
    def method(self):
        return self._judge.request("op", name=name, a=self._judge.encode(self))
    return method


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul"):
    setattr(RemoteObject, f"__{_op}__", _binary(_op))
    setattr(RemoteObject, f"__r{_op}__", _binary(_op, reflected=True))
for _op in ("neg", "pos", "abs"):
    setattr(RemoteObject, f"__{_op}__", _unary(_op))


def _proxy_type(name: str) -> type:
    """A RemoteObject subclass named like the student's class (type(x).__name__ in tests)."""
    safe = "".join(ch for ch in name if ch.isalnum() or ch == "_")[:60] or "object"
    if safe not in _PROXY_TYPES:
        _PROXY_TYPES[safe] = type(safe, (RemoteObject,), {"__slots__": ()})
    return _PROXY_TYPES[safe]


class RemoteArray(np.ndarray):
    """A copy of a student's array; in-place changes made here are written back to the student's."""

    def __array_finalize__(self, obj):
        self._origin = None
        self._judge = None

    def _push(self):
        if self._origin is not None and self._judge is not None:
            self._judge.dirty[id(self)] = self   # sent with the next request

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._push()

    @property
    def flat(self):
        return _FlatWriter(self)


def _inplace(name):
    base = getattr(np.ndarray, name)

    def method(self, other):
        result = base(self, other)
        self._push()
        return result
    return method


for _name in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__ipow__", "__imatmul__", "__ifloordiv__"):
    setattr(RemoteArray, _name, _inplace(_name))


class _FlatWriter:
    def __init__(self, array):
        self.array = array

    def __getitem__(self, key):
        return np.ndarray.flat.__get__(self.array)[key]

    def __setitem__(self, key, value):
        np.ndarray.flat.__get__(self.array)[key] = value
        self.array._push()

    def __iter__(self):
        return iter(np.ndarray.flat.__get__(self.array))

    def __len__(self):
        return self.array.size


# ------------------------------------------------------------------------------------------------

@dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    error: dict | None = None     # {"ename", "evalue", "traceback"}


@dataclass
class Report:
    outputs: dict = field(default_factory=dict)    # cell index -> CellResult
    events: list = field(default_factory=list)     # what happened to the sandbox (for the instructor)
    seconds: float = 0.0
    passed: dict = field(default_factory=dict)     # grade id of each test cell -> passed


class Judge:
    def __init__(self, slot: int = 0, sandboxed: bool = True, cell_timeout: float = 60,
                 deadline: float = 600, memory: int = sandboxes.MEMORY):
        self.slot, self.sandboxed, self.cell_timeout = slot, sandboxed, cell_timeout
        self.total = deadline
        self.memory = memory
        self.box = None
        self.namespace: dict = {}
        self.from_student: set = set()
        self.callbacks: dict[int, object] = {}
        self.proxies: dict[int, RemoteObject] = {}
        self.cell_deadline = math.inf
        self.started = time.monotonic()
        self.read_from_student: set = set()
        self.methods: dict = {}      # student type id -> names of functions its class defines
        self.dirty: dict = {}        # RemoteArrays changed here, written back with the next request
        self._pending_restore = None
        self.passed: dict[str, bool] = {}   # grade id of each test cell run so far -> passed

    # -- sandbox ---------------------------------------------------------------------------------
    def start(self):
        self.box = sandboxes.start(self.slot, self.sandboxed, memory=self.memory)
        self.proxies.clear()
        self.callbacks.clear()
        self.methods.clear()
        self.dirty = {}
        hello = self._read(time.monotonic() + 60)
        if not hello or hello.get("op") != "ready":
            raise SandboxGone("the runner did not start")

    def stop(self):
        if self.box:
            with contextlib.suppress(Exception):
                wire.write_frame(self.box.proc.stdin.fileno(), {"op": "bye"})
            self.box.stop()
            self.box = None

    def why_gone(self) -> str:
        if self.box and self.box.memory_killed():
            return "メモリの上限を超えたため、採点用の実行環境が停止しました"
        return "採点用の実行環境が停止しました（os._exit、クラッシュ、またはメモリ不足）"

    # -- messages --------------------------------------------------------------------------------
    def _read(self, until: float):
        fd = self.box.proc.stdout.fileno()
        until = min(until, self.started + self.total)
        left = until - time.monotonic()
        if left <= 0:
            raise JudgeTimeout()
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise JudgeTimeout()
        try:
            return wire.read_frame(fd, wire.MAX_FRAME)
        except (ValueError, wire.WireError, UnicodeDecodeError, RecursionError) as error:
            raise SandboxGone(f"unreadable reply: {type(error).__name__}") from None

    def request(self, op, raw=False, **fields):
        """Send a request; serve the runner's calls to judge objects until the reply comes."""
        if self.box is None:
            raise SandboxGone("no runner")
        left = self.cell_deadline - time.monotonic()
        if left <= 0:
            raise JudgeTimeout()
        fields.setdefault("timeout", max(0.05, min(left, self.cell_timeout)))
        if self.dirty:
            fields["w"] = [wire.encode_array(np.asarray(a), origin=a._origin) for a in self.dirty.values()]
            self.dirty = {}
        try:
            wire.write_frame(self.box.proc.stdin.fileno(), dict(fields, op=op))
        except (BrokenPipeError, OSError):
            raise SandboxGone("the runner stopped") from None
        while True:
            message = self._read(self.cell_deadline + 2)   # the runner's own alarm fires first
            if message is None:
                raise SandboxGone("the runner stopped")
            if not isinstance(message, dict):
                raise SandboxGone("bad message")
            kind = message.get("op")
            if kind == "reply":
                if "restore" in message and self._pending_restore is not None:
                    self._pending_restore(message["restore"])
                if "error" in message:
                    raise _student_error(message["error"] if isinstance(message["error"], dict) else {})
                return message.get("value") if raw else self.decode(message.get("value"))
            if kind in ("cb_call", "cb_getattr", "cb_setattr", "cb_getitem"):
                self._serve_callback(message)
                continue
            raise SandboxGone(f"unexpected message {str(kind)[:40]!r}")

    def _serve_callback(self, message):
        fd = self.box.proc.stdin.fileno()
        saved, self._pending_restore = self._pending_restore, None
        try:
            obj = self.callbacks[message["id"]]
            op = message["op"]
            if op == "cb_call":
                args, kwargs = self.decode(message["args"]), self.decode(message["kwargs"])
                if not isinstance(args, tuple) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
                    raise TypeError("bad arguments")
                value = obj(*args, **kwargs)
            elif op == "cb_getattr":
                name = str(message["name"])
                if name.startswith("_"):
                    raise AttributeError(f"採点側のオブジェクトの属性 {name} は読めません")
                value = getattr(obj, name)
            elif op == "cb_setattr":
                name = str(message["name"])
                if name.startswith("_"):
                    raise AttributeError(f"採点側のオブジェクトの属性 {name} は変更できません")
                setattr(obj, name, self.decode(message["value"]))
                value = None
            else:
                value = obj[self.decode(message["key"])]
            reply = {"op": "reply", "value": self.encode(value)}
        except (SandboxGone, JudgeTimeout):
            raise
        except Exception as error:  # noqa: BLE001 - reported to the student code that called
            reply = {"op": "reply", "error": {"ename": type(error).__name__, "evalue": str(error)[:500]}}
        finally:
            self._pending_restore = saved
        wire.write_frame(fd, reply)

    # -- values ----------------------------------------------------------------------------------
    def encode(self, value, depth=0, tokens=None):
        if depth > wire.MAX_DEPTH:
            raise ValueError("value nested too deeply")
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, RemoteObject):
            return {"$r": object.__getattribute__(value, "_ref")}
        if isinstance(value, np.ndarray) and value.dtype.kind in wire.NUMERIC_KINDS:
            origin = value._origin if isinstance(value, RemoteArray) else None   # a student's array: written back
            return self._token(wire.encode_array(np.asarray(value), origin=origin), value, tokens)
        if isinstance(value, np.generic) and value.dtype.kind in wire.NUMERIC_KINDS:
            return wire.encode_array(value)
        if type(value) is complex:
            return {"$c": [value.real, value.imag]}
        if type(value) is bytes:
            import base64
            return {"$b": base64.b64encode(value).decode("ascii")}
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
        if isinstance(value, (float, int)):   # subclasses of float and int, as plain numbers
            return float(value) if isinstance(value, float) else int(value)
        ident = id(value)
        self.callbacks[ident] = value
        return {"$cb": ident}

    @staticmethod
    def _token(out, value, tokens):
        if tokens is not None:
            token = tokens.setdefault(id(value), (len(tokens), value))[0]
            out["t"] = token
        return out

    def decode(self, value, depth=0):
        if depth > wire.MAX_DEPTH:
            raise SandboxGone("reply nested too deeply")
        if value is None or type(value) in (bool, int, float, str):
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
            if "$b" in value:
                import base64
                return base64.b64decode(value["$b"], validate=True)
            if "$r" in value:
                ref = int(value["$r"])
                if ref not in self.proxies:
                    proxy = object.__new__(_proxy_type(str(value.get("n", "object"))))
                    object.__setattr__(proxy, "_judge", self)
                    object.__setattr__(proxy, "_ref", ref)
                    object.__setattr__(proxy, "_kind", "dict" if value.get("k") == "dict" else "object")
                    object.__setattr__(proxy, "_ty", value.get("ty"))
                    object.__setattr__(proxy, "_shadow", set())
                    if isinstance(value.get("m"), list):
                        self.methods[value.get("ty")] = {str(m) for m in value["m"]}
                    self.proxies[ref] = proxy
                if isinstance(value.get("sh"), list):
                    self.proxies[ref]._shadow.update(str(n) for n in value["sh"])
                return self.proxies[ref]
            if "$cb" in value:
                return self.callbacks[int(value["$cb"])]
        except (KeyError, TypeError, ValueError, wire.WireError) as error:
            raise SandboxGone(f"bad value in a reply: {type(error).__name__}") from None
        raise SandboxGone("unknown value in a reply")

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
            if not (isinstance(item, list) and len(item) == 2 and item[0] in originals):
                continue
            decoded[item[0]] = item[1]

        def value_of(v):
            if isinstance(v, dict) and "$in" in v and v["$in"] in originals:
                return originals[v["$in"]]
            return self.decode(v)

        for token, raw in decoded.items():
            target = originals[token]
            if isinstance(target, dict) and isinstance(raw, dict) and "$d" in raw:
                new = {}
                for k, v in raw["$d"]:
                    new[self.decode(k)] = value_of(v)
                target.clear()
                target.update(new)
            elif isinstance(target, list) and isinstance(raw, dict) and "$l" in raw:
                target[:] = [value_of(v) for v in raw["$l"]]
            elif isinstance(target, np.ndarray) and isinstance(raw, dict) and "$nd" in raw:
                array = wire.decode_array(raw)
                if isinstance(array, np.ndarray) and array.shape == target.shape and target.flags.writeable:
                    target[...] = array

    # -- cells -----------------------------------------------------------------------------------
    def exec_student(self, source: str) -> CellResult:
        self.cell_deadline = time.monotonic() + self.cell_timeout
        reply = self.request("exec", raw=True, source=source, timeout=self.cell_timeout)
        if not isinstance(reply, dict):
            raise SandboxGone("bad exec reply")
        error = reply.get("error")
        result = CellResult(_bounded(reply.get("stdout")), _bounded(reply.get("stderr")))
        if isinstance(error, dict):
            result.error = {"ename": _bounded(error.get("ename"), 80) or "Error",
                            "evalue": _bounded(error.get("evalue"), 2000), "traceback": []}
        return result

    def exec_test(self, source: str, name: str) -> CellResult:
        """Run a test cell here; names it reads come from the student as plain data or references."""
        self.cell_deadline = time.monotonic() + self.cell_timeout
        code = compile(source, name, "exec")
        self.namespace = dict(TRUSTED_NAMES)   # nothing carries over from an earlier test cell
        self.namespace["_grader_passed"] = self.earlier_passed
        self.from_student, self.read_from_student = set(), set()
        wanted = sorted(_global_names(code) - set(self.namespace) - set(dir(builtins)))
        result = CellResult()
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
            result.error = {"ename": type(error).__name__, "evalue": str(error)[:2000],
                            "traceback": traceback.format_exception(error)[-20:]}
        if result.error is None:
            for name in _visible_names(source):   # what the visible part defines, later cells may use
                if name in self.namespace and name not in self.read_from_student:
                    try:
                        self.propagate(name, self.namespace[name])
                    except (TypeError, ValueError):
                        pass
        result.stdout, result.stderr = _bounded(out.getvalue()), _bounded(err.getvalue())
        return result

    def earlier_passed(self, *grade_ids: str) -> bool:
        """For a hidden test: did the test cells with these grade ids pass in this submission?

        75's 6.4 test swaps in reference optimisers and train only when the student's own ones
        failed their tests (each call into judge objects costs a round trip). A plain kernel has
        no _grader_passed; the test then always swaps.
        """
        return bool(grade_ids) and all(self.passed.get(str(i), False) for i in grade_ids)

    def propagate(self, name, value):
        """A test cell rebound a student name: rebind it in the student's namespace too."""
        self.request("setglobal", name=name, value=self.encode(value))


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
        if name in self.judge.read_from_student:
            self.judge.propagate(name, value)

    def __delitem__(self, name):
        del self.judge.namespace[name]

    def __contains__(self, name):
        return name in self.judge.namespace


def _visible_names(source: str) -> list:
    """Top-level names bound by the visible part of a test cell (students see that code)."""
    import ast
    import re

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


def _global_names(code) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _global_names(const)
    return names


def _bounded(text, limit=OUTPUT_LIMIT) -> str:
    text = text if isinstance(text, str) else ""
    return text if len(text) <= limit else text[:limit] + f"\n…（{len(text) - limit} 文字を省略しました）\n"


# ------------------------------------------------------------------------------------------------
# a whole notebook

@dataclass
class Cell:
    index: int
    kind: str        # "test" (runs here) or "code" (runs in the sandbox)
    source: str
    name: str = ""
    grade_id: str = ""


MAX_RESTARTS = 3


def grade_cells(cells: list[Cell], slot: int = 0, sandboxed: bool = True, cell_timeout: float = 60,
                deadline: float = 600, memory: int = sandboxes.MEMORY) -> Report:
    """Execute a notebook's code cells: student cells in the sandbox, test cells here.

    A cell that kills the sandbox (os._exit, a crash, the memory limit) or outlives the deadline
    fails alone: the sandbox is started again, the student's earlier cells are replayed (without
    the one that killed it) and grading goes on, at most MAX_RESTARTS times per submission.
    """
    judge = Judge(slot, sandboxed, cell_timeout, deadline, memory)
    report = Report()
    done: list[str] = []          # student cells executed so far, replayed after a restart
    restarts = 0
    try:
        for cell in cells:
            if judge.box is None:
                if restarts > MAX_RESTARTS or time.monotonic() - judge.started > deadline:
                    report.outputs[cell.index] = CellResult(error=_gone_error(
                        "採点の制限時間または再起動の回数を超えたため、このセルは実行されませんでした"))
                    continue
                try:
                    judge.start()
                    for source in done:
                        judge.exec_student(source)
                except (SandboxGone, JudgeTimeout) as error:
                    report.events.append(f"restart failed: {error}")
                    judge.stop()
                    restarts += 1
                    report.outputs[cell.index] = CellResult(error=_gone_error(
                        "採点用の実行環境を再開できなかったため、このセルは実行されませんでした"))
                    continue
            try:
                if cell.kind == "test":
                    result = judge.exec_test(cell.source, cell.name or f"<test cell {cell.index}>")
                else:
                    result = judge.exec_student(cell.source)
                    done.append(cell.source)
            except JudgeTimeout:
                result = CellResult(error={"ename": "CellTimeoutError",
                                           "evalue": "制限時間内に終わらなかったため、採点用の実行環境を停止しました",
                                           "traceback": []})
                report.events.append(f"cell {cell.index}: timed out, sandbox restarted")
                judge.stop()
                restarts += 1
            except SandboxGone as error:
                why = judge.why_gone()
                result = CellResult(error=_gone_error(why))
                report.events.append(f"cell {cell.index}: sandbox gone ({error}; {why})")
                judge.stop()
                restarts += 1
            report.outputs[cell.index] = result
            if cell.kind == "test" and cell.grade_id:   # a cell that timed out or killed the sandbox failed
                judge.passed[cell.grade_id] = result.error is None
    finally:
        judge.stop()
        report.seconds = time.monotonic() - judge.started
        report.passed = {c.grade_id: judge.passed.get(c.grade_id, False)   # cells never run failed
                         for c in cells if c.kind == "test" and c.grade_id}
    return report


def _gone_error(text: str) -> dict:
    return {"ename": "SandboxError", "evalue": text, "traceback": []}


def cells_of(nb) -> list[Cell]:
    """The code cells of an nbformat notebook with their role (test cells run in the judge)."""
    from .common import is_test_cell, nbgrader_meta

    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        kind = "test" if is_test_cell(cell) else "code"
        grade_id = nbgrader_meta(cell).get("grade_id", "")
        out.append(Cell(i, kind, cell.source, f"<{grade_id or f'cell {i}'}>", grade_id))
    return out


def main(argv=None) -> int:
    import argparse

    import nbformat

    parser = argparse.ArgumentParser(description="grade one notebook with the judge and print each test cell's verdict")
    parser.add_argument("notebook")
    parser.add_argument("--unsandboxed", action="store_true")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    cells = cells_of(nb)
    report = grade_cells(cells, sandboxed=not args.unsandboxed, cell_timeout=args.timeout)
    for cell in cells:
        result = report.outputs.get(cell.index)
        if cell.kind == "test":
            verdict = "pass" if result and not result.error else f"FAIL {result.error['ename']}: {result.error['evalue'][:150]}"
            print(f"{cell.name:<28} {verdict}")
        elif result and result.error:
            print(f"  (cell {cell.index}: {result.error['ename']}: {result.error['evalue'][:100]})")
    print(f"{report.seconds:.1f} s; events: {report.events}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
