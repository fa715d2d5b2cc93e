"""Hostile students on the course hub (issue 21): every attack is driven from a student's own server.

`make test-hub` runs this with test_hub.py. One hub, an instructor (sensei), an honest student (aoki) and
three hostile ones (baba, chiba, doi). Each attack is code a student runs in a kernel of their own server
(what a cell or a terminal can do) or, for the exchange, through their Assignment List; the instructor
works through the formgrader's API. Every case checks its expected outcome on the machine afterwards.

The attack code tries the old route too (nbgrader's shared exchange folder, /srv/nbgrader/exchange), so
the same file run against the deployment of commit 8782606 shows each attack working there:
NEURAL_HUB_CONFIG=/elsewhere/deploy/jupyterhub_config.py points the fixture at another deployment.

    case                      attack                                                       expected now
    symlink_submission        baba submits symlinks to source/, the cookie secret, the    nothing of them is collected
                              gradebook
    bad_name                  chiba files a submission whose time is not a time            aoki's 72 is collected; collect completes
    oversize_keeps_earlier    chiba sends 110 MB after an earlier copy was collected       aoki's 71 collected; chiba's earlier copy kept
    missing_secret            doi's submission has no submission_secret.txt                feedback of 74 released; aoki receives it
    exchange_quota            chiba stores 90 MB in the exchange (quota 60 MB)             at most the quota is stored
    forged_time               doi files a submission dated two days earlier                the collected time is when it arrived
    replace_classmate         baba overwrites aoki's submission (its name leaked)          aoki's own notebook is collected
    kernel_snooping           baba subscribes to every kernel port it can find              no output of aoki's or sensei's kernel
    memory / processes / tmp  3 GB allocated, 600 threads, 400 MB in /tmp                  refused (2 GB, 256, 256 MB limits)
    home / server folder      400 MB into the home, 100 MB into the server's folder         refused (160 MB in the test, 16 MB)
    local_accounts            another account of the machine reads course and hub state    permission denied
    proc_paths                baba reads /proc/*/cmdline and environ                       no host path of the hub's state
"""
from __future__ import annotations

import calendar
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port, running
from coursetools.common import venv_env
from hubclient import HubUser

pytestmark = pytest.mark.hub

PASSWORD = "hub-test-password"
COURSE = "neural-engine-unit00"
INSTRUCTOR, HONEST = "sensei", "aoki"
STUDENTS = ["aoki", "baba", "chiba", "doi"]
A70, A71, A72, A73, A74 = ("70_derivatives", "71_chain_rule", "72_computational_graph", "73_backprop_scalar",
                           "74_backprop_matrix")
CONFIG = Path(os.environ.get("NEURAL_HUB_CONFIG", ROOT / "deploy" / "jupyterhub_config.py"))
PROXY = CONFIG.parent / "node_modules" / ".bin" / "configurable-http-proxy"
OLD_EXCHANGE = "/srv/nbgrader/exchange/" + COURSE     # where students saw nbgrader's shared exchange before

# A student's own view of the old, shared exchange: write a submission folder straight into inbound.
PLANT = '''
import os, datetime
def plant(name, files, links=None):
    """files: name -> bytes; links: name -> target. Returns what happened."""
    inbound = "{old}/inbound"
    if not os.access(inbound, os.W_OK):
        return "no writable exchange folder"
    path = os.path.join(inbound, name)
    os.makedirs(path, exist_ok=True)
    for k, v in files.items():
        with open(os.path.join(path, k), "wb") as f:
            f.write(v)
    for k, v in (links or {{}}).items():
        os.symlink(v, os.path.join(path, k))
    os.chmod(path, 0o777)
    return "planted " + name
def stamp(delta_hours=0):
    return (datetime.datetime.utcnow() + datetime.timedelta(hours=delta_hours)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
'''.format(old=OLD_EXCHANGE)


