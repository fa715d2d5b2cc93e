"""`make hub`: this course's JupyterHub on this machine (deploy/jupyterhub_config.py), for a trial.

    python -m coursetools.hub [--port 8000]

Prints the URL and the users' logins, then runs JupyterHub in the foreground (Ctrl+C stops it).
State (hub database, exchange, students' homes, a copy of the course) goes to build/hub/ unless
NEURAL_HUB_DIR says otherwise. The password is NEURAL_HUB_PASSWORD, or a new random one.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys

from .common import ROOT

CONFIG = ROOT / "deploy" / "jupyterhub_config.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("NEURAL_HUB_PORT", "8000")))
    args = parser.parse_args(argv)
    env = dict(os.environ)
    env.setdefault("NEURAL_HUB_DIR", str(ROOT / "build" / "hub"))
    env.setdefault("NEURAL_HUB_PASSWORD", secrets.token_urlsafe(9))
    env["NEURAL_HUB_PORT"] = str(args.port)
    instructors = env.setdefault("NEURAL_HUB_INSTRUCTORS", "sensei")
    students = env.setdefault("NEURAL_HUB_STUDENTS", "aoki,baba")
    print(f"JupyterHub of the course: http://{env.get('NEURAL_HUB_IP', '127.0.0.1')}:{args.port}/hub/login")
    print(f"  instructors: {instructors}   students: {students}")
    print(f"  password (every user): {env['NEURAL_HUB_PASSWORD']}")
    print(f"  state: {env['NEURAL_HUB_DIR']}   (Ctrl+C stops the hub and every server)")
    if os.geteuid() != 0:
        print("  note: not root: students' servers run sandboxed under your own user id", file=sys.stderr)
    sys.stdout.flush()
    os.chdir(env["NEURAL_HUB_DIR"] if os.path.isdir(env["NEURAL_HUB_DIR"]) else ROOT)
    os.execve(sys.executable, [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
