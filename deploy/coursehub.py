"""The spawner of this course's JupyterHub (deploy/jupyterhub_config.py), and what goes with it.

One machine, users without OS accounts (the hub runs as root). No server listens on a TCP port the
students can reach: every single-user server listens on a Unix socket in a folder of its own under
<state>/run/servers/, and the hub relays to it from a loopback port of the hub's network namespace.

- an **instructor**'s server runs with the hub's rights in the course directory (the formgrader,
  `nbgrader_config.py`, the gradebook; autograde puts every submission in its own sandboxes, as
  `make autograde` does). Its kernels talk over IPC (Unix sockets in a private runtime folder).
- a **student**'s server runs in a bubblewrap sandbox of its own: a user id of its own (62000 + the
  student's position in the roster; no capabilities, no_new_privs), the seccomp filter of the grading
  sandboxes (coursetools.grading.sandbox: no mount, ptrace, keyrings, new namespaces...), a cgroup
  bounding memory, processes and CPU of the whole tree, a size-limited /tmp, a network namespace of its
  own with nothing in it but loopback (kernels on IPC), a read-only Python runtime, its own home
  directory (mode 700; a filesystem of its own, so a full home fills nothing else of the machine; the
  server's own folder is a small tmpfs), its own socket to the exchange service (deploy/exchange_service.py) and the
  hub's API socket, and the student configuration of deploy/student/. Nothing else of the machine: no
  course directory, no other home, no hub state, no other server or kernel. bwrap reads its arguments
  from a pipe, so not even the host paths of its binds show in /proc.

With real OS accounts (PAM, LDAP) use JupyterHub's LocalProcessSpawner instead and give students the
same Jupyter configuration; on Kubernetes see deploy/z2jh-values.yaml.
"""
from __future__ import annotations

import asyncio
import csv
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Bool, Integer, List, Unicode, default

HERE = Path(__file__).resolve().parent
COURSE_ROOT = HERE.parent
if str(COURSE_ROOT) not in sys.path:
    sys.path.insert(0, str(COURSE_ROOT))

from coursetools.grading import sandbox  # noqa: E402

UID_BASE = 62000                                 # student i of the roster runs as UID_BASE + i
EXCHANGE_UID = 61999                             # the exchange service
CONFIG_INSIDE = "/etc/jupyter-course"            # deploy/student/, students' JUPYTER_CONFIG_DIR
HUB_INSIDE = "/run/jupyterhub"                   # the hub's API socket, as students see it
EXCHANGE_INSIDE = "/run/course"                  # the student's own exchange socket
SERVER_INSIDE = "/run/jupyter-server"            # where the student's server puts its socket
LIB_INSIDE = "/opt/jupyter-course"    # deploy/hubexchange.py, nbgrader's side of the exchange
RUNTIME_INSIDE = f"{SERVER_INSIDE}/runtime"      # a student's JUPYTER_RUNTIME_DIR: kernels' sockets
# A Unix socket's path fits in sockaddr_un.sun_path: 107 bytes and the NUL. jupyter_client names a
# kernel's IPC sockets <runtime dir>/kernel-<uuid>-ipc-<n>; the longest such name:
SOCKET_PATH_MAX = 107
KERNEL_SOCKET = "kernel-00000000-0000-0000-0000-000000000000-ipc-99999"


def socket_paths(run_dir: str | Path, kernel_runtime_dir: str | Path, exchange_sockets: str | Path,
                 instructors: list[str], students: list[str]) -> list[str]:
    """Every Unix socket path of the machine the hub's deployment binds or connects to (host side)."""
    run, runtime, exchange = Path(run_dir), Path(kernel_runtime_dir), Path(exchange_sockets)
    paths = [run / "hub" / "hub.sock", exchange / "instructor" / "exchange.sock"]
    for name in instructors:
        paths += [run / "servers" / name / "server.sock", runtime / name / KERNEL_SOCKET]
    for name in students:
        paths += [run / "servers" / name / "server.sock", exchange / name / "exchange.sock"]
    paths.append(Path(RUNTIME_INSIDE) / KERNEL_SOCKET)           # inside every student's sandbox
    return [str(p) for p in paths]


