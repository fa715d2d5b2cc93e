"""The student side of grading: runs one student's code and answers calls with plain data.

    python runner.py          (started by coursetools.sandbox inside the sandbox, or directly)

This process holds only the student's notebook code. It never sees a test cell: the trusted judge
(coursetools.judge) runs the test cells in its own process and reaches the student's objects
through calls that carry plain data only (None, bool, int, float, complex, str, bytes, NumPy arrays
of numbers, and lists, tuples, sets and dicts of those) plus opaque references. Nothing here is
trusted: the student's code shares this process and may rewrite any of it. The judge therefore
checks every reply itself; this file only has to be correct for honest students.

Wire format (both directions): a 4-byte big-endian length, then UTF-8 JSON. Values are JSON
scalars or tagged objects:
  {"$nd": dtype, "s": shape|null, "b": base64, "o": id?, "t": token?}  NumPy array or scalar
  {"$l": [...], "t": token?}  list       {"$t": [...]} tuple       {"$set": [...]} set
  {"$d": [[k, v], ...], "t": token?}     dict sent by value (judge -> student only)
  {"$c": [re, im]} complex    {"$b": base64} bytes
  {"$r": id, "k": kind, "n": type name, "c": callable}   a student object, by reference
  {"$cb": id, "c": callable}   a judge object (the student may call it and read public attributes)
  {"$in": token}  "the same object you sent me as token" (copy-restore of call arguments)
"""
from __future__ import annotations

import base64
import builtins
import io
import json
import os
import signal
import struct
import sys
import time
import weakref

MAX_FRAME = 256 << 20       # bytes of one message
MAX_DEPTH = 60              # nesting of plain containers
MAX_ITEMS = 1_000_000       # elements of one plain container
OUTPUT_LIMIT = 20_000       # characters of captured output per cell or call
NUMERIC_KINDS = "biufc"


class WireError(Exception):
    """A message that is not valid under the protocol."""


