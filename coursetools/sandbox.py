"""One sandbox per submission: bubblewrap, an unprivileged user, cgroup limits, one deadline.

What runs inside (coursetools/runner.py, the student's code) sees:
- a read-only Python runtime (the interpreter's prefix and this course's .venv) and /usr;
- an empty, private, size-limited /tmp and home directory (/home/student, the working directory);
- no course directory: no source/, solutions/, gradebook.db, other submissions, nothing of the
  instructor's; no network (a new, empty network namespace for every thread and process);
- its own PID namespace: every process it starts dies with the sandbox;
- a user id of its own (not root, no capabilities, no_new_privs) when the grader runs as root;
- memory, process count and CPU shared by the whole process tree (a cgroup), where the OS lets
  the grader create one; otherwise per-process rlimits (and `limits()` says so).

    available() -> (bool, why)        start(...) -> Sandbox
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
MEMORY = int(os.environ.get("NEURAL_ENGINE_MEMORY", 2 << 30))        # bytes, whole tree
PIDS = int(os.environ.get("NEURAL_ENGINE_NPROC", 64))                  # processes + threads, whole tree
CPU_CORES = float(os.environ.get("NEURAL_ENGINE_CPUS", 1.0))           # CPU bandwidth, whole tree
DISK = int(os.environ.get("NEURAL_ENGINE_DISK", 128 << 20))            # bytes of /tmp and of home each
FILESIZE = int(os.environ.get("NEURAL_ENGINE_FILESIZE", 64 << 20))     # largest file, bytes
UID_BASE = 61000                                                        # sandbox user ids: 61000 + slot


def bwrap() -> str | None:
    return shutil.which("bwrap")


def available() -> tuple[bool, str]:
    """Whether a sandbox can be started here; the reason when not."""
    exe = bwrap()
    if not exe:
        return False, ("bubblewrap (bwrap) is not installed: `sudo apt-get install bubblewrap` "
                       "(make autograde installs it when run as root)")
    try:
        proc = subprocess.run([exe, *_namespaces(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                               "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bwrap could not start: {error}"
    if proc.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {proc.stderr.strip()[:300]}"
    return True, "bubblewrap"


def _namespaces() -> list[str]:
    spaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        spaces += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    return spaces


# ------------------------------------------------------------------------------------------------
# cgroups: v2 (unified) or v1 (memory, pids, cpu hierarchies)

def _cgroup_roots() -> dict[str, Path]:
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").is_file():
        return {"v2": base}
    roots = {}
    for name in ("memory", "pids", "cpu"):
        if (base / name / "cgroup.procs").is_file():
            roots[name] = base / name
    return roots


@dataclass
class Cgroup:
    paths: list = field(default_factory=list)

    @classmethod
    def create(cls, name: str, memory: int, pids: int, cpus: float) -> "Cgroup | None":
        if os.geteuid() != 0:
            return None
        roots = _cgroup_roots()
        group = cls()
        try:
            if "v2" in roots:
                root = roots["v2"]
                try:
                    (root / "cgroup.subtree_control").write_text("+memory +pids +cpu")
                except OSError:
                    pass
                path = root / "neural-engine" / name
                path.mkdir(parents=True, exist_ok=True)
                group.paths.append(path)
                (path / "memory.max").write_text(str(memory))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
                (path / "pids.max").write_text(str(pids))
                (path / "cpu.max").write_text(f"{int(cpus * 100000)} 100000")
            elif {"memory", "pids"} <= set(roots):
                for kind in ("memory", "pids", "cpu"):
                    if kind not in roots:
                        continue
                    path = roots[kind] / "neural-engine" / name
                    path.mkdir(parents=True, exist_ok=True)
                    group.paths.append(path)
                mem, pid = roots["memory"] / "neural-engine" / name, roots["pids"] / "neural-engine" / name
                (mem / "memory.limit_in_bytes").write_text(str(memory))
                if (mem / "memory.memsw.limit_in_bytes").exists():
                    try:
                        (mem / "memory.memsw.limit_in_bytes").write_text(str(memory))
                    except OSError:
                        pass
                (pid / "pids.max").write_text(str(pids))
                if "cpu" in roots:
                    cpu = roots["cpu"] / "neural-engine" / name
                    (cpu / "cpu.cfs_period_us").write_text("100000")
                    (cpu / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)))
            else:
                return None
        except OSError:
            group.remove()
            return None
        return group

    def enter(self) -> None:
        """Move the calling process (the future sandbox) into every hierarchy of the group."""
        for path in self.paths:
            with open(path / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    def pids(self) -> list[int]:
        found = set()
        for path in self.paths:
            try:
                found |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return sorted(found)

    def oom_killed(self) -> bool:
        for path in self.paths:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    text = (path / name).read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key in ("oom_kill", "oom") and value.strip() not in ("", "0"):
                        return True
        return False

    def kill_all(self) -> None:
        for path in self.paths:
            if (path / "cgroup.kill").exists():
                try:
                    (path / "cgroup.kill").write_text("1")
                except OSError:
                    pass
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        for path in reversed(self.paths):
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


# ------------------------------------------------------------------------------------------------

def _runtime_paths() -> list[str]:
    """Read-only paths the runner needs: the interpreter's prefixes (venv and its base)."""
    paths = []
    for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        p = os.path.realpath(p)
        if not any(p == q or p.startswith(q + os.sep) for q in paths) and not p.startswith("/usr"):
            paths.append(p)
    return sorted(paths)


