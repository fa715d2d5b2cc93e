"""The spawner of this course's JupyterHub (deploy/jupyterhub_config.py).

One machine, users without OS accounts (the hub runs as root):

- an **instructor**'s server runs with the hub's rights in the course directory (the formgrader,
  `nbgrader_config.py`, the gradebook; autograde puts every submission in its own sandbox, as
  `make autograde` does);
- a **student**'s server runs in a bubblewrap sandbox of its own: a user id of its own (62000 + the
  student's position in the class list; no capabilities, no_new_privs), a read-only Python runtime,
  its own home directory (mode 700, the only writable place besides /tmp and the exchange), the
  nbgrader exchange, and the student configuration of deploy/student/. Nothing else of the machine:
  no course directory, no other student's home, no hub state. The network is the host's (the proxy
  must reach the server); every request to a server still needs that user's hub login.

With real OS accounts (PAM, LDAP) use JupyterHub's LocalProcessSpawner instead and give students
the same Jupyter configuration; on Kubernetes see deploy/z2jh-values.yaml.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from nbgrader.exchange.default.collect import ExchangeCollect
from traitlets import Bool, Dict, List, Unicode, default

HERE = Path(__file__).resolve().parent
COURSE_ROOT = HERE.parent
if str(COURSE_ROOT) not in sys.path:
    sys.path.insert(0, str(COURSE_ROOT))

from coursetools.grading import sandbox  # noqa: E402

UID_BASE = 62000                                 # student i of the class list runs as UID_BASE + i
EXCHANGE_INSIDE = "/srv/nbgrader/exchange"      # where students see the exchange
CONFIG_INSIDE = "/etc/jupyter-course"            # deploy/student/, students' JUPYTER_CONFIG_DIR


def student_uids(students: list[str]) -> dict[str, int]:
    """The user id each student's sandboxed server runs as (spawner and collect's owner check)."""
    return {name: UID_BASE + i for i, name in enumerate(students)}


class CourseSpawner(SimpleLocalProcessSpawner):
    instructors = List(Unicode(), config=True, help="hub user names of the instructors")
    students = List(Unicode(), config=True, help="hub user names of the students, in a fixed order")
    course_dir = Unicode(config=True, help="the nbgrader course directory (instructors' servers start here)")
    exchange_dir = Unicode(config=True, help="nbgrader's exchange root, shared by everyone")
    homes_dir = Unicode(config=True, help="students' home directories: <homes_dir>/<user>")
    instructor_config_dir = Unicode(config=True, help="JUPYTER_CONFIG_DIR of instructors' servers")
    expose_app = Bool(False, config=True, help="window.jupyterapp in the browser (browser tests only)")

    @property
    def is_instructor(self) -> bool:
        return self.user.name in self.instructors

    def _student_uid(self) -> int:
        return student_uids(self.students)[self.user.name]

    @property
    def home_inside(self) -> str:
        return f"/home/{self.user.name}"

    @default("home_dir")
    def _course_home_dir(self):   # where the server starts, as seen from outside
        return self.course_dir if self.is_instructor else os.path.join(self.homes_dir, self.user.name)

    def make_preexec_fn(self, name):
        home = self.home_dir

        def preexec():
            os.chdir(home)

        return preexec

    def user_env(self, env):
        env = super().user_env(env)
        if self.is_instructor:
            env["JUPYTER_CONFIG_DIR"] = self.instructor_config_dir
        else:
            env["HOME"] = self.home_inside
            env["JUPYTER_CONFIG_DIR"] = CONFIG_INSIDE       # read-only: Lab's own settings go to the home
            env["JUPYTERLAB_SETTINGS_DIR"] = f"{self.home_inside}/.jupyter/lab/user-settings"
            env["JUPYTERLAB_WORKSPACES_DIR"] = f"{self.home_inside}/.jupyter/lab/workspaces"
            for name in ("JUPYTER_PATH", "PYTHONPATH", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR"):
                env.pop(name, None)
        return env

    def get_args(self):
        args = super().get_args()
        if self.expose_app:
            args.append("--LabApp.expose_app_in_browser=True")
        if self.is_instructor and os.geteuid() == 0:
            args.append("--ServerApp.allow_root=True")
        return args

    def _prepare_home(self) -> None:
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        uid = self._student_uid() if os.geteuid() == 0 else os.geteuid()
        if os.geteuid() == 0:
            os.chown(home, uid, uid)
        # nbgrader names a submission after pwd.getpwuid(os.getuid()): the sandbox gets a passwd and
        # group file with this one student (under their hub name) and root.
        etc = self._etc_dir()
        etc.mkdir(parents=True, exist_ok=True)
        name = self.user.name
        (etc / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                    f"{name}:x:{uid}:{uid}:{name}:{self.home_inside}:/bin/bash\n", encoding="utf-8")
        (etc / "group").write_text(f"root:x:0:\n{name}:x:{uid}:\n", encoding="utf-8")

    def _etc_dir(self) -> Path:
        return Path(self.homes_dir).parent / "sandbox-etc" / self.user.name

    def sandbox_command(self) -> list[str]:
        """bwrap + setpriv in front of jupyterhub-singleuser, for a student."""
        cmd = [sandbox.bwrap(), "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
               "--die-with-parent", "--new-session", *sandbox.runtime_binds()]
        for etc in ("/etc/hosts", "/etc/mime.types", "/etc/ssl"):
            if os.path.exists(etc):
                cmd += ["--ro-bind", etc, etc]
        cmd += ["--ro-bind", str(self._etc_dir() / "passwd"), "/etc/passwd",
                "--ro-bind", str(self._etc_dir() / "group"), "/etc/group"]
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "0755", "--dir", "/home", "--perms", "0755", "--dir", "/srv",
                "--perms", "0755", "--dir", "/srv/nbgrader",
                "--bind", self.home_dir, self.home_inside,
                "--bind", self.exchange_dir, EXCHANGE_INSIDE,
                "--ro-bind", str(HERE / "student"), CONFIG_INSIDE,
                "--chdir", self.home_inside, "--hostname", "jupyter"]
        if os.geteuid() == 0:
            cmd += sandbox.drop_to(self._student_uid())
        else:
            cmd[1:1] = ["--unshare-user"]
        return cmd

    async def start(self):
        singleuser = [sys.executable, "-m", "jupyterhub.singleuser"]
        if self.is_instructor:
            self.cmd = singleuser
            self.notebook_dir = self.course_dir
        elif self.user.name in self.students:
            self._prepare_home()
            self.cmd = self.sandbox_command() + singleuser
            self.notebook_dir = self.home_inside
        else:
            raise RuntimeError(f"{self.user.name} is neither an instructor nor a student of this course")
        return await super().start()


# -- collect: a submission counts only under the name of the user who wrote it ------------------------

class OwnerCheckedCollect(ExchangeCollect):
    """nbgrader's collect, refusing submissions filed under another student's name.

    A student's server can write any folder name into the exchange's inbound, including
    `<classmate>+<assignment>+<later timestamp>`, and nbgrader's collect would take it as the
    classmate's latest submission (its owner check only logs a warning, and finds no name for
    sandbox user ids). Here every inbound folder of the assignment whose owner is not the user id
    of the student it names is moved to <exchange>/<course>/quarantine/ (readable by the
    instructor only) and reported as an error before nbgrader collects the rest.
    """

    uids = Dict(config=True, help="hub user name -> the user id its sandboxed server runs as")

    def init_src(self):
        course_path = os.path.join(self.root, self.coursedir.course_id)
        inbound = os.path.join(course_path, "inbound")
        quarantine = os.path.join(course_path, "quarantine")
        for path in glob.glob(os.path.join(inbound, f"*+{self.coursedir.assignment_id}+*")):
            claimed = os.path.basename(path).rsplit("+", 3)[0]
            owner = os.lstat(path).st_uid
            if self.uids and self.uids.get(claimed) != owner:
                os.makedirs(quarantine, mode=0o700, exist_ok=True)
                shutil.move(path, os.path.join(quarantine, os.path.basename(path)))
                self.log.error("%s claims to be a submission of %r but was written by user id %s: moved to %s, "
                               "not collected", os.path.basename(path), claimed, owner, quarantine)
        super().init_src()
