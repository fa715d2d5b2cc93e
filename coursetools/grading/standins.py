"""What a test may hand to student code: stand-ins, each with an explicit allowlist.

A test cell runs in the judge. When it passes one of its own objects to a student function (an
rng to `train`, a node to `backward_pass`, a spy optimiser, a lambda set as a layer's `backward`),
the object stays here; the student's process receives a stand-in: a token and the names of the
methods it may call and the attributes it may read or assign. A request names the token and one
of those names; arguments and results are plain data (or student objects by reference, or other
stand-ins). Nothing else of the object can be reached: no other attribute, no attribute write
but the declared ones, no function, class, module or library object of the grader.

What may be handed out (`standin_for`):

- an instance of a class that declares its allowlist with `__standin__` (a class attribute, inert
  in an ordinary kernel): a tuple of method names, or a dict with "call", "read" and "write"
  tuples. Example from Notebook 73's hidden tests:
      class _JudgeNode:
          __standin__ = {"call": ("forward", "backward", "zero_grad"),
                         "read": ("name", "value", "inputs", "outputs"), "write": ("grad",)}
  What such an object records (which backward() ran, in which order) is recorded here, from the
  requests it served; student code cannot write it.
- a NumPy Generator: only the drawing methods in RNG_CALLS (no bit_generator, no state);
- a function, lambda, bound method, ufunc or class of the test: only calling it.

Anything else is refused with a TypeError in the test (an authoring error the course's own tests
find: every test cell must pass on the solution).
"""
from __future__ import annotations

import types

import numpy as np

RNG_CALLS = ("choice", "integers", "normal", "permutation", "random", "shuffle", "standard_normal", "uniform")
DUNDER_CALLS = ("__call__", "__len__", "__iter__", "__getitem__")


class StandIn:
    """A judge object as student code may use it."""

    __slots__ = ("target", "name", "calls", "reads", "writes")

    def __init__(self, target, name: str, calls=(), reads=(), writes=()):
        self.target, self.name = target, str(name)[:60]
        self.calls = tuple(_names(calls, dunders=True))
        self.writes = tuple(_names(writes))
        self.reads = tuple(n for n in _names(reads) if n not in self.writes)

    def spec(self, token) -> dict:
        return {"$s": token, "n": self.name, "call": list(self.calls), "read": list(self.reads),
                "write": list(self.writes)}

    def call(self, method: str, args: tuple, kwargs: dict):
        if method not in self.calls:
            raise AttributeError(f"採点側から渡された {self.name} のメソッド {method} は使えません")
        if method == "__call__":
            return self.target(*args, **kwargs)
        if method == "__len__":
            return len(self.target)
        if method == "__iter__":
            return list(self.target)
        if method == "__getitem__":
            return self.target[args[0]]
        return getattr(self.target, method)(*args, **kwargs)

    def get(self, field: str):
        if field not in self.reads and field not in self.writes:
            raise AttributeError(f"採点側から渡された {self.name} の属性 {field} は読めません")
        return getattr(self.target, field)

    def set(self, field: str, value) -> None:
        if field not in self.writes:
            raise AttributeError(f"採点側から渡された {self.name} の属性 {field} は変更できません")
        setattr(self.target, field, value)


def _names(values, dunders=False) -> list[str]:
    out = []
    for name in values:
        name = str(name)
        if not name.isidentifier():
            raise TypeError(f"__standin__ names must be identifiers: {name!r}")
        if name.startswith("_") and not (dunders and name in DUNDER_CALLS):
            raise TypeError(f"__standin__ may not offer private or special names: {name!r}")
        out.append(name)
    return out


CALLABLE_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, np.ufunc)


def standin_for(obj) -> StandIn | None:
    """The stand-in through which student code may use obj, or None if obj may not be handed out."""
    if isinstance(obj, StandIn):
        return obj
    cls = type(obj)
    declared = cls.__dict__.get("__standin__") if isinstance(cls, type) else None
    if declared is None:
        for klass in getattr(cls, "__mro__", ())[1:]:
            declared = vars(klass).get("__standin__")
            if declared is not None:
                break
    if declared is not None and not isinstance(obj, type):
        if isinstance(declared, dict):
            return StandIn(obj, cls.__name__, declared.get("call", ()), declared.get("read", ()),
                           declared.get("write", ()))
        return StandIn(obj, cls.__name__, declared)
    if isinstance(obj, np.random.Generator):
        return StandIn(obj, "Generator", RNG_CALLS)
    if isinstance(obj, CALLABLE_TYPES) or (isinstance(obj, type) and not issubclass(obj, BaseException)):
        return StandIn(obj, getattr(obj, "__name__", "function"), ("__call__",))
    return None
