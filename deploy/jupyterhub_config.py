"""JupyterHub for this course on one machine: instructors and students as separate hub users.

    NEURAL_HUB_DIR=/srv/neural-hub jupyterhub -f deploy/jupyterhub_config.py     (as root)
    make hub                                                                     (local, prints addresses and logins)

Settings (environment variables):
  NEURAL_HUB_DIR          state: hub database, cookie secret, exchange store, home/<student>/, run/ (sockets),
                          course/ (a copy of this course, made on first start) [build/hub]; mode 700.
                          Socket paths (run/...) have at most 107 bytes: the hub stops and says so if not.
  NEURAL_HUB_COURSE       the nbgrader course directory instructors work in [$NEURAL_HUB_DIR/course]
  NEURAL_HUB_INSTRUCTORS  comma-separated hub user names [sensei]
  NEURAL_HUB_ROSTER       the class: a CSV with columns id,last_name,first_name,email [deploy/roster.csv];
                          ids are hub user names, names go to the gradebook (formgrader, grades.csv)
  NEURAL_HUB_STUDENTS     instead of a roster: comma-separated hub user names (no names)
  NEURAL_HUB_PASSWORD     the shared password of the test users (at least 8 characters) [required]
  NEURAL_HUB_IP / NEURAL_HUB_PORT   where the proxy listens [127.0.0.1 / 8000]
  NEURAL_HUB_API_PORT     the proxy's API (loopback, token) [8001]
  NEURAL_HUB_TIMEZONE     the course's time zone (submission times, due dates, servers' TZ) [Asia/Tokyo]
  NEURAL_HUB_QUOTA_MB / NEURAL_HUB_SUBMISSION_MB   exchange: stored per student / one submission [200 / 50]
  NEURAL_HUB_MEMORY_MB / NEURAL_HUB_PIDS / NEURAL_HUB_TMP_MB   per student server [2048 / 256 / 256]
  NEURAL_HUB_HOME_MB      a student's home: a filesystem of its own of this size, as root (0: none) [1024]
  NEURAL_HUB_PROXY        configurable-http-proxy [deploy/node_modules/.bin/configurable-http-proxy]

Who can do what:
- students (group "students") get a server in a sandbox of their own (deploy/coursehub.py) with the
  Assignment List and Validate; the formgrader, course list and assignment-creation extensions are
  off (deploy/student/). They reach their own home, their own socket of the exchange service and the
  hub's API, nothing else: no network, no other server or kernel.
- instructors (group "instructors") get a server in the course directory with the formgrader:
  release, collect, autograde (each submission in its own sandboxes, coursetools/grading), feedback.
  Their servers run with the hub's rights: give this role to instructors only.
- the exchange (deploy/exchange_service.py) is a service of the hub under a user id of its own: it
  takes submissions, stamps them with its own clock, keeps quotas; nobody else writes its files.
- nobody is a hub admin and no role lets one user reach another user's server.

The login here is a shared password (JupyterHub's SharedPasswordAuthenticator), for a local trial
and the tests. For a class, replace it with your institution's login (e.g. oauthenticator or
ltiauthenticator) and keep Authenticator.allowed_users / the groups below.
"""
import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

from coursehub import EXCHANGE_UID, check_socket_paths, load_roster, read_roster, socket_paths  # noqa: E402
from coursetools.common import make_scratch_course  # noqa: E402

c = get_config()  # noqa: F821
COURSE_ID = "neural-engine-unit00"


def _names(variable: str, default: str) -> list[str]:
    return [n.strip() for n in os.environ.get(variable, default).split(",") if n.strip()]


def _mb(variable: str, default: int) -> int:
    return int(os.environ.get(variable, str(default))) << 20


os.umask(0o077)          # everything the hub and the instructors' servers create: theirs only
state = Path(os.environ.get("NEURAL_HUB_DIR", HERE.parent / "build" / "hub")).resolve()
course = Path(os.environ.get("NEURAL_HUB_COURSE", state / "course")).resolve()
instructors = _names("NEURAL_HUB_INSTRUCTORS", "sensei")
if os.environ.get("NEURAL_HUB_STUDENTS"):
    roster = [{"id": name} for name in _names("NEURAL_HUB_STUDENTS", "")]
else:
    roster = read_roster(os.environ.get("NEURAL_HUB_ROSTER", HERE / "roster.csv"))
students = [row["id"] for row in roster]
password = os.environ.get("NEURAL_HUB_PASSWORD", "")
timezone = os.environ.get("NEURAL_HUB_TIMEZONE", "Asia/Tokyo")
if len(password) < 8:
    raise SystemExit("set NEURAL_HUB_PASSWORD (at least 8 characters): the test users' shared password")
if set(instructors) & set(students):
    raise SystemExit(f"a user cannot be both instructor and student: {sorted(set(instructors) & set(students))}")
root = os.geteuid() == 0

# -- the machine's folders: all under the state folder, readable by the hub's account only ---------------
run = state / "run"
exchange_store, exchange_sockets = state / "exchange-store", run / "exchange"
# Instructors' kernels talk over Unix sockets, <runtime>/<user>/kernel-<uuid>-ipc-<n>, and a socket's path has
# at most 107 bytes: their runtime folder is a short one of its own (mode 700, removed when the hub stops),
# wherever the state folder is. Every other socket path is checked here, before anything starts.
kernel_runtime = Path(tempfile.mkdtemp(prefix="neural-hub-", dir="/run" if root and os.access("/run", os.W_OK)
                                       else None))