def check_socket_paths(paths: list[str], setting: str) -> None:
    """Stop the hub with a clear message, not a kernel that cannot start, when a socket path is too long."""
    long = [p for p in paths if len(os.fsencode(p)) > SOCKET_PATH_MAX]
    if long:
        worst = max(long, key=len)
        raise SystemExit(f"{len(long)} Unix socket path(s) of the hub would be longer than {SOCKET_PATH_MAX} bytes, "
                         f"the most a socket's path may have; the longest ({len(worst)}): {worst}\n"
                         f"Choose a shorter {setting}, or shorter user names.")


def student_uids(students: list[str]) -> dict[str, int]:
    """The user id each student's sandboxed server runs as."""
    return {name: UID_BASE + i for i, name in enumerate(students)}


def read_roster(path: str | Path) -> list[dict]:
    """Rows of a roster CSV (id, last_name, first_name, email): the students, in order."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
    out = [r for r in rows if r.get("id")]
    if len({r["id"] for r in out}) != len(out):
        raise SystemExit(f"{path}: a student id appears twice")
    return out


def load_roster(course: Path, roster: list[dict], course_id: str) -> None:
    """Put the roster's names into the course's gradebook (the formgrader and grades.csv show them)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        for row in roster:
            gb.update_or_create_student(row["id"], last_name=row.get("last_name") or row["id"],
                                        first_name=row.get("first_name") or "", email=row.get("email") or None)


# -- students' storage: a full home is the student's own problem, not the machine's ---------------------

def _tool(name: str) -> str:
    """An OS tool by name, also where a service's PATH may not look (mkfs.ext4 lives in /usr/sbin)."""
    for folder in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        if os.access(os.path.join(folder, name), os.X_OK):
            return os.path.join(folder, name)
    return shutil.which(name) or name


def _mount(*args: str) -> None:
    proc = subprocess.run([_tool("mount"), *args], capture_output=True, text=True)
    if proc.returncode:
        raise OSError(f"mount {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")


def unmount(path: str | Path) -> None:
    """Unmount path if something is mounted there (lazily if still busy)."""
    if os.path.ismount(path):
        if subprocess.run([_tool("umount"), str(path)], capture_output=True).returncode:
            subprocess.run([_tool("umount"), "-l", str(path)], capture_output=True)


MOUNT_OPTIONS = "loop,nodev,nosuid,discard"     # discard: space freed in a home is freed on the host too
SLACK = 1 << 20      # the image's last MiB stays zeros: no signature a student writes there (md RAID) is probed


class HomeNotMoved(OSError):
    """A home from before the limit could not be moved into its filesystem (left as it was)."""


def _make_image(image: Path, size: int, uid: int) -> None:
    """A sparse file of `size` bytes holding an ext4 filesystem SLACK smaller, its root owned by uid."""
    with open(image, "xb") as f:
        f.truncate(size)
    os.chmod(image, 0o600)
    proc = subprocess.run([_tool("mkfs.ext4"), "-q", "-F", "-m", "0", "-E", f"root_owner={uid}:{uid}", str(image),
                           f"{max(size - SLACK, 0) // 1024}k"], capture_output=True, text=True)
    if proc.returncode:
        raise OSError(f"mkfs.ext4 {image}: {proc.stderr.strip() or proc.returncode}")