def read_frame(fd: int, max_frame: int = MAX_FRAME) -> dict | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    if size > max_frame:
        raise WireError(f"message of {size} bytes exceeds the limit")
    body = _read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body.decode("utf-8"))


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, message: dict) -> None:
    body = json.dumps(message, ensure_ascii=False, allow_nan=True).encode("utf-8")
    data = struct.pack(">I", len(body)) + body
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def encode_array(array, token=None, origin=None) -> dict:
    import numpy as np

    a = np.asarray(array)
    if a.dtype.kind not in NUMERIC_KINDS:
        raise WireError(f"arrays of dtype {a.dtype} are not plain data")
    out = {"$nd": a.dtype.str, "s": list(a.shape) if isinstance(array, np.ndarray) else None,
           "b": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")}
    if token is not None:
        out["t"] = token
    if origin is not None:
        out["o"] = origin
    return out


def decode_array(value: dict):
    import numpy as np

    dtype = np.dtype(value["$nd"])
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
        raise WireError(f"dtype {dtype} is not plain data")
    raw = base64.b64decode(value["b"], validate=True)
    shape = value.get("s")
    if shape is None:
        if len(raw) != dtype.itemsize:
            raise WireError("scalar of the wrong size")
        return np.frombuffer(raw, dtype=dtype)[0]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise WireError("bad array shape")
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != len(raw):
        raise WireError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


# ------------------------------------------------------------------------------------------------
# student side

class TrustedObject:
    """A judge object handed to student code (a reference function, a spy optimiser, ...).

    Calls and public attribute reads go to the judge with plain-data arguments; the judge's code
    itself never comes here.
    """

    __slots__ = ("_runner", "_id", "__weakref__")

    def __init__(self, runner, ident):
        object.__setattr__(self, "_runner", runner)
        object.__setattr__(self, "_id", ident)

    def __call__(self, *args, **kwargs):
        return self._runner.ask("cb_call", id=self._id, args=self._runner.encode(args),
                                kwargs=self._runner.encode(kwargs))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._runner.ask("cb_getattr", id=self._id, name=name)

    def __setattr__(self, name, value):
        self._runner.ask("cb_setattr", id=self._id, name=name, value=self._runner.encode(value))

    def __getitem__(self, key):
        return self._runner.ask("cb_getitem", id=self._id, key=self._runner.encode(key))

    def __repr__(self):
        return "<採点側のオブジェクト>"


class _Interrupted(BaseException):
    """Raised by the per-cell time limit inside student code."""


class Runner:
    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.objects: dict[int, object] = {}          # id -> student object sent by reference
        self.arrays = weakref.WeakValueDictionary()   # number -> student array sent by value (write-back)
        self.sent = 0
        self.types_sent: dict = {}
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        self.shell = None
        self.inbound: dict[int, object] = {}          # token -> object decoded from the judge (current call)
        self.trusted: dict[int, TrustedObject] = {}   # judge object id -> its one stand-in here

    # -- encoding ------------------------------------------------------------------------------
    def encode(self, value, depth=0, args_of_call=False):
        import numpy as np

        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply")
        if value is None or type(value) in (bool, str, int, float):
            return value
        if isinstance(value, TrustedObject):
            return {"$cb": object.__getattribute__(value, "_id")}
        if type(value) is complex:
            return {"$c": [value.real, value.imag]}
        if type(value) is bytes:
            return {"$b": base64.b64encode(value).decode("ascii")}
        if isinstance(value, np.generic) and value.dtype.kind in NUMERIC_KINDS:
            return encode_array(value)
        if type(value) is np.ndarray and value.dtype.kind in NUMERIC_KINDS:
            self.sent += 1
            self.arrays[self.sent] = value
            return encode_array(value, origin=self.sent)
        if type(value) in (list, tuple, set, frozenset) and len(value) <= MAX_ITEMS:
            items = [self.encode(v, depth + 1) for v in value]
            tag = {list: "$l", tuple: "$t"}.get(type(value), "$set")
            return {tag: items}
        if type(value) in (type({}.keys()), type({}.values()), type({}.items())):
            return {"$l": [self.encode(v, depth + 1) for v in value]}
        ident = id(value)
        self.objects[ident] = value
        kind = "dict" if isinstance(value, dict) else "class" if isinstance(value, type) else "object"
        cls = type(value)
        out = {"$r": ident, "k": kind, "n": str(getattr(cls, "__name__", "object"))[:80], "ty": id(cls)}
        if kind == "object":
            if id(cls) not in self.types_sent:
                import inspect

                self.types_sent[id(cls)] = {name for klass in cls.__mro__[:-1] for name, attr in vars(klass).items()
                                            if inspect.isfunction(attr)}
                self.objects[-id(cls)] = cls
                out["m"] = sorted(self.types_sent[id(cls)])
            own = getattr(value, "__dict__", None)
            if isinstance(own, dict):
                out["sh"] = sorted(self.types_sent[id(cls)] & set(own))   # instance attributes hiding methods
        return out

    def decode(self, value, depth=0):
        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply")
        if not isinstance(value, dict):
            if isinstance(value, list):
                raise WireError("untagged list")
            return value
        if "$nd" in value:
            array = decode_array(value)
            origin = value.get("o")
            if origin is not None and origin in self.arrays:   # one of ours, written by the judge
                target = self.arrays[origin]
                if target.shape == array.shape:
                    target[...] = array
                    array = target
            if "t" in value:
                self.inbound[value["t"]] = array
            return array
        if "$l" in value:
            result = [self.decode(v, depth + 1) for v in value["$l"]]
            if "t" in value:
                self.inbound[value["t"]] = result
            return result
        if "$t" in value:
            return tuple(self.decode(v, depth + 1) for v in value["$t"])
        if "$set" in value:
            return set(self.decode(v, depth + 1) for v in value["$set"])
        if "$d" in value:
            result = {self.decode(k, depth + 1): self.decode(v, depth + 1) for k, v in value["$d"]}
            if "t" in value:
                self.inbound[value["t"]] = result
            return result
        if "$c" in value:
            return complex(*value["$c"])
        if "$b" in value:
            return base64.b64decode(value["$b"])
        if "$r" in value:
            return self.objects[value["$r"]]
        if "$cb" in value:   # one stand-in per judge object, so that identity (is, id(), sets) holds
            ident = value["$cb"]
            if ident not in self.trusted:
                self.trusted[ident] = TrustedObject(self, ident)
            return self.trusted[ident]
        raise WireError("unknown value tag")

    def restore_state(self):
        """The final state of the containers and arrays the judge passed in (copy-restore)."""
        tokens = {id(obj): token for token, obj in self.inbound.items()}
        out = []
        for token, obj in self.inbound.items():
            if isinstance(obj, dict):
                items = [[self.encode(k), {"$in": tokens[id(v)]} if id(v) in tokens else self.encode(v)]
                         for k, v in obj.items()]
                out.append([token, {"$d": items}])
            elif isinstance(obj, list):
                items = [{"$in": tokens[id(v)]} if id(v) in tokens else self.encode(v) for v in obj]
                out.append([token, {"$l": items}])
            else:
                out.append([token, encode_array(obj)])
        return out

    # -- the conversation with the judge -------------------------------------------------------
    def ask(self, op, **fields):
        """A call from student code to the judge (a TrustedObject); serves nested requests meanwhile."""
        write_frame(self.fd_out, dict(fields, op=op))
        while True:
            message = read_frame(self.fd_in)
            if message is None:
                os._exit(3)
            if message.get("op") == "reply":
                if "error" in message:
                    raise _builtin_error(message["error"])
                return self.decode(message["value"])
            self.serve(message)

    def serve(self, message):
        op = message.get("op")
        for write in message.get("w", ()):   # arrays the judge changed in place since its last message
            try:
                self.decode(write)
            except Exception:  # noqa: BLE001
                pass
        saved_inbound, self.inbound = self.inbound, {}
        try:
            value, extra = self.dispatch(op, message)
            reply = {"op": "reply", "value": value, **extra}
        except _Interrupted:
            reply = {"op": "reply", "error": {"ename": "CellTimeoutError", "evalue": "制限時間を超えました"}}
        except BaseException as error:  # noqa: BLE001 - student code may raise anything
            reply = {"op": "reply", "error": {"ename": type(error).__name__[:80], "evalue": _text(error)}}
            if op in ("call", "op", "exec") and self.inbound:
                reply["restore"] = self._safe_restore()
        finally:
            self.inbound = saved_inbound
        write_frame(self.fd_out, reply)

    def _safe_restore(self):
        try:
            return self.restore_state()
        except BaseException:  # noqa: BLE001
            return []

    def dispatch(self, op, m):
        if op == "exec":
            return self.exec_cell(m["source"], m.get("timeout", 60)), {}
        if op == "resolve":
            found = {}
            for name in m["names"]:
                if name in self.namespace:
                    found[name] = self.encode(self.namespace[name])
            return found, {}
        if op == "awrite":
            self.decode(m["value"])
            return None, {}
        if op == "setglobal":
            self.namespace[m["name"]] = self.decode(m["value"])
            return None, {}
        obj = self.objects[m["ref"]] if "ref" in m else None
        with _time_limit(m.get("timeout")):
            if op == "call":
                args, kwargs = self.decode(m["args"]), self.decode(m["kwargs"])
                target = _class_method(obj, m["method"]) if m.get("method") else obj
                result = target(*args, **kwargs)
                encoded = self.encode(result)
                return encoded, ({"restore": self.restore_state()} if self.inbound else {})
            if op == "getattr":
                return self.encode(getattr(obj, m["name"])), {}
            if op == "setattr":
                setattr(obj, m["name"], self.decode(m["value"]))
                return None, {}
            if op == "getitem":
                return self.encode(obj[self.decode(m["key"])]), {}
            if op == "setitem":
                obj[self.decode(m["key"])] = self.decode(m["value"])
                return None, {}
            if op == "delitem":
                del obj[self.decode(m["key"])]
                return None, {}
            if op == "len":
                return len(obj), {}
            if op == "iter":
                items = []
                for item in obj:
                    items.append(item)
                    if len(items) > MAX_ITEMS:
                        raise WireError("too many items")
                return self.encode(items), {}
            if op == "contains":
                return bool(self.decode(m["item"]) in obj), {}
            if op == "isinstance":
                return isinstance(self.decode(m["value"]), obj), {}
            if op == "convert":
                kind = {"float": float, "int": int, "str": str, "repr": repr, "index": int, "complex": complex}[m["to"]]
                result = kind(obj)
                return self.encode(result if not isinstance(result, str) else result[:2000]), {}
            if op == "op":
                import operator

                a = self.decode(m["a"])
                if m["name"] in ("neg", "pos", "abs", "invert"):
                    result = getattr(operator, m["name"])(a)
                else:
                    b = self.decode(m["b"])
                    result = getattr(operator, m["name"])(a, b)
                return self.encode(result), ({"restore": self.restore_state()} if self.inbound else {})
        raise WireError(f"unknown operation {op!r}")

    def exec_cell(self, source: str, timeout: float) -> dict:
        """Run one cell of the student's notebook; returns its bounded output and error, if any."""
        out, err = _Capture(), _Capture()
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        error = None
        try:
            with _time_limit(timeout):
                if self.shell is not None:
                    result = self.shell.run_cell(source, store_history=False, silent=False)
                    if result.error_before_exec is not None:
                        raise result.error_before_exec
                    if result.error_in_exec is not None:
                        raise result.error_in_exec
                else:
                    exec(compile(source, "<cell>", "exec"), self.namespace)
        except _Interrupted:
            error = {"ename": "CellTimeoutError", "evalue": f"セルが {timeout:g} 秒以内に終わりませんでした"}
        except SystemExit as exc:
            error = {"ename": "SystemExit", "evalue": _text(exc)}
        except BaseException as exc:  # noqa: BLE001
            error = {"ename": type(exc).__name__[:80], "evalue": _text(exc)}
        finally:
            sys.stdout, sys.stderr = old
            try:
                import matplotlib.pyplot as plt

                plt.close("all")
            except Exception:  # noqa: BLE001
                pass
        return {"stdout": out.text(), "stderr": err.text(), "error": error}


def _class_method(obj, name):
    """obj.name as the class defines it (what the judge read before any instance attribute hid it)."""
    for klass in type(obj).__mro__:
        if name in vars(klass):
            return vars(klass)[name].__get__(obj, type(obj))
    return getattr(obj, name)


class _Capture(io.TextIOBase):
    """A bounded stand-in for sys.stdout / sys.stderr."""

    def __init__(self):
        self.parts, self.size, self.dropped = [], 0, 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = OUTPUT_LIMIT - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def text(self):
        body = "".join(self.parts)
        if self.dropped:
            body += f"\n…（出力が長すぎるため {self.dropped} 文字を省略しました）\n"
        return body


class _time_limit:
    """SIGALRM-based limit on student code (the judge also keeps a hard deadline of its own).
    Nested limits (a call made while a call is running) restore the outer one on exit."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.outer = 0.0

    def __enter__(self):
        if self.seconds:
            signal.signal(signal.SIGALRM, _on_alarm)
            self.outer, _ = signal.setitimer(signal.ITIMER_REAL, float(self.seconds))
            if self.outer and self.outer < float(self.seconds):
                signal.setitimer(signal.ITIMER_REAL, self.outer)
            self.start = time.monotonic()

    def __exit__(self, *exc):
        if self.seconds:
            left = self.outer - (time.monotonic() - self.start) if self.outer else 0.0
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001) if self.outer else 0.0)
        return False


def _on_alarm(signum, frame):
    raise _Interrupted()


def _text(error) -> str:
    try:
        return str(error)[:2000]
    except BaseException:  # noqa: BLE001
        return "(説明を表示できない例外)"


_SAFE_ERRORS = {name: getattr(builtins, name) for name in dir(builtins)
                if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), Exception)}


def _builtin_error(error: dict) -> Exception:
    cls = _SAFE_ERRORS.get(str(error.get("ename")), RuntimeError)
    try:
        return cls(str(error.get("evalue", "")))
    except Exception:  # noqa: BLE001 - exception types with other constructors
        return RuntimeError(f"{error.get('ename')}: {error.get('evalue')}")


def main() -> None:
    # the channel: the judge's pipes on fds 0 and 1, moved out of the way of print() and os.system
    fd_in, fd_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.environ.setdefault("MPLBACKEND", "Agg")
    runner = Runner(fd_in, fd_out)
    try:
        from IPython.core.interactiveshell import InteractiveShell

        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        config.InteractiveShell.colors = "NoColor"
        runner.shell = InteractiveShell.instance(config=config, user_ns=runner.namespace)
        runner.shell.showtraceback = lambda *a, **k: None
    except Exception:  # noqa: BLE001 - without IPython, plain exec (no magics)
        runner.shell = None
    write_frame(fd_out, {"op": "ready", "pid": os.getpid()})
    while True:
        message = read_frame(fd_in)
        if message is None or message.get("op") == "bye":
            os._exit(0)
        runner.serve(message)


if __name__ == "__main__":
    main()