# A student's own view of a limit: write a file MB by MB until refused; the MB written (the file removed after).
FILL = '''
import os
def fill(path, limit_mb):
    written = 0
    try:
        with open(path, "wb") as f:
            for _ in range(limit_mb):
                f.write(b"h" * 2**20)
                f.flush()
                os.fsync(f.fileno())
                written += 2**20
    except OSError as e:
        print(type(e).__name__, e.errno)
    finally:
        if os.path.exists(path):
            os.remove(path)
    return written >> 20
'''


class Scenario:
    """Everything the attacks and the instructor did, for the cases to check."""

    def __init__(self, state: Path, url: str):
        self.state, self.url = state, url
        self.course = state / "course"
        self.out: dict[str, str] = {}
        self.api: dict[str, dict] = {}
        self.times: dict[str, float] = {}


def assignment_action(user: HubUser, action: str, assignment: str) -> dict:
    r = user.api("POST", f"/assignments/{action}", json={"course_id": COURSE, "assignment_id": assignment})
    try:
        return r.json() if isinstance(r.json(), dict) else {"success": True, "value": r.json()}
    except ValueError:
        return {"success": False, "value": r.text[:500]}


def formgrader(user: HubUser, path: str) -> dict:
    r = user.api("POST", f"/formgrader/api/{path}", timeout=900)
    try:
        return json.loads(r.text)
    except ValueError:
        return {"success": False, "error": f"HTTP {r.status_code}: {r.text[:300]}"}


def set_duedate(course: Path, assignment: str, hours_from_now: float) -> None:
    import datetime as dt

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE) as gb:
        gb.update_or_create_assignment(assignment, duedate=dt.datetime.utcnow() + dt.timedelta(hours=hours_from_now))


def exchange_bytes(state: Path, student: str) -> int:
    """Bytes a student got stored in the exchange, whichever layout the deployment has."""
    total = 0
    for top in state.iterdir():
        if not top.name.startswith("exchange") or not top.is_dir():
            continue
        for dirpath, _, filenames in os.walk(top):
            if f"/{student}+" not in dirpath + "/" and f"/{student}/" not in dirpath + "/" \
                    and not dirpath.endswith(f"/{student}"):
                continue
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    total += os.lstat(path).st_size
    return total


@pytest.fixture(scope="module")
def scenario():
    if not PROXY.exists():
        pytest.fail("configurable-http-proxy is missing: run `make test-hub` (it installs deploy/package-lock.json)")
    (ROOT / "build").mkdir(exist_ok=True)
    # a folder other accounts of the machine can pass through, as /srv is
    state = Path(tempfile.mkdtemp(prefix="hub-hostile-", dir=ROOT / "build"))
    os.chmod(state, 0o755)
    port = free_port()
    env = venv_env(NEURAL_HUB_DIR=str(state), NEURAL_HUB_PASSWORD=PASSWORD, NEURAL_HUB_PORT=str(port),
                   NEURAL_HUB_API_PORT=str(free_port()), NEURAL_HUB_HUB_PORT=str(free_port()),
                   NEURAL_HUB_INSTRUCTORS=INSTRUCTOR, NEURAL_HUB_STUDENTS=",".join(STUDENTS),
                   NEURAL_HUB_QUOTA_MB="60", NEURAL_HUB_SUBMISSION_MB="20", NEURAL_HUB_HOME_MB="160")
    url = f"http://127.0.0.1:{port}"
    log = ROOT / "build" / f"{state.name}.log"
    try:
        with running([sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], state, env, log, url + "/hub/health",
                     "JupyterHub"):
            yield play(Scenario(state, url))
    finally:
        shutil.rmtree(state, ignore_errors=True)


