"""One sandbox per process of a submission: bubblewrap, a fresh user id, seccomp, cgroup limits.

Grading a submission starts two sandboxes (coursetools/grading/session.py): the *runner* (the
student's cells) and the *judge* (the test cells). Each one sees:

- a read-only Python runtime (the interpreter, the course's venv, whatever they link to) and
  /usr; the few grading modules it runs, read-only under /grader; nothing of the course directory:
  no source/, solutions/, gradebook.db, submissions, records;
- an empty, private, size-limited /tmp (and, for the runner, a home directory: the working
  directory); no network (a new, empty network namespace), its own PID, IPC and UTS namespaces:
  every process it starts dies with it;
- a user id of its own, fresh for every sandbox (never the one of the previous submission), no
  capabilities, no_new_privs, when the grader runs as root;
- a seccomp filter (x86-64): no kernel keyrings (keyctl, add_key, request_key: the per-uid
  keyring outlives processes), no new namespaces (unshare, setns, clone with namespace flags; clone3
  answers ENOSYS so the C library falls back to clone), no mount, ptrace, bpf, perf, io_uring,
  userfaultfd, module or reboot calls;
- memory, process count and CPU shared by the whole process tree (a cgroup, v1 or v2), and an
  address-space limit per process, so a runaway allocation is a MemoryError in its own cell.

    available() -> (bool, why)     start(kind, ...) -> Sandbox     NoSandbox (typed error)
"""
from __future__ import annotations

import os
import platform
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEMORY = 2 << 30          # bytes of address space per process; the tree may use 1.5 times that
PIDS = 64                 # processes + threads, whole tree
CPU_CORES = 1.0           # CPU bandwidth, whole tree
DISK = 128 << 20          # bytes of /tmp and of home each
FILESIZE = 64 << 20       # largest file, bytes
UID_FIRST, UID_COUNT = 100_000, 100_000    # sandbox user ids: one fresh id per sandbox

# What each kind of sandbox gets of coursetools/grading (read-only, under /grader/grading).
FILES = {"runner": ("__init__.py", "wire.py", "runner.py"),
         "judge": ("__init__.py", "wire.py", "judge.py", "proxies.py", "standins.py")}


class NoSandbox(RuntimeError):
    """Grading needs a sandbox and none can be started here (the reason is the message)."""


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
# seccomp (x86-64): a classic BPF program, loaded by bwrap before it starts the command

_X86_64 = 0xC000003E
_DENY = {  # syscall numbers of x86-64
    "keyctl": 250, "add_key": 248, "request_key": 249, "unshare": 272, "setns": 308,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "ptrace": 101,
    "process_vm_readv": 310, "process_vm_writev": 311, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "swapon": 167, "swapoff": 168, "reboot": 169, "acct": 163, "quotactl": 179,
    "syslog": 103, "iopl": 172, "ioperm": 173, "open_by_handle_at": 304, "name_to_handle_at": 303,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "vhangup": 153, "lookup_dcookie": 212,
}
_CLONE, _CLONE3 = 56, 435
_NAMESPACE_FLAGS = 0x7E020080       # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
_EPERM, _ENOSYS = 1, 38


