"""An IPython kernel that runs student code under resource limits (and, where the OS allows, offline).

Used by `make autograde LIMITS=1` (coursetools.grade) through a kernelspec it writes to
build/kernels/; never by students. The limits come from the environment:

    NEURAL_ENGINE_MEMORY   address space of the kernel in bytes   (default 2 GiB)
    NEURAL_ENGINE_CPU      CPU seconds for the whole kernel        (default 600)
    NEURAL_ENGINE_FILESIZE largest file the kernel may write, bytes (default 256 MiB)
    NEURAL_ENGINE_NPROC    processes/threads of this user (not enforced for root) (default 512)
    NEURAL_ENGINE_OFFLINE  "1": move the student's code into an empty network namespace

The kernel's own ZeroMQ sockets are bound before the network namespace changes, so grading keeps
working while new sockets opened by student code find no network at all (not even loopback).
"""
from __future__ import annotations

import ctypes
import os
import resource
import sys

CLONE_NEWNET = 0x40000000
DEFAULTS = {"NEURAL_ENGINE_MEMORY": 2 << 30, "NEURAL_ENGINE_CPU": 600,
            "NEURAL_ENGINE_FILESIZE": 256 << 20, "NEURAL_ENGINE_NPROC": 512}


def _limit(name: str) -> int:
    return int(os.environ.get(name, DEFAULTS[name]))


def apply_limits() -> None:
    for kind, name in ((resource.RLIMIT_AS, "NEURAL_ENGINE_MEMORY"), (resource.RLIMIT_CPU, "NEURAL_ENGINE_CPU"),
                       (resource.RLIMIT_FSIZE, "NEURAL_ENGINE_FILESIZE"), (resource.RLIMIT_NPROC, "NEURAL_ENGINE_NPROC")):
        value = _limit(name)
        resource.setrlimit(kind, (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def isolate_network() -> bool:
    """Move the calling thread into a new, empty network namespace; False when the OS refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        print(f"limited kernel: network isolation refused by the OS ({os.strerror(error)}); "
              "student code can still reach the network", file=sys.stderr)
        return False
    return True


def network_isolation_available() -> bool:
    """Whether this machine lets us create a network namespace (checked in a throwaway child)."""
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.unshare(CLONE_NEWNET) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def main() -> None:
    # one BLAS thread: OpenBLAS reserves a buffer per thread, which on a many-core machine could
    # eat most of the address-space limit before any student code runs (and grading is serial anyway)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    apply_limits()
    argv = sys.argv[1:]
    if os.environ.get("NEURAL_ENGINE_OFFLINE") == "1":
        # runs in the kernel's main thread (where cells run) after its sockets are bound
        argv.append("--IPKernelApp.exec_lines=['__import__(\"coursetools.limited_kernel\").limited_kernel.isolate_network()']")
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=argv)


if __name__ == "__main__":
    main()