def runtime_binds(tmp_size: int | None = None) -> list[str]:
    """bwrap arguments for a private /tmp and a read-only Python runtime: /usr, its links, this
    interpreter and venv. The tmpfs comes first, so that a runtime that lives under /tmp (a course
    cloned to /tmp) is bound on top of it instead of being hidden by it.

    Also used by deploy/coursehub.py for students' Jupyter servers on JupyterHub."""
    cmd = ["--perms", "1777", *(["--size", str(tmp_size)] if tmp_size else []), "--tmpfs", "/tmp",
           "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = os.path.realpath(f"/{link}")
        if target.startswith("/usr/"):
            cmd += ["--symlink", target[1:], f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            cmd += ["--ro-bind", f"/{link}", f"/{link}"]
    made = {"/tmp"}
    for path in _runtime_paths():
        parts = Path(path).parts
        for i in range(2, len(parts)):          # parents readable by the sandbox user
            parent = str(Path(*parts[:i]))
            if parent not in made:
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
        cmd += ["--ro-bind", path, path]
    cmd += ["--perms", "0755", "--dir", "/etc"]   # created by bwrap; readable by the sandbox user
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/fonts"):
        if os.path.exists(etc):
            cmd += ["--ro-bind", etc, etc]
    return cmd

def drop_to(uid: int) -> list[str]:
    """setpriv in front of a command: run it as uid (and gid uid), no groups, no capabilities."""
    return ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def command(slot: int, sandboxed: bool = True) -> list[str]:
    """The command line that starts the runner (inside bubblewrap when sandboxed)."""
    python = [sys.executable, "-I", "-B", "/grader/runner.py" if sandboxed else str(RUNNER)]
    if not sandboxed:
        return python
    cmd = [bwrap(), *_namespaces(), "--die-with-parent", "--new-session", *runtime_binds(tmp_size=DISK)]
    cmd += ["--perms", "0755", "--dir", "/grader", "--ro-bind", str(RUNNER), "/grader/runner.py",
            "--proc", "/proc", "--dev", "/dev",
            "--perms", "0777", "--size", str(DISK), "--tmpfs", "/home/student",
            "--chdir", "/home/student", "--hostname", "sandbox",
            "--setenv", "HOME", "/home/student", "--setenv", "MPLBACKEND", "Agg",
            "--setenv", "MPLCONFIGDIR", "/tmp/mpl", "--setenv", "PYTHONHASHSEED", "0",
            "--setenv", "OPENBLAS_NUM_THREADS", "1", "--setenv", "OMP_NUM_THREADS", "1",
            "--setenv", "MKL_NUM_THREADS", "1", "--setenv", "LANG", "C.UTF-8",
            "--unsetenv", "PYTHONPATH", "--unsetenv", "JUPYTER_PATH"]
    if os.geteuid() == 0:
        cmd += drop_to(UID_BASE + slot)
    return cmd + python


@dataclass
class Sandbox:
    proc: subprocess.Popen
    cgroup: Cgroup | None
    sandboxed: bool
    started: float

    def stop(self) -> None:
        """Kill everything the submission started; nothing survives."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if self.cgroup:
            self.cgroup.kill_all()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.cgroup:
            self.cgroup.remove()

    def memory_killed(self) -> bool:
        return bool(self.cgroup and self.cgroup.oom_killed())


def _limit_process(cgroup: Cgroup | None, memory: int, pids: int):
    def pre():
        import resource

        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if cgroup:
            cgroup.enter()
        else:  # no cgroup: per-process limits are what is left
            try:
                resource.setrlimit(resource.RLIMIT_NPROC, (pids, pids))
            except (ValueError, OSError):
                pass
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILESIZE, FILESIZE))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return pre


def start(slot: int = 0, sandboxed: bool = True, memory: int = MEMORY, pids: int = PIDS,
          cpus: float = CPU_CORES) -> Sandbox:
    """Start a runner; its stdin/stdout pipes are the channel to the judge."""
    # the cgroup bounds the whole tree; each process also gets an address-space limit, so that one
    # runaway allocation ends in a MemoryError in its own cell rather than in the OOM killer
    cgroup = Cgroup.create(f"s{os.getpid()}-{slot}-{time.monotonic_ns()}", memory + memory // 2, pids, cpus) \
        if sandboxed else None
    env = {"PATH": "/usr/bin:/bin", "HOME": "/home/student" if sandboxed else os.environ.get("HOME", "/tmp"),
           "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    proc = subprocess.Popen(command(slot, sandboxed), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd="/" if sandboxed else None,
                            preexec_fn=_limit_process(cgroup, memory, pids), close_fds=True)
    return Sandbox(proc, cgroup, sandboxed, time.monotonic())


def limits() -> str:
    """One line saying which limits apply to a whole submission here."""
    group = Cgroup.create(f"probe-{os.getpid()}", MEMORY, PIDS, CPU_CORES)
    if group:
        group.remove()
        whole = f"memory {MEMORY >> 20} MiB, {PIDS} processes/threads, {CPU_CORES:g} CPU for the whole process tree (cgroup)"
    else:
        whole = f"memory {MEMORY >> 20} MiB per process (no cgroup available: limits are per process)"
    return f"{whole}; /tmp and home {DISK >> 20} MiB each; largest file {FILESIZE >> 20} MiB; no network"