def seccomp_program() -> bytes | None:
    """The filter as bwrap reads it (struct sock_filter[]), or None on other architectures."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    allow, errno_perm, errno_nosys, kill = 0x7FFF0000, 0x00050000 | _EPERM, 0x00050000 | _ENOSYS, 0x80000000
    code: list = []                          # (opcode, jump-if-true label, jump-if-false label, k)
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    code.append((ld, None, None, 4))                      # architecture
    code.append((jeq, None, "kill", _X86_64))
    code.append((ld, None, None, 0))                      # syscall number
    code.append((jge, "eperm", None, 0x40000000))         # the x32 ABI
    for number in sorted(_DENY.values()):
        code.append((jeq, "eperm", None, number))
    code.append((jeq, "enosys", None, _CLONE3))
    code.append((jeq, None, "allow", _CLONE))
    code.append((ld, None, None, 16))                     # clone's flags (args[0], low 32 bits)
    code.append((jset, "eperm", "allow", _NAMESPACE_FLAGS))
    labels = {"allow": len(code)}
    code.append((ret, None, None, allow))
    labels["eperm"] = len(code)
    code.append((ret, None, None, errno_perm))
    labels["enosys"] = len(code)
    code.append((ret, None, None, errno_nosys))
    labels["kill"] = len(code)
    code.append((ret, None, None, kill))
    out = b""
    for i, (op, true, false, k) in enumerate(code):
        jt = labels[true] - i - 1 if true else 0
        jf = labels[false] - i - 1 if false else 0
        assert 0 <= jt < 256 and 0 <= jf < 256
        out += struct.pack("=HBBI", op, jt, jf, k)
    return out


# ------------------------------------------------------------------------------------------------
# user ids: a fresh one for every sandbox

@dataclass
class Lease:
    uid: int
    path: Path | None

    def release(self) -> None:
        if self.path is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            self.path = None


def lease_uid() -> Lease:
    """A user id no other sandbox of this machine holds now (a lock file per id, O_EXCL)."""
    folder = Path(tempfile.gettempdir()) / "neural-engine-uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    for _ in range(200):
        uid = UID_FIRST + secrets.randbelow(UID_COUNT)
        path = folder / str(uid)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue
        return Lease(uid, path)
    raise NoSandbox(f"no free sandbox user id in {folder}")


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
# the runtime, wherever it lives

def python() -> str:
    """The interpreter to start, by a path that exists inside the sandbox: its directory resolved
    (a symlinked .venv, a venv outside the course, PY=/elsewhere/bin/python), its name kept (the
    venv's python is a link to the base interpreter that must be started *as* the venv's)."""
    return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(sys.executable))),
                        os.path.basename(sys.executable))


def _runtime_paths() -> list[str]:
    """Read-only paths the sandbox needs: the interpreter's prefixes (venv and its base), the
    directory of the interpreter and every site-packages directory on sys.path (a .pth file may
    point outside the venv), each resolved; nested ones dropped. Never the course directory
    itself: only directories named site-packages or dist-packages are added from sys.path."""
    found = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    found.add(os.path.dirname(python()))
    found.add(os.path.dirname(os.path.realpath(python())))
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if os.path.basename(real) in ("site-packages", "dist-packages") and os.path.isdir(real):
            found.add(real)
    paths = []
    for p in sorted(found, key=len):
        if not any(_inside(p, q) for q in paths) and not p.startswith("/usr"):
            paths.append(p)
    return sorted(paths)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _aliases(bound: list[str]) -> list[tuple[str, str]]:
    """(real path, path as written) of site-packages on sys.path reached through a symbolic link (a
    .pth file naming a linked venv): bound under the written path too, where the interpreter in the
    sandbox looks for it, unless that path lies inside something already bound."""
    pairs = []
    for entry in sys.path:
        if not entry or not os.path.isabs(entry):
            continue
        written, real = os.path.normpath(entry), os.path.realpath(entry)
        if written == real or os.path.basename(real) not in ("site-packages", "dist-packages") or not os.path.isdir(real):
            continue
        if any(_inside(written, q) or _inside(q, written) for q in bound) or written.startswith("/usr"):
            continue
        pairs.append((real, written))
    return pairs


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
    bound = _runtime_paths()
    for source, path in [(p, p) for p in bound] + _aliases(bound):
        parts = Path(path).parts
        for i in range(2, len(parts)):          # parents readable by the sandbox user
            parent = str(Path(*parts[:i]))
            if parent not in made:
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
        cmd += ["--ro-bind", source, path]
    cmd += ["--perms", "0755", "--dir", "/etc"]   # created by bwrap; readable by the sandbox user
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/fonts"):
        if os.path.exists(etc):
            cmd += ["--ro-bind", etc, etc]
    return cmd


def mpl_cache() -> str | None:
    """A folder with matplotlib's font list for this runtime, built once per machine and version
    (outside any sandbox, without the user's own fonts), so that a runner does not scan the fonts
    again for every submission. None when it cannot be built."""
    folder = Path(tempfile.gettempdir()) / f"neural-engine-mpl-{os.geteuid()}"
    if folder.is_dir() and any(folder.glob("fontlist-*.json")):
        return str(folder)
    scratch = Path(tempfile.mkdtemp(prefix="neural-engine-mpl-build-"))
    try:
        subprocess.run([sys.executable, "-I", "-c", "import matplotlib; matplotlib.use('Agg'); "
                        "import matplotlib.font_manager"], env=dict(ENV, HOME=str(scratch), MPLCONFIGDIR=str(scratch)),
                       capture_output=True, timeout=120, cwd=str(scratch))
        if not any(scratch.glob("fontlist-*.json")):
            return None
        for stray in scratch.iterdir():
            if not stray.name.startswith("fontlist-"):
                shutil.rmtree(stray, ignore_errors=True) if stray.is_dir() else stray.unlink()
        scratch.chmod(0o755)
        try:
            scratch.rename(folder)
        except OSError:                          # another grader built it meanwhile
            shutil.rmtree(scratch, ignore_errors=True)
        return str(folder)
    except (OSError, subprocess.TimeoutExpired):
        shutil.rmtree(scratch, ignore_errors=True)
        return None


def drop_to(uid: int) -> list[str]:
    """setpriv in front of a command: run it as uid (and gid uid), no groups, no capabilities."""
    return ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


ENV = {"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}


def entry(kind: str, sandboxed: bool, args: list[str] = ()) -> list[str]:
    """The Python command that starts a runner or a judge."""
    root = "/grader" if sandboxed else str(HERE.parent)
    package = "grading" if sandboxed else HERE.name
    start = f"import sys; sys.path.insert(0, {root!r}); from {package} import {kind}; {kind}.main({list(args)!r})"
    return [python() if sandboxed else sys.executable, "-I", "-B", "-c", start]


def command(kind: str, uid: int | None, seccomp_fd: int | None, args: list[str] = ()) -> list[str]:
    """The bwrap command line of one sandbox."""
    home = "/home/student" if kind == "runner" else "/tmp"
    cmd = [bwrap(), *_namespaces(), "--die-with-parent", "--new-session", *runtime_binds(tmp_size=DISK)]
    cmd += ["--perms", "0755", "--dir", "/grader", "--perms", "0755", "--dir", "/grader/grading"]
    for name in FILES[kind]:
        cmd += ["--ro-bind", str(HERE / name), f"/grader/grading/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--hostname", "sandbox", "--chdir", home]
    if kind == "runner":
        cmd += ["--perms", "0777", "--size", str(DISK), "--tmpfs", home]
        fonts = mpl_cache()
        if fonts:
            cmd += ["--ro-bind", fonts, "/grader/mpl-cache"]
    cmd += ["--setenv", "HOME", home, "--setenv", "MPLCONFIGDIR", "/tmp/mpl"]
    for key, value in ENV.items():
        cmd += ["--setenv", key, value]
    cmd += ["--unsetenv", "PYTHONPATH", "--unsetenv", "JUPYTER_PATH"]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    if uid is not None:
        cmd += drop_to(uid)
    return cmd + entry(kind, True, list(args))


@dataclass
class Sandbox:
    proc: subprocess.Popen
    cgroup: Cgroup | None
    lease: Lease | None
    sandboxed: bool
    started: float

    @property
    def uid(self) -> int | None:
        return self.lease.uid if self.lease else None

    def stop(self) -> None:
        """Kill everything the sandbox started; nothing survives."""
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
        if self.cgroup:
            self.cgroup.remove()
        if self.lease:
            self.lease.release()

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


def start(kind: str, channel_fd: int, extra_fds: tuple = (), args: list[str] = (), sandboxed: bool = True,
          memory: int = MEMORY, pids: int = PIDS, cpus: float = CPU_CORES) -> Sandbox:
    """Start a runner or judge with channel_fd as its fd 0 (extra_fds stay open under their numbers)."""
    if kind not in FILES:
        raise ValueError(kind)
    if not sandboxed:
        proc = subprocess.Popen(entry(kind, False, list(args)), stdin=channel_fd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, pass_fds=tuple(extra_fds), close_fds=True,
                                env=dict(ENV, HOME=os.environ.get("HOME", "/tmp")),
                                preexec_fn=_limit_process(None, memory, pids))
        return Sandbox(proc, None, None, False, time.monotonic())
    if not bwrap():
        raise NoSandbox(available()[1])
    lease = lease_uid() if os.geteuid() == 0 else None
    cgroup = Cgroup.create(f"{kind}-{os.getpid()}-{time.monotonic_ns()}", memory + memory // 2, pids, cpus)
    program = seccomp_program()
    read_end = None
    try:
        if program is not None:
            read_end, write_end = os.pipe()
            os.write(write_end, program)
            os.close(write_end)
        cmd = command(kind, lease.uid if lease else None, read_end, args)
        proc = subprocess.Popen(cmd, stdin=channel_fd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(ENV, HOME="/tmp"), cwd="/", close_fds=True,
                                pass_fds=tuple(extra_fds) + ((read_end,) if read_end is not None else ()),
                                preexec_fn=_limit_process(cgroup, memory, pids))
    except BaseException:
        if cgroup:
            cgroup.remove()
        if lease:
            lease.release()
        raise
    finally:
        if read_end is not None:
            os.close(read_end)
    return Sandbox(proc, cgroup, lease, True, time.monotonic())


def diagnose(sandboxed: bool = True) -> str:
    """Why the interpreter does not start in a sandbox here: its own error output, in one line."""
    probe = "import numpy, msgpack, IPython; print('runtime ok')"
    if sandboxed:
        if not bwrap():
            return available()[1]
        lease = lease_uid() if os.geteuid() == 0 else None
        try:
            cmd = command("runner", lease.uid if lease else None, None)
            cmd = cmd[:-4] + [cmd[-4], "-I", "-c", probe]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=dict(ENV, HOME="/tmp"), cwd="/")
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap could not be run: {error}"
        finally:
            if lease:
                lease.release()
    else:
        proc = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
    if "runtime ok" in proc.stdout:
        return "the Python runtime starts in a sandbox; look at the grader's log"
    text = " ".join((proc.stderr or proc.stdout).split())[-400:]
    return f"the Python runtime ({python()}) does not start in a sandbox: {text or f'exit status {proc.returncode}'}"


def limits() -> str:
    """One line saying which limits apply to a whole submission here."""
    group = Cgroup.create(f"probe-{os.getpid()}", MEMORY, PIDS, CPU_CORES)
    if group:
        group.remove()
        whole = f"memory {MEMORY >> 20} MiB, {PIDS} processes/threads, {CPU_CORES:g} CPU for each sandbox's process tree (cgroup)"
    else:
        whole = f"memory {MEMORY >> 20} MiB per process (no cgroup available: limits are per process)"
    filt = "seccomp filter" if seccomp_program() else "no seccomp filter on this architecture"
    ids = "a fresh user id per sandbox" if os.geteuid() == 0 else "your user id (not root: no separate ids)"
    return f"{whole}; /tmp and home {DISK >> 20} MiB each; largest file {FILESIZE >> 20} MiB; no network; {filt}; {ids}"