atexit.register(shutil.rmtree, kernel_runtime, True)
check_socket_paths(socket_paths(run, kernel_runtime, exchange_sockets, instructors, students), "NEURAL_HUB_DIR")
state.mkdir(parents=True, exist_ok=True)
os.chmod(state, 0o700)
for folder, mode in ((run, 0o700), (run / "hub", 0o755), (run / "servers", 0o700),
                     (state / "home", 0o700), (state / "sandbox-etc", 0o700)):
    folder.mkdir(exist_ok=True)
    os.chmod(folder, mode)
if not (course / "nbgrader_config.py").is_file():
    make_scratch_course(course)
os.chmod(course, 0o700)
load_roster(course, roster, COURSE_ID)

instructor_config = state / "instructor-config"
instructor_config.mkdir(exist_ok=True)
(instructor_config / "nbgrader_config.py").write_text(
    "import sys\n"
    f"sys.path.insert(0, {str(HERE)!r})\n"
    "c = get_config()\n"
    f"c.CourseDirectory.root = {str(course)!r}\n"
    f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
    f"c.HubExchange.socket = {str(exchange_sockets / 'instructor' / 'exchange.sock')!r}\n"
    f"c.Exchange.timezone = {timezone!r}\n"
    f"c.NbGraderAPI.timezone = {timezone!r}\n"     # the formgrader's times and its due-date field

    "c.ExchangeFactory.list = 'hubexchange.HubList'\n"
    "c.ExchangeFactory.release_assignment = 'hubexchange.HubReleaseAssignment'\n"
    "c.ExchangeFactory.collect = 'hubexchange.HubCollect'\n"
    "c.ExchangeFactory.release_feedback = 'hubexchange.HubReleaseFeedback'\n"
    "c.ExportApp.plugin_class = 'coursehub.LatenessCsvExport'\n"
    f"c.LatenessCsvExport.timezone = {timezone!r}\n"
    "c.KernelManager.transport = 'ipc'\n", encoding="utf-8")
(instructor_config / "jupyter_server_config.json").write_text(json.dumps({
    "ServerApp": {
        # the formgrader opens inside Lab (Nbgrader -> Formgrader): framing by this server itself only
        "tornado_settings": {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}},
        "jpserver_extensions": {"coursehub_instructor": True},
    },
    "KernelManager": {"transport": "ipc"},
    "CourseInstructor": {"timezone": timezone},
}, indent=1), encoding="utf-8")

# -- the exchange: a service of the hub, under a user id of its own --------------------------------------
service = [sys.executable, str(HERE / "exchange_service.py"), "--store", str(exchange_store),
           "--sockets", str(exchange_sockets), "--students", ",".join(students), "--timezone", timezone,
           "--quota", str(_mb("NEURAL_HUB_QUOTA_MB", 200)),
           "--max-submission", str(_mb("NEURAL_HUB_SUBMISSION_MB", 50))]
if root:
    service += ["--sandbox-uid", str(EXCHANGE_UID)]
c.JupyterHub.services = [{"name": "exchange", "command": service, "display": False}]

# -- the hub --------------------------------------------------------------------------------------------
c.JupyterHub.ip = os.environ.get("NEURAL_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("NEURAL_HUB_PORT", "8000"))
hub_socket = "http+unix://" + str(run / "hub" / "hub.sock").replace("/", "%2F")
c.JupyterHub.hub_bind_url = hub_socket      # the hub's API: a Unix socket, bound into students' sandboxes
c.JupyterHub.hub_connect_url = hub_socket
c.JupyterHub.hub_socket_mode = 0o666        # in run/hub/, which only root and the sandboxes reach
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(os.environ.get('NEURAL_HUB_API_PORT', '8001'))}"
c.ConfigurableHTTPProxy.command = [os.environ.get(
    "NEURAL_HUB_PROXY", str(HERE / "node_modules" / ".bin" / "configurable-http-proxy"))]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
c.JupyterHub.cleanup_servers = True

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = password
c.Authenticator.allowed_users = set(instructors) | set(students)
c.JupyterHub.load_groups = {"instructors": {"users": instructors}, "students": {"users": students}}

c.JupyterHub.spawner_class = "coursehub.CourseSpawner"
c.CourseSpawner.instructors = instructors
c.CourseSpawner.students = students
c.CourseSpawner.course_dir = str(course)
c.CourseSpawner.homes_dir = str(state / "home")
c.CourseSpawner.run_dir = str(run)
c.CourseSpawner.kernel_runtime_dir = str(kernel_runtime)
c.CourseSpawner.exchange_sockets = str(exchange_sockets)
c.CourseSpawner.instructor_config_dir = str(instructor_config)
c.CourseSpawner.timezone = timezone
c.CourseSpawner.memory_limit = _mb("NEURAL_HUB_MEMORY_MB", 2048)
c.CourseSpawner.pids_limit = int(os.environ.get("NEURAL_HUB_PIDS", "256"))
c.CourseSpawner.tmp_limit = _mb("NEURAL_HUB_TMP_MB", 256)
c.CourseSpawner.home_limit = home_limit = _mb("NEURAL_HUB_HOME_MB", 1024)
free = shutil.disk_usage(state).free
if root and home_limit and free < len(students) * home_limit:
    # the homes' images are sparse: they take what students write, up to their size
    print(f"[neural-hub] warning: {len(students)} homes of {home_limit >> 20} MiB may take "
          f"{len(students) * home_limit / 2**30:.1f} GiB; {state} has {free / 2**30:.1f} GiB free. "
          "A full disk stops every home and the hub's database.", file=sys.stderr)
c.CourseSpawner.expose_app = os.environ.get("NEURAL_HUB_EXPOSE_APP") == "1"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
