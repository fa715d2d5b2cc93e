"""How the judge sees student objects: proxies whose every operation is a request for plain data.

A name a test cell reads from the student's namespace arrives as plain data (numbers, strings,
NumPy arrays of numbers, lists, tuples, sets) or as a `RemoteObject`. Calling a RemoteObject,
reading or setting its attributes, indexing it, iterating it or doing arithmetic with it sends a
request to the runner and waits for a plain-data reply. A RemoteObject never takes part in a
comparison or a truth test (==, <, bool(), hash are local or refused), so every verdict is computed
in the judge from plain data: student code cannot patch the comparison, the builtins, NumPy or the
test's variables, and never sees the test's code.

`RemoteArray` is the judge's copy of a student array; changing it in place here writes the change
back to the student's array with the next message (copy-restore).
"""
from __future__ import annotations

import numpy as np

MAX_TYPE_NAMES = 200   # distinct student class names one judge makes proxy classes for


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


class ProxyTypes:
    """RemoteObject subclasses named like the student's classes (type(x).__name__ in tests), at most
    MAX_TYPE_NAMES per judge: past that, every further class is seen as `object`."""

    def __init__(self):
        self.made: dict[str, type] = {}

    def get(self, name: str) -> type:
        safe = "".join(ch for ch in str(name) if ch.isalnum() or ch == "_")[:60] or "object"
        if safe not in self.made:
            if len(self.made) >= MAX_TYPE_NAMES:
                safe = "object"
                if safe in self.made:
                    return self.made[safe]
            self.made[safe] = type(safe, (RemoteObject,), {"__slots__": ()})
        return self.made[safe]


class RemoteArray(np.ndarray):
    """A copy of a student's array; in-place changes made here are written back to the student's."""

    def __array_finalize__(self, obj):
        self._origin = None
        self._judge = None

    def _push(self):
        if self._origin is not None and self._judge is not None:
            self._judge.dirty[id(self)] = self   # sent with the next message

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