def _copy_in(image: Path, home: Path) -> None:
    """Copy a home's files into the filesystem in `image` (not yet mounted anywhere)."""
    staging = image.with_name(image.name + ".copying")
    staging.mkdir(exist_ok=True)
    try:
        _mount("-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(staging))
        try:
            os.rmdir(staging / "lost+found")   # the home may have a "lost+found" of its own
        except OSError:
            pass
        proc = subprocess.run([_tool("cp"), "-a", f"{home}/.", str(staging)], capture_output=True, text=True)
    finally:
        unmount(staging)
        staging.rmdir()
    if proc.returncode:
        raise HomeNotMoved(f"copying {home} into its own filesystem: {proc.stderr.strip()[:300]}")


def mount_home(image: Path, home: Path, size: int, uid: int) -> None:
    """Mount over `home` an ext4 filesystem of `size` bytes kept in the (sparse) file `image`, made on first use.

    The image gets its name only when it is whole (made, and an older home's files copied in); the older
    home's folder is then kept as <image>.before-limit. A home whose files do not fit raises HomeNotMoved and
    is left as it was."""
    if os.path.ismount(home):
        return
    home.mkdir(parents=True, exist_ok=True)
    fresh = not image.exists()
    if fresh:
        image.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(image.parent, 0o700)
        partial = image.with_name(image.name + ".new")
        unmount(image.with_name(image.name + ".new.copying"))   # left by a hub that stopped half-way
        partial.unlink(missing_ok=True)
        try:
            _make_image(partial, size, uid)
            moving = any(home.iterdir())
            if moving:
                _copy_in(partial, home)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.rename(image)
        if moving:
            home.rename(image.with_name(image.name + ".before-limit"))
            home.mkdir()
    _mount("-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(home))
    if fresh:                                  # mkfs's lost+found: the student's file browser need not show it
        try:                                   # (only before the student ever had the home: rmdir, no following)
            os.rmdir(home / "lost+found")
        except OSError:
            pass


class Relay:
    """A loopback TCP port in the hub's network namespace that forwards to a server's Unix socket.

    The socket lives in a folder its server's user writes: the relay forwards only to a socket held by that
    user (SO_PEERCRED), and closing the relay closes every connection it carries."""

    def __init__(self, socket_path: str, uid: int):
        self.socket_path, self.uid = socket_path, uid
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.writers: set = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    def _peer_uid(self, writer) -> int:
        sock = writer.get_extra_info("socket")
        _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        return uid

    async def _client(self, reader, writer):
        self.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            writer.close()
            self.writers.discard(writer)
            return
        self.writers.add(up_writer)
        if self._peer_uid(up_writer) != self.uid:       # a link or another user's socket put in its place
            for w in (writer, up_writer):
                w.close()
                self.writers.discard(w)
            return

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                try:
                    dst.close()
                except OSError:
                    pass
                self.writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        if self.server:
            self.server.close()
            self.server = None
        for writer in list(self.writers):          # open connections too: nothing of a stopped server stays queued
            writer.transport.abort()
        self.writers.clear()


class CourseSpawner(SimpleLocalProcessSpawner):
    instructors = List(Unicode(), config=True, help="hub user names of the instructors")
    students = List(Unicode(), config=True, help="hub user names of the students, in roster order")
    course_dir = Unicode(config=True, help="the nbgrader course directory (instructors' servers start here)")
    homes_dir = Unicode(config=True, help="students' home directories: <homes_dir>/<user>")
    run_dir = Unicode(config=True, help="sockets: <run_dir>/hub/, servers/<user>/ (runtime/<user>/: see below)")
    exchange_sockets = Unicode(config=True, help="the exchange service's socket folders: <this>/<student>/")
    instructor_config_dir = Unicode(config=True, help="JUPYTER_CONFIG_DIR of instructors' servers")
    timezone = Unicode("Asia/Tokyo", config=True, help="TZ of every server")
    expose_app = Bool(False, config=True, help="window.jupyterapp in the browser (browser tests only)")
    memory_limit = Integer(2 << 30, config=True, help="bytes of memory of a student's server and its kernels")
    pids_limit = Integer(256, config=True, help="processes + threads of a student's server and its kernels")
    cpu_limit = Integer(1, config=True, help="CPU cores of a student's server and its kernels")
    tmp_limit = Integer(256 << 20, config=True, help="bytes of a student's /tmp (RAM-backed)")
    home_limit = Integer(1 << 30, config=True, help="bytes of a student's home: a filesystem of its own (an "
                                                   "image under <homes_dir>/../home-images/), when the hub runs "
                                                   "as root; 0 for none")
    server_dir_limit = Integer(16 << 20, config=True, help="bytes of a student's server folder (RAM-backed)")
    kernel_runtime_dir = Unicode(config=True, help="instructors' JUPYTER_RUNTIME_DIR is <this>/<user>: their "
                                                   "kernels' IPC sockets, so a short path (see SOCKET_PATH_MAX)")

    @default("kernel_runtime_dir")
    def _default_kernel_runtime_dir(self):
        return str(Path(self.run_dir) / "runtime")

    _relay: Relay | None = None
    _cgroup = None

    @property
    def is_instructor(self) -> bool:
        return self.user.name in self.instructors

    @property
    def root(self) -> bool:
        return os.geteuid() == 0

    def _student_uid(self) -> int:
        return student_uids(self.students)[self.user.name]

    def _server_uid(self) -> int:
        """The user id the server runs as: a student's own as root, else the hub's."""
        return self._student_uid() if self.root and not self.is_instructor else os.geteuid()

    @property
    def home_inside(self) -> str:
        return f"/home/{self.user.name}"

    @default("home_dir")
    def _course_home_dir(self):   # where the server starts, as seen from outside
        return self.course_dir if self.is_instructor else os.path.join(self.homes_dir, self.user.name)

    def _server_dir(self) -> Path:
        return Path(self.run_dir) / "servers" / self.user.name

    def make_preexec_fn(self, name):
        home, cgroup = self.home_dir, self._cgroup

        def preexec():
            import resource

            os.chdir(home)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if cgroup is not None:
                cgroup.enter()

        return preexec

    def get_env(self):
        env = super().get_env()
        env["TZ"] = self.timezone
        # the server listens on a socket (--ServerApp.sock); this port only satisfies the hub extension
        env["JUPYTERHUB_SERVICE_URL"] = f"http://127.0.0.1:8888{self.server.base_url if self.server else '/'}"
        if self.is_instructor:
            env["JUPYTER_CONFIG_DIR"] = self.instructor_config_dir
            env["JUPYTER_RUNTIME_DIR"] = str(Path(self.kernel_runtime_dir) / self.user.name)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
            return env
        # a student: the hub's API through the socket bound into the sandbox, nothing of the host's paths
        inside = "http+unix://" + f"{HUB_INSIDE}/hub.sock".replace("/", "%2F")
        env["JUPYTERHUB_API_URL"] = f"{inside}/hub/api"
        env["JUPYTERHUB_ACTIVITY_URL"] = f"{inside}/hub/api/users/{self.user.escaped_name}/activity"
        env["HOME"] = self.home_inside
        env["USER"] = self.user.name
        env["JUPYTER_CONFIG_DIR"] = CONFIG_INSIDE       # read-only: Lab's own settings go to the home
        env["JUPYTERLAB_SETTINGS_DIR"] = f"{self.home_inside}/.jupyter/lab/user-settings"
        env["JUPYTERLAB_WORKSPACES_DIR"] = f"{self.home_inside}/.jupyter/lab/workspaces"
        env["PATH"] = f"{os.path.dirname(sandbox.python())}:/usr/local/bin:/usr/bin:/bin"
        env["SHELL"] = "/bin/bash"
        for name in ("JUPYTER_PATH", "PYTHONPATH", "JUPYTER_DATA_DIR", "VIRTUAL_ENV"):
            env.pop(name, None)
        env["JUPYTER_RUNTIME_DIR"] = RUNTIME_INSIDE    # short whatever the user name: kernels' IPC sockets
        env["PYTHONPATH"] = LIB_INSIDE                 # hubexchange (nbgrader), coursehub_student (the server)
        return env

    def get_args(self):
        args = super().get_args()
        args = [a for a in args if not a.startswith(("--port", "--ip"))]
        if self.expose_app:
            args.append("--LabApp.expose_app_in_browser=True")
        if self.is_instructor:
            args.append(f"--ServerApp.sock={self._server_dir() / 'server.sock'}")
            args.append(f"--LabApp.app_settings_dir={HERE / 'instructor' / 'lab-settings'}")   # no news pop-up
            if self.root:
                args.append("--ServerApp.allow_root=True")
        else:
            args += [f"--ServerApp.sock={SERVER_INSIDE}/server.sock",
                     f"--LabApp.app_settings_dir={CONFIG_INSIDE}/lab-settings"]
        return args

    # -- students' folders ------------------------------------------------------------------------------

    def _prepare_student(self) -> None:
        uid = self._server_uid()
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        if self.root and self.home_limit:
            try:
                mount_home(self._home_image(), home, self.home_limit, uid)
            except HomeNotMoved as exc:       # the student is not stuck: this start goes without the limit
                self.log.warning("%s's home keeps no size limit for now: %s (next start tries again)",
                                 self.user.name, exc)
            except OSError as exc:
                raise RuntimeError(f"{self.user.name}'s home could not get its size limit ({exc}); "
                                   "set NEURAL_HUB_HOME_MB=0 to run without one") from exc
        elif not self.root:
            self.log.warning("%s's home has no size limit: the hub does not run as root", self.user.name)
        os.chmod(home, 0o700)
        if self.root:
            os.chown(home, uid, uid)
        # nbgrader and the terminal look the user up: a passwd/group with this one student and root
        etc = self._etc_dir()
        etc.mkdir(parents=True, exist_ok=True)
        name = self.user.name
        (etc / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                    f"{name}:x:{uid}:{uid}:{name}:{self.home_inside}:/bin/bash\n", encoding="utf-8")
        (etc / "group").write_text(f"root:x:0:\n{name}:x:{uid}:\n", encoding="utf-8")
        for made in (etc / "passwd", etc / "group"):
            os.chmod(made, 0o644)                  # the hub's umask is 077; everyone reads these
        self._fresh_server_dir(uid, limit=self.server_dir_limit)

    def _fresh_server_dir(self, uid: int, limit: int = 0) -> None:
        folder = self._server_dir()
        unmount(folder)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, mode=0o700)
        if self.root:
            os.chown(folder, uid, uid)
            if limit:     # a student's server writes here: its socket, kernels' connection files and sockets
                _mount("-t", "tmpfs", "-o", f"size={limit},nr_inodes=4096,mode=0700,uid={uid},gid={uid},nodev,"
                       "nosuid,noexec", "tmpfs", str(folder))

    def _home_image(self) -> Path:
        return Path(self.homes_dir).parent / "home-images" / f"{self.user.name}.ext4"

    def _etc_dir(self) -> Path:
        return Path(self.homes_dir).parent / "sandbox-etc" / self.user.name

    def sandbox_args(self) -> list[str]:
        """bwrap's arguments (read from a pipe) and setpriv in front of jupyterhub-singleuser, for a student."""
        args = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", *sandbox.runtime_binds(tmp_size=self.tmp_limit)]
        for etc in ("/etc/hosts", "/etc/mime.types", "/etc/ssl", "/etc/inputrc", "/etc/terminfo"):
            if os.path.exists(etc):
                args += ["--ro-bind", etc, etc]
        args += ["--ro-bind", str(self._etc_dir() / "passwd"), "/etc/passwd",
                 "--ro-bind", str(self._etc_dir() / "group"), "/etc/group"]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "0755", "--dir", "/home", "--perms", "0755", "--dir", "/run",
                 "--bind", self.home_dir, self.home_inside,
                 "--ro-bind", str(Path(self.run_dir) / "hub"), HUB_INSIDE,
                 "--ro-bind", str(Path(self.exchange_sockets) / self.user.name), EXCHANGE_INSIDE,
                 "--bind", str(self._server_dir()), SERVER_INSIDE,
                 "--ro-bind", str(HERE / "student"), CONFIG_INSIDE,
                 "--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", LIB_INSIDE,
                 "--ro-bind", str(HERE / "hubexchange.py"), f"{LIB_INSIDE}/hubexchange.py",
                 "--ro-bind", str(HERE / "coursehub_student.py"), f"{LIB_INSIDE}/coursehub_student.py",
                 "--chdir", self.home_inside, "--hostname", "jupyter"]
        if not self.root:
            args[0:0] = ["--unshare-user"]
        return args

    async def start(self):
        singleuser = [sys.executable, "-m", "jupyterhub.singleuser"]
        if self.user.name not in self.instructors and self.user.name not in self.students:
            raise RuntimeError(f"{self.user.name} is neither an instructor nor a student of this course")
        self._relay = Relay(str(self._server_dir() / "server.sock"), self._server_uid())
        port = await self._relay.start()
        self.port = port
        if self.is_instructor:
            self._fresh_server_dir(os.geteuid())
            runtime = Path(self.kernel_runtime_dir) / self.user.name
            runtime.mkdir(parents=True, exist_ok=True)
            os.chmod(runtime, 0o700)
            self.cmd = singleuser
            self.notebook_dir = self.course_dir
            self.popen_kwargs = {}
            await super().start()
            return f"http://127.0.0.1:{port}"
        await asyncio.to_thread(self._prepare_student)      # mkfs, mount: never in the hub's event loop
        self._cgroup = sandbox.Cgroup.create(f"hub-{self.user.name}", self.memory_limit, self.pids_limit,
                                             float(self.cpu_limit))
        tail = (sandbox.drop_to(self._student_uid()) if self.root else []) + [sandbox.python(), "-m",
                                                                             "jupyterhub.singleuser"]
        fds = []
        try:
            args_read, args_write = os.pipe()
            fds.append(args_read)
            os.write(args_write, b"\0".join(a.encode() for a in self.sandbox_args()) + b"\0")
            os.close(args_write)
            bwrap = [sandbox.bwrap(), "--args", str(args_read)]
            program = sandbox.seccomp_program()
            if program is not None:
                seccomp_read, seccomp_write = os.pipe()
                fds.append(seccomp_read)
                os.write(seccomp_write, program)
                os.close(seccomp_write)
                bwrap += ["--seccomp", str(seccomp_read)]
            self.cmd = bwrap + tail
            self.notebook_dir = self.home_inside
            self.popen_kwargs = {"pass_fds": tuple(fds)}
            await super().start()
        finally:
            for fd in fds:
                os.close(fd)
        return f"http://127.0.0.1:{port}"

    async def stop(self, now=False):
        try:
            await super().stop(now=now)
        finally:
            if self._relay:
                self._relay.close()
                self._relay = None
            if self._cgroup is not None:
                self._cgroup.kill_all()
                self._cgroup.remove()
                self._cgroup = None
            if self.root and not self.is_instructor:
                await asyncio.to_thread(unmount, self._server_dir())
                await asyncio.to_thread(unmount, self.home_dir)