def play(s: Scenario) -> Scenario:
    t0 = time.monotonic()
    users = {name: HubUser(s.url, name, PASSWORD) for name in [INSTRUCTOR, *STUDENTS]}
    for user in users.values():
        user.start_server()
    sensei, aoki, baba, chiba, doi = (users[n] for n in (INSTRUCTOR, *STUDENTS))
    for a in (A70, A71, A72, A73, A74):
        s.api[f"generate {a}"] = formgrader(sensei, f"assignment/{a}/assign")
        s.api[f"release {a}"] = formgrader(sensei, f"assignment/{a}/release")
    for name in STUDENTS:
        for a in (A70, A71, A72, A73, A74):
            assignment_action(users[name], "fetch", a)
    for user in (aoki, baba, chiba, doi):
        user.run(PLANT)

    # -- kernels that print, for a classmate to try to listen to ------------------------------------------
    chatter = 'import threading, time\ndef _talk():\n    for _ in range(3000):\n        print("{}", flush=True)\n' \
              '        time.sleep(0.1)\nthreading.Thread(target=_talk, daemon=True).start()\nprint("talking")'
    aoki.run(chatter.format("AOKI-KERNEL-OUTPUT"))
    sensei.run(chatter.format("SENSEI-KERNEL-OUTPUT"))

    # -- aoki submits 70..74 honestly (73 after one more saved edit, so its content is aoki's own) -------------
    aoki.run(f"import json\np = '{A73}/{A73}.ipynb'\nnb = json.load(open(p))\n"
             f"nb['cells'][0]['source'] = 'aoki was here\\n' + ''.join(nb['cells'][0]['source'])\n"
             f"json.dump(nb, open(p, 'w'))\nprint('edited')")
    for a in (A72, A73, A74):
        s.api[f"aoki submit {a}"] = assignment_action(aoki, "submit", a)

    # -- chiba: an earlier honest 71, collected; then 110 MB; a folder whose time is not a time (72) ------------
    s.api["chiba submit 71"] = assignment_action(chiba, "submit", A71)
    s.api["collect 71 (1)"] = formgrader(sensei, f"assignment/{A71}/collect")
    earlier = s.course / "submitted" / "chiba" / A71 / f"{A71}.ipynb"
    s.out["chiba 71 earlier size"] = str(earlier.stat().st_size if earlier.is_file() else -1)
    s.out["oversize"] = chiba.run(f'''
big = b"x" * (110 * 2**20)
with open("{A71}/{A71}.ipynb", "wb") as f:
    f.write(big)
print(plant("chiba+{A71}+" + stamp() + "+big", {{"{A71}.ipynb": big, "timestamp.txt": stamp().encode()}}))
''')
    s.api["chiba submit 71 big"] = assignment_action(chiba, "submit", A71)
    s.api["aoki submit 71"] = assignment_action(aoki, "submit", A71)
    s.out["bad name"] = chiba.run(f'print(plant("chiba+{A72}+not a time+x", {{"{A72}.ipynb": b"{{}}"}}))')

    # -- baba: symlinks to the course's secrets as a submission of 73 ---------------------------------------------
    state = str(s.state)
    links = {f"{A73}.ipynb": f"{state}/course/source/{A73}/{A73}.ipynb", "cookie.txt": f"{state}/jupyterhub_cookie_secret",
             "gradebook.db": f"{state}/course/gradebook.db"}
    s.out["symlinks"] = baba.run(f'''
import os
links = {links!r}
print(plant("baba+{A73}+" + stamp() + "+links", {{"timestamp.txt": stamp().encode()}}, links))
for name, target in links.items():                 # or, where that is closed, through nbgrader's own submit
    path = os.path.join("{A73}", name)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)
print("linked")
''')
    if "planted" not in s.out["symlinks"]:
        s.api["baba submit 73 links"] = assignment_action(baba, "submit", A73)

    # -- baba overwrites aoki's submission of 73 (its name leaked) --------------------------------------------------
    leaked = [str(p) for p in s.state.glob(f"exchange*/**/aoki*{A73}*")] + \
             [str(p) for p in s.state.glob(f"exchange*/**/aoki/{A73}/*")]
    inside = [p.replace(str(s.state / "exchange"), OLD_EXCHANGE.rsplit("/", 1)[0]) for p in leaked]
    s.out["replace"] = baba.run(f'''
import os, glob, json, urllib.parse, socket, http.client
done = []
for folder in {leaked + inside!r}:
    target = os.path.join(folder, "{A73}.ipynb")
    for path in (target, os.path.join(folder, "files", "{A73}.ipynb")):
        try:
            if os.path.lexists(path):
                os.remove(path)             # a folder of mode 0777 without the sticky bit lets anyone do this
            with open(path, "wb") as f:
                f.write(b'{{"cells": [], "replaced": "by baba"}}')
            done.append("overwrote " + path)
        except OSError as e:
            done.append(type(e).__name__)
sock = "/run/course/exchange.sock"
if os.path.exists(sock):
    class C(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sock)
    for method, path in (("DELETE", "/inbound/{A73}/aoki"), ("PUT", "/feedback/aoki/{A73}/x"), ("GET", "/inbound/{A73}")):
        c = C("x"); c.request(method, path, body=b"{{}}"); done.append(f"{{method}} {{path}} -> {{c.getresponse().status}}")
print(done)
''')

    # -- doi: 74 without a submission secret; 70 dated two days back, after the due date -------------------------
    s.api["doi submit 74"] = assignment_action(doi, "submit", A74)
    s.out["missing secret"] = doi.run(f'''
import glob, os
print(plant("doi+{A74}+" + stamp() + "+nosecret", {{"{A74}.ipynb": open("{A74}/{A74}.ipynb", "rb").read(),
                                                    "timestamp.txt": stamp().encode()}}))
for path in glob.glob("{OLD_EXCHANGE}/inbound/doi+{A74}+*/submission_secret.txt"):
    try:
        os.remove(path); print("removed", path)
    except OSError as e:
        print(type(e).__name__)
''')
    set_duedate(s.course, A70, -1)
    s.times["doi 70 attack"] = time.time()
    s.out["forged time"] = doi.run(f'''
nb = open("{A70}/{A70}.ipynb", "rb").read()
print(plant("doi+{A70}+" + stamp(-48) + "+early", {{"{A70}.ipynb": nb, "timestamp.txt": stamp(-48).encode()}}))
''')
    if "planted" not in s.out["forged time"]:         # where the exchange folder is closed: the only way in
        s.api["doi submit 70"] = assignment_action(doi, "submit", A70)

    # -- the instructor collects and grades what the cases need ---------------------------------------------------
    for a in (A70, A71, A72, A73, A74):
        s.api[f"collect {a}"] = formgrader(sensei, f"assignment/{a}/collect")
    for student in ("aoki", "doi"):
        s.api[f"autograde 74 {student}"] = formgrader(sensei, f"submission/{A74}/{student}/autograde")
    s.api["generate feedback 74"] = formgrader(sensei, f"assignment/{A74}/generate_feedback")
    s.api["release feedback 74"] = formgrader(sensei, f"assignment/{A74}/release_feedback")
    assignment_action(aoki, "fetch_feedback", A74)

    # -- chiba fills the exchange: 6 submissions of 15 MB (quota 60 MB) ------------------------------------------
    s.out["quota"] = chiba.run(f'''
print(plant("chiba+{A71}+" + stamp() + "+fill", {{"a.ipynb": b"y" * (30 * 2**20), "b.ipynb": b"y" * (30 * 2**20),
                                                   "c.ipynb": b"y" * (30 * 2**20)}}))
with open("{A71}/{A71}.ipynb", "wb") as f:
    f.write(b"z" * (15 * 2**20))
''')
    s.api["quota submits"] = {"results": [assignment_action(chiba, "submit", A71).get("success") for _ in range(6)]}

    # -- baba listens to every kernel it can find, reads /proc, tries the limits --------------------------------
    s.out["snoop"] = baba.run('''
import glob, time, zmq
ports = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = open(table).read().splitlines()[1:]
    except OSError:
        continue
    for row in rows:
        cols = row.split()
        if cols[3] == "0A":
            ports.add(int(cols[1].rsplit(":", 1)[1], 16))
ipc = [p for folder in ("/tmp", "/run", "/home", "/root", "/srv") for p in glob.glob(folder + "/**/kernel-*-ipc-*", recursive=True)]
ctx = zmq.Context()
poller = zmq.Poller()
for endpoint in [f"tcp://127.0.0.1:{p}" for p in sorted(ports)] + [f"ipc://{p}" for p in ipc]:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    poller.register(sock, zmq.POLLIN)
seen, end = set(), time.time() + 6
while time.time() < end:
    for sock, _ in poller.poll(200):
        for part in sock.recv_multipart():
            for marker in (b"AOKI-KERNEL-OUTPUT", b"SENSEI-KERNEL-OUTPUT"):
                if marker in part:
                    seen.add(marker.decode())
print("listening ports", len(ports), "ipc", len(ipc))
print("SEEN", sorted(seen))
''', timeout=120)
    s.out["proc"] = baba.run('''
import glob
found = []
for path in glob.glob("/proc/[0-9]*/cmdline") + glob.glob("/proc/[0-9]*/environ"):
    try:
        found.append(open(path, "rb").read().replace(b"\\0", b" ").decode("utf-8", "replace"))
    except OSError:
        pass
print("\\n".join(found))
''')
    s.out["memory"] = baba.run('''
import subprocess, sys
code = "import numpy as np\\na = np.ones(3 * 2**30 // 8)\\na[:] = 2\\nprint('allocated', a.nbytes)"
p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
print("exit", p.returncode, p.stdout.strip(), p.stderr.strip()[-200:])
''')
    s.out["processes"] = baba.run('''
import subprocess, sys
code = ("import threading, time\\nok = 0\\ntry:\\n    for _ in range(600):\\n"
        "        threading.Thread(target=time.sleep, args=(3,), daemon=True).start()\\n        ok += 1\\n"
        "except RuntimeError as e:\\n    print('refused', e)\\nprint('threads', ok)")
p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
print(p.stdout.strip(), p.stderr.strip()[-200:])
''')
    s.out["tmp"] = baba.run(FILL + 'print("written MB", fill("/tmp/fill", 400))')
    # -- baba fills the home and the server's folder: the machine's disk is not theirs to fill ---------------------
    s.out["home"] = baba.run(FILL + 'print("home written MB", fill(os.path.expanduser("~/fill"), 400))\n'
                                   'print("server written MB", fill("/run/jupyter-server/fill", 100))')
    s.out["aoki home after"] = aoki.run('open("after.txt", "w").write("x" * 2**20)\nprint("aoki saved")')
    # -- another account of the machine (not a hub user) reads the course and the hub's state -----------------------
    targets = [s.course / "gradebook.db", s.course / "source" / A73 / f"{A73}.ipynb", s.state / "jupyterhub.sqlite",
               s.state / "jupyterhub_cookie_secret"]
    readable = []
    for target in targets:
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "head", "-c", "16",
                            str(target)], capture_output=True)
        if p.returncode == 0:
            readable.append(str(target.relative_to(s.state)))
    s.out["local readable"] = json.dumps(readable)
    s.times["play"] = time.monotonic() - t0
    (ROOT / "build" / "hub-hostile-results.json").write_text(json.dumps(
        {"config": str(CONFIG), "api": s.api, "out": {k: v[-3000:] for k, v in s.out.items()}, "times": s.times},
        indent=1, ensure_ascii=False), encoding="utf-8")
    return s


