"""Browser tests: JupyterLab started by the tests, driven in the system Chromium by Playwright.

Each server runs on 127.0.0.1, a free port and a random token, with its own config, runtime and
workspace folders, and is stopped at the end. Screenshots go to build/screenshots/ (gitignored).
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or shutil.which("chromium-browser") or "")
CHROMIUM_ARGS = [  # no sandbox as root; no background traffic on a machine without internet
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coursetools.common import venv_env  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, base: str, token: str, root: Path, log: Path):
        self.base, self.token, self.root, self.log = base, token, root, log

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"


@contextmanager
def jupyter_lab(root: Path, workdir: Path, config: str = "", cwd: Path | None = None):
    """Start JupyterLab serving `root`; yield a Lab; stop it afterwards."""
    port, token = free_port(), secrets.token_hex(16)
    conf = workdir / "jupyter-config"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "nbgrader_config.py").write_text("c = get_config()\n" + config, encoding="utf-8")
    env = venv_env(JUPYTER_CONFIG_DIR=str(conf), JUPYTER_RUNTIME_DIR=str(workdir / "runtime"))
    log = workdir / f"lab-{port}.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    with running(cmd, cwd or root, env, log, lab.url("/api/status"), "JupyterLab"):
        yield lab


@contextmanager
def running(cmd: list[str], cwd: Path, env: dict, log: Path, ready_url: str, what: str, stop_timeout: float = 30):
    """Start cmd (its output to log), wait until ready_url answers 200, and stop it afterwards."""
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start; its log:\n{log.read_text()[-4000:]}")
            time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM or not Path(CHROMIUM).exists():
        pytest.fail("Chromium was not found. Install it (Debian/Ubuntu: `sudo apt-get install chromium`) "
                    "or point CHROMIUM=/path/to/chrome at one; `make test-browser` installs it when run as root.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