# -- grades.csv with the submission time and lateness ----------------------------------------------------

def lateness_rows(gradebook, timezone: str = "Asia/Tokyo") -> list[dict]:
    """One row per student and assignment: the submission time (the exchange's clock) and how late."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(timezone)
    rows = []
    for assignment in gradebook.assignments:
        for student in gradebook.students:
            try:
                sub = gradebook.find_submission(assignment.name, student.id)
            except Exception:  # noqa: BLE001 - nbgrader's MissingEntry: no submission
                rows.append({"assignment": assignment.name, "student_id": student.id, "submitted_at": "",
                             "late": "", "seconds_late": ""})
                continue
            when = sub.timestamp
            late = sub.total_seconds_late or 0
            rows.append({"assignment": assignment.name, "student_id": student.id,
                         "submitted_at": when.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz).isoformat(
                             sep=" ", timespec="seconds") if when else "",
                         "late": "yes" if late > 0 else "no", "seconds_late": f"{late:.0f}"})
    return rows


try:
    from nbgrader.plugins import CsvExportPlugin
except ImportError:  # pragma: no cover
    CsvExportPlugin = object


class LatenessCsvExport(CsvExportPlugin):
    """nbgrader export's CSV with three more columns: submitted_at (course time zone), late, seconds_late."""

    timezone = Unicode("Asia/Tokyo", config=True)

    def export(self, gradebook):
        super().export(gradebook)
        path = self.to or "grades.csv"
        extra = {(r["assignment"], r["student_id"]): r for r in lateness_rows(gradebook, self.timezone)}
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            return
        fields = list(rows[0].keys()) + ["submitted_at", "late", "seconds_late"]
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for row in rows:
                more = extra.get((row.get("assignment"), row.get("student_id")), {})
                writer.writerow({**row, **{k: more.get(k, "") for k in ("submitted_at", "late", "seconds_late")}})