# -- the cases ----------------------------------------------------------------------------------------------------

def _collected(s: Scenario, student: str, assignment: str) -> Path:
    return s.course / "submitted" / student / assignment


def test_symlink_submission_collects_nothing_of_the_course(scenario):
    folder = _collected(scenario, "baba", A73)
    secret = (scenario.state / "jupyterhub_cookie_secret").read_bytes()
    for path in (folder.rglob("*") if folder.is_dir() else []):
        if path.is_file():
            data = path.read_bytes()
            assert b"BEGIN SOLUTION" not in data, f"{path} holds the course's solutions"
            assert not data.startswith(b"SQLite format 3"), f"{path} is the gradebook"
            assert secret not in data, f"{path} holds the cookie secret"
            assert not path.is_symlink(), f"{path} is a symlink"


def test_bad_name_does_not_stop_collect(scenario):
    result = scenario.api[f"collect {A72}"]
    assert result.get("success"), result
    assert (_collected(scenario, HONEST, A72) / f"{A72}.ipynb").is_file(), "aoki's 72 was not collected"


def test_oversize_keeps_earlier_copy_and_collects_others(scenario):
    result = scenario.api[f"collect {A71}"]
    assert result.get("success"), str(result)[:1000]
    assert (_collected(scenario, HONEST, A71) / f"{A71}.ipynb").is_file(), "aoki's 71 was not collected"
    earlier = _collected(scenario, "chiba", A71) / f"{A71}.ipynb"
    assert earlier.is_file(), "chiba's earlier collected copy is gone"
    assert earlier.stat().st_size < (20 << 20), f"a {earlier.stat().st_size} bytes copy was collected"


