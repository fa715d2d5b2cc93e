"""The one codec every grading process speaks: frames, plain-data values, budgets.

Three processes take part in grading a submission (see coursetools/grading/__init__.py): the
orchestrator (nbgrader's process), the judge (test cells, in a sandbox) and the runner (the
student's cells, in another sandbox). Every message between two of them is one *frame*: a 4-byte
big-endian length, then a MessagePack map. The length is checked against the channel's budget
before a byte of the body is read, and msgpack checks the length of every string, byte string,
array and map against the budget before it allocates it; nesting deeper than msgpack's own stack
is refused by msgpack, and values nested deeper than MAX_DEPTH by `Values` below.

Values (function arguments, results, names a test reads) are *plain data*: None, bool, int,
float, str, bytes, and tagged maps:

  {"$nd": dtype, "s": shape|None, "b": raw bytes, "o": origin?, "t": token?}   NumPy array / scalar
  {"$l": [...], "t": token?}   list          {"$t": [...]}   tuple        {"$set": [...]}   set
  {"$d": [[k, v], ...], "t": token?}   dict sent by value (judge -> runner only)
  {"$c": [re, im]}   complex
  {"$r": ref, "k": kind, "n": type name, "ty": type ref, "m": [methods]?, "sh": [hidden]?}
        a student object, by reference (runner -> judge); ref and type ref are random numbers
  {"$rm": ref, "m": name}   a method of a student object (judge -> runner)
  {"$s": token, "n": name, "call": [...], "read": [...], "write": [...]}
        a stand-in (judge -> runner): a judge-side object that student code may use only through
        the methods and attributes named here (coursetools/grading/standins.py)
  {"$in": token}   "the very object you sent me as token" (copy-restore of call arguments)

Arrays carry numbers only (dtype kinds b, i, u, f, c); object arrays, strings and records are
refused on both sides.
"""
from __future__ import annotations

import os
import select
import struct
import time
from dataclasses import dataclass

import msgpack

NUMERIC_KINDS = "biufc"
MAX_DEPTH = 60              # nesting of plain containers in one value
OUTPUT_LIMIT = 20_000       # characters of captured output per cell or call
TEXT_LIMIT = 2_000          # characters of an error message


class WireError(Exception):
    """A frame or value that breaks the protocol or a budget."""


class Timeout(Exception):
    """No complete frame before the deadline."""


@dataclass(frozen=True)
class Budget:
    """Limits of one channel, checked before anything is allocated."""

    frame: int = 32 << 20        # bytes of one frame
    text: int = 8 << 20          # characters of one string
    items: int = 1_000_000       # elements of one array or map

    def unpack(self, body: bytes):
        try:
            return msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True,
                                   max_str_len=self.text, max_bin_len=self.frame,
                                   max_array_len=self.items, max_map_len=self.items, max_ext_len=0)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
                UnicodeDecodeError) as error:     # TypeError: an unhashable map key
            raise WireError(f"unreadable frame: {type(error).__name__}") from None


STUDENT = Budget()                                   # runner <-> judge: arrays of a training set fit
CONTROL = Budget(frame=16 << 20, text=12 << 20, items=10_000)   # orchestrator <-> judge: cells, verdicts


def pack(message) -> bytes:
    try:
        body = msgpack.packb(message, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise WireError(f"cannot send {type(error).__name__}: {error}") from None
    return struct.pack(">I", len(body)) + body


class Channel:
    """One end of a stream socket or pipe pair, speaking frames within a budget."""

    def __init__(self, read_fd: int, write_fd: int | None = None, budget: Budget = STUDENT):
        self.read_fd = read_fd
        self.write_fd = read_fd if write_fd is None else write_fd
        self.budget = budget

    def send(self, message) -> None:
        data = pack(message)
        if len(data) - 4 > self.budget.frame:
            raise WireError(f"message of {len(data) - 4} bytes exceeds the limit of {self.budget.frame}")
        view = memoryview(data)
        while view:
            n = os.write(self.write_fd, view)
            view = view[n:]

    def recv(self, deadline: float | None = None):
        """The next frame's message; None at end of stream. Raises Timeout, WireError."""
        head = self._read(4, deadline)
        if head is None:
            return None
        (size,) = struct.unpack(">I", head)
        if size > self.budget.frame:
            raise WireError(f"frame of {size} bytes exceeds the limit of {self.budget.frame}")
        body = self._read(size, deadline)
        if body is None:
            raise WireError("stream ended inside a frame")
        return self.budget.unpack(body)

    def _read(self, n: int, deadline: float | None) -> bytes | None:
        chunks, got = [], 0
        while got < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                    raise Timeout()
            try:
                chunk = os.read(self.read_fd, min(n - got, 1 << 20))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if got:
                    raise WireError("stream ended inside a frame")
                return None
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)


# ------------------------------------------------------------------------------------------------
# arrays

def encode_array(array, token=None, origin=None) -> dict:
    import numpy as np

    a = np.asarray(array)
    if a.dtype.kind not in NUMERIC_KINDS or a.dtype.hasobject or a.dtype.fields is not None:
        raise WireError(f"arrays of dtype {a.dtype} are not plain data")
    out = {"$nd": a.dtype.str, "s": list(a.shape) if isinstance(array, np.ndarray) else None,
           "b": np.ascontiguousarray(a).tobytes()}
    if token is not None:
        out["t"] = token
    if origin is not None:
        out["o"] = origin
    return out


def decode_array(value: dict):
    import numpy as np

    try:
        dtype = np.dtype(str(value["$nd"]))
    except (TypeError, ValueError, KeyError):
        raise WireError("bad array dtype") from None
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
        raise WireError(f"dtype {dtype} is not plain data")
    raw = value.get("b")
    if type(raw) is not bytes:
        raise WireError("array data is not bytes")
    shape = value.get("s")
    if shape is None:
        if len(raw) != dtype.itemsize:
            raise WireError("scalar of the wrong size")
        return np.frombuffer(raw, dtype=dtype)[0]
    if not isinstance(shape, list) or len(shape) > 32 or \
            not all(type(d) is int and 0 <= d <= 1 << 40 for d in shape):
        raise WireError("bad array shape")
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != len(raw):
        raise WireError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def bounded(text, limit: int = OUTPUT_LIMIT) -> str:
    """A string from the other side, cut to a limit (non-strings become empty)."""
    text = text if isinstance(text, str) else ""
    return text if len(text) <= limit else text[:limit] + f"\n…（{len(text) - limit} 文字を省略しました）\n"


def error_dict(error) -> dict:
    """{"ename", "evalue"} of an exception, bounded."""
    try:
        text = str(error)
    except BaseException:  # noqa: BLE001 - student exceptions may fail to print
        text = "(説明を表示できない例外)"
    return {"ename": type(error).__name__[:80], "evalue": text[:TEXT_LIMIT]}
