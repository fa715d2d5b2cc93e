"""Runs inside every grading kernel before any student code.

nbgrader_config.py passes this file to the kernel (IPKernelApp.exec_files), so it runs in the
kernel's user namespace when `nbgrader autograde` (or Validate) starts a notebook. Hidden tests
compare with NumPy and math functions (np.abs, np.max, np.array_equal, ...); a submission that
replaced one of them (`np.allclose = lambda *a, **k: True`) would pass every test. Here:

- existing attributes of numpy, numpy.linalg, numpy.random, numpy.testing and math cannot be
  replaced or deleted: the student's cell gets an AttributeError with a Japanese message (new
  attributes and lazily imported submodules are still allowed, so NumPy works as usual);
- before every cell, the names np, numpy and math are bound to the real modules again if a cell
  rebound them (`np = FakeNumPy()`), with a printed note.

Writing to a module's __dict__ directly is not stopped; `make redflags` reports that pattern.
Names are kept out of the user namespace (everything lives in one function that deletes itself).
"""


def _neural_engine_grading_guard():
    import math
    import types

    import numpy
    import numpy.linalg
    import numpy.random
    import numpy.testing

    class GuardedModule(types.ModuleType):
        """A module whose existing attributes cannot be replaced or deleted."""

        def __setattr__(self, name, value):
            current = self.__dict__.get(name, value)
            if current is not value and not isinstance(value, types.ModuleType):
                raise AttributeError(
                    f"採点用のカーネルでは {self.__name__}.{name} を置き換えられません。"
                    "NumPy や math の関数は書き換えずに使ってください（書き換えると採点が正しく行えません）")
            types.ModuleType.__setattr__(self, name, value)

        def __delattr__(self, name):
            raise AttributeError(f"採点用のカーネルでは {self.__name__}.{name} を削除できません")

    for module in (numpy, numpy.linalg, numpy.random, numpy.testing, math):
        module.__class__ = GuardedModule

    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:  # run outside IPython (a unit test): the module guard is all there is
        return
    real = {"np": numpy, "numpy": numpy, "math": math}

    def restore_module_names(*_):
        namespace = shell.user_ns
        for name, module in real.items():
            if name in namespace and namespace[name] is not module:
                namespace[name] = module
                print(f"注意: {name} が別のものに置き換えられていたので、採点のために元のモジュールに戻しました")

    shell.events.register("pre_run_cell", restore_module_names)


_neural_engine_grading_guard()
del _neural_engine_grading_guard
