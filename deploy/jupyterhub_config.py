"""JupyterHub for this course on one machine: instructors and students as separate hub users.

    NEURAL_HUB_DIR=/srv/neural-hub jupyterhub -f deploy/jupyterhub_config.py     (as root)
    make hub                                                                     (local, prints logins)

Settings (environment variables):
  NEURAL_HUB_DIR          state: hub database, cookie secret, exchange/, home/<student>/,
                          course/ (a copy of this course, made on first start) [build/hub]
  NEURAL_HUB_COURSE       the nbgrader course directory instructors work in [$NEURAL_HUB_DIR/course]
  NEURAL_HUB_INSTRUCTORS  comma-separated hub user names [sensei]
  NEURAL_HUB_STUDENTS     comma-separated hub user names, in a fixed order (user ids follow it) [aoki,baba]
  NEURAL_HUB_PASSWORD     the shared password of the test users (at least 8 characters) [required]
  NEURAL_HUB_IP / NEURAL_HUB_PORT            where the proxy listens [127.0.0.1 / 8000]
  NEURAL_HUB_API_PORT / NEURAL_HUB_HUB_PORT  the proxy's API and the hub's own port [8001 / 8081]
  NEURAL_HUB_PROXY        configurable-http-proxy [deploy/node_modules/.bin/configurable-http-proxy]

Who can do what:
- students (group "students") get a server in a sandbox of their own (deploy/coursehub.py) with the
  Assignment List and Validate; the formgrader, course list and assignment-creation extensions are
  off (deploy/student/). They reach the exchange and their own home, nothing else.
- instructors (group "instructors") get a server in the course directory with the formgrader:
  release, collect, autograde (each submission in its own sandboxes, coursetools/grading), feedback.
  Their servers run with the hub's rights: give this role to instructors only.
- nobody is a hub admin and no role lets one user reach another user's server.

The login here is a shared password (JupyterHub's SharedPasswordAuthenticator), for a local trial
and the tests. For a class, replace it with your institution's login (e.g. oauthenticator or
ltiauthenticator) and keep Authenticator.allowed_users / the groups below.
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

from coursehub import student_uids  # noqa: E402
from coursetools.common import make_scratch_course  # noqa: E402

c = get_config()  # noqa: F821


def _names(variable: str, default: str) -> list[str]:
    return [n.strip() for n in os.environ.get(variable, default).split(",") if n.strip()]


state = Path(os.environ.get("NEURAL_HUB_DIR", HERE.parent / "build" / "hub")).resolve()
course = Path(os.environ.get("NEURAL_HUB_COURSE", state / "course")).resolve()
instructors = _names("NEURAL_HUB_INSTRUCTORS", "sensei")
students = _names("NEURAL_HUB_STUDENTS", "aoki,baba")
password = os.environ.get("NEURAL_HUB_PASSWORD", "")
if len(password) < 8:
    raise SystemExit("set NEURAL_HUB_PASSWORD (at least 8 characters): the test users' shared password")
if set(instructors) & set(students):
    raise SystemExit(f"a user cannot be both instructor and student: {sorted(set(instructors) & set(students))}")

# -- the machine's folders ---------------------------------------------------------------------------
state.mkdir(parents=True, exist_ok=True)
os.chmod(state, 0o711)
exchange = state / "exchange"
exchange.mkdir(exist_ok=True)
os.chmod(exchange, 0o1777)         # nbgrader's exchange: everyone may create, only owners change
(state / "home").mkdir(exist_ok=True)
os.chmod(state / "home", 0o711)    # a student can enter only their own home (mode 700, own uid)
if not (course / "nbgrader_config.py").is_file():
    make_scratch_course(course)
instructor_config = state / "instructor-config"
instructor_config.mkdir(exist_ok=True)
# Collect refuses a submission filed under another student's name (coursehub.OwnerCheckedCollect). Without
# root, every server runs under the hub's own user id: no separate ids, so that check is off.
uids = student_uids(students) if os.geteuid() == 0 else {}
(instructor_config / "nbgrader_config.py").write_text(
    "import sys\n"
    f"sys.path.insert(0, {str(HERE)!r})\n"
    "c = get_config()\n"
    f"c.Exchange.root = {str(exchange)!r}\n"
    f"c.CourseDirectory.root = {str(course)!r}\n"
    "c.ExchangeFactory.collect = 'coursehub.OwnerCheckedCollect'\n"
    f"c.OwnerCheckedCollect.uids = {uids!r}\n"
    # nbgrader's own owner check looks the id up in /etc/passwd, where sandbox ids have no name: it would
    # warn about every honest submission; OwnerCheckedCollect does the check with the hub's ids instead.
    f"c.ExchangeCollect.check_owner = {not uids!r}\n", encoding="utf-8")

# -- the hub --------------------------------------------------------------------------------------------
c.JupyterHub.ip = os.environ.get("NEURAL_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("NEURAL_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("NEURAL_HUB_HUB_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(os.environ.get('NEURAL_HUB_API_PORT', '8001'))}"
c.ConfigurableHTTPProxy.command = [os.environ.get(
    "NEURAL_HUB_PROXY", str(HERE / "node_modules" / ".bin" / "configurable-http-proxy"))]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = password
c.Authenticator.allowed_users = set(instructors) | set(students)
c.JupyterHub.load_groups = {"instructors": {"users": instructors}, "students": {"users": students}}

c.JupyterHub.spawner_class = "coursehub.CourseSpawner"
c.CourseSpawner.instructors = instructors
c.CourseSpawner.students = students
c.CourseSpawner.course_dir = str(course)
c.CourseSpawner.exchange_dir = str(exchange)
c.CourseSpawner.homes_dir = str(state / "home")
c.CourseSpawner.instructor_config_dir = str(instructor_config)
c.CourseSpawner.expose_app = os.environ.get("NEURAL_HUB_EXPOSE_APP") == "1"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