def test_missing_secret_does_not_stop_feedback(scenario):
    result = scenario.api["release feedback 74"]
    assert result.get("success"), str(result)[:1500]
    feedback = list((scenario.state / "home" / HONEST / A74 / "feedback").glob(f"*/{A74}.html"))
    assert feedback, "aoki received no feedback for 74"


def test_exchange_quota(scenario):
    stored = exchange_bytes(scenario.state, "chiba")
    assert stored <= (60 << 20) + (1 << 20), f"chiba stored {stored >> 20} MB in the exchange (quota 60 MB)"


def test_forged_time_is_not_the_submission_time(scenario):
    from nbgrader.utils import parse_utc

    stamp = _collected(scenario, "doi", A70) / "timestamp.txt"
    assert stamp.is_file(), "doi's 70 was not collected"
    collected = calendar.timegm(parse_utc(stamp.read_text().strip()).timetuple())     # naive UTC
    assert collected >= scenario.times["doi 70 attack"] - 5, \
        f"doi's 70 counts as submitted at {stamp.read_text()}, before it was sent"


def test_classmate_cannot_replace_a_submission(scenario):
    collected = _collected(scenario, HONEST, A73) / f"{A73}.ipynb"
    assert collected.is_file(), "aoki's 73 was not collected"
    assert b"replaced" not in collected.read_bytes(), f"baba replaced aoki's submission: {scenario.out['replace']}"
    assert b"aoki was here" in collected.read_bytes(), "the collected 73 is not aoki's own"


def test_no_kernel_output_of_others(scenario):
    assert "SEEN []" in scenario.out["snoop"], scenario.out["snoop"]


def test_memory_limit(scenario):
    assert "allocated" not in scenario.out["memory"], scenario.out["memory"]


def test_process_limit(scenario):
    assert "threads 600" not in scenario.out["processes"], scenario.out["processes"]


def test_tmp_limit(scenario):
    written = int(scenario.out["tmp"].rsplit("written MB", 1)[1].split()[0])
    assert written <= 256, scenario.out["tmp"]


def test_home_and_server_folder_limits(scenario):
    out = scenario.out["home"]
    home = int(out.split("home written MB", 1)[1].split()[0])
    server = int(out.split("server written MB", 1)[1].split()[0])
    assert home <= 160 and server <= 16, out
    assert "aoki saved" in scenario.out["aoki home after"], scenario.out["aoki home after"]


def test_other_local_accounts_read_nothing(scenario):
    assert json.loads(scenario.out["local readable"]) == [], scenario.out["local readable"]


def test_proc_shows_no_host_paths_of_the_hub(scenario):
    assert str(scenario.state) not in scenario.out["proc"], \
        [line for line in scenario.out["proc"].splitlines() if str(scenario.state) in line][:3]
