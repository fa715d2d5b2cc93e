"""The hub's Unix sockets fit in a socket address wherever the hub's state folder is (deploy/jupyterhub_config.py).

A socket's path has at most 107 bytes (sockaddr_un.sun_path, 108 with the NUL). Kernels on the hub talk over
IPC, and jupyter_client names their sockets <JUPYTER_RUNTIME_DIR>/kernel-<uuid>-ipc-<n>. With the runtime
folder under the state folder, an instructor's kernel could not start once the course lived in a deeper
folder (CI's clone of main: the formgrader's kernel API answered 500 and every hostile hub case errored).

Fast (no hub): the deployment's config is loaded the way JupyterHub loads it, in a process of its own (it
sets the umask), and the spawner it configures is asked for each user's environment.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from coursetools.common import venv_env

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "jupyterhub_config.py"
SUN_PATH = 107
# the longest socket name jupyter_client gives a kernel on IPC (ports are numbered up from 1)
KERNEL_SOCKET = f"kernel-{uuid.UUID(int=0)}-ipc-99999"

PROBE = r'''
import json, os, sys
from types import SimpleNamespace
from traitlets.config.loader import PyFileConfigLoader
config = sys.argv[1]
cfg = PyFileConfigLoader(os.path.basename(config), os.path.dirname(config)).load_config()
from coursehub import CourseSpawner
hub = SimpleNamespace(api_url="http://127.0.0.1/hub/api", base_url="/hub/", url="http://127.0.0.1/hub/",
                      public_host="")
out = {}
for name in cfg.CourseSpawner.instructors + cfg.CourseSpawner.students:
    user = SimpleNamespace(name=name, escaped_name=name, url=f"/user/{name}/", server=None, id=1, settings={},
                           db=None, orm_user=None, spawners={})
    env = CourseSpawner(user=user, config=cfg, hub=hub).get_env()
    # jupyter_core's own default when the spawner names no runtime folder
    out[name] = env.get("JUPYTER_RUNTIME_DIR") or os.path.join(env["HOME"], ".local", "share", "jupyter", "runtime")
print(json.dumps(out))
'''


def load(state: Path, students: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, str(CONFIG)], capture_output=True, text=True, timeout=120,
                          env=venv_env(NEURAL_HUB_DIR=str(state), NEURAL_HUB_PASSWORD="hub-test-password",
                                       NEURAL_HUB_INSTRUCTORS="sensei", NEURAL_HUB_STUDENTS=students))


@pytest.fixture
def short_tmp():
    """A fresh folder with a short path (pytest's tmp_path alone is about 70 characters)."""
    folder = Path(tempfile.mkdtemp(prefix="hs-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def deep(under: Path, length: int) -> Path:
    """A folder path of exactly `length` characters under `under` (not created)."""
    base = str(under / "state-")
    assert len(base) < length
    return Path(base + "x" * (length - len(base)))


@pytest.mark.parametrize("depth, student", [
    (64, "chiba"),          # deeper than CI's clone: /check/work/main/build/hub-hostile-XXXXXXXX has 43 characters
    (24, "s" * 40),         # a long hub user name (an e-mail address, say) in a shallow state folder
])
def test_every_kernel_socket_fits(short_tmp, depth, student):
    proc = load(deep(short_tmp, depth), f"aoki,{student}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runtimes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(runtimes) == {"sensei", "aoki", student}
    for name, runtime in runtimes.items():
        path = f"{runtime}/{KERNEL_SOCKET}"
        assert len(path.encode()) <= SUN_PATH, f"{name}'s kernels cannot bind their IPC sockets: {path} ({len(path)})"


def test_a_state_folder_too_deep_for_any_socket_stops_the_hub_with_a_clear_message(short_tmp):
    state = deep(short_tmp, 100)          # the hub's own API socket, <state>/run/hub/hub.sock, cannot fit
    proc = load(state, "aoki")
    assert proc.returncode != 0
    assert "107" in proc.stderr and "NEURAL_HUB_DIR" in proc.stderr, proc.stderr[-3000:]
    assert not state.exists(), "the hub created its state before finding it cannot run there"
