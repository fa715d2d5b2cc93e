"""`make hub`: this course's JupyterHub on this machine (deploy/jupyterhub_config.py), for a trial.

    python -m coursetools.hub [--port 8000]

Prints every address a user needs (the hub's login, each instructor's formgrader and Lab, the students'
Lab) and the logins, then runs JupyterHub in the foreground (Ctrl+C stops it). State (hub database,
exchange, students' homes, a copy of the course) goes to build/hub/ unless NEURAL_HUB_DIR says
otherwise. The class is deploy/roster.csv (or NEURAL_HUB_ROSTER / NEURAL_HUB_STUDENTS); the password is
NEURAL_HUB_PASSWORD, or a new random one.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys

from .common import ROOT

CONFIG = ROOT / "deploy" / "jupyterhub_config.py"


def students(env: dict) -> list[str]:
    if env.get("NEURAL_HUB_STUDENTS"):
        return [n.strip() for n in env["NEURAL_HUB_STUDENTS"].split(",") if n.strip()]
    sys.path.insert(0, str(ROOT / "deploy"))
    from coursehub import read_roster

    return [row["id"] for row in read_roster(env.get("NEURAL_HUB_ROSTER") or ROOT / "deploy" / "roster.csv")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("NEURAL_HUB_PORT", "8000")))
    args = parser.parse_args(argv)
    env = dict(os.environ)
    env.setdefault("NEURAL_HUB_DIR", str(ROOT / "build" / "hub"))
    env.setdefault("NEURAL_HUB_PASSWORD", secrets.token_urlsafe(9))
    env["NEURAL_HUB_PORT"] = str(args.port)
    instructors = [n.strip() for n in env.setdefault("NEURAL_HUB_INSTRUCTORS", "sensei").split(",") if n.strip()]
    class_ = students(env)
    url = f"http://{env.get('NEURAL_HUB_IP', '127.0.0.1')}:{args.port}"
    print(f"JupyterHub of the course:   {url}/hub/login")
    for name in instructors:
        print(f"  instructor {name}:")
        print(f"    formgrader (its own tab)  {url}/user/{name}/formgrader")
        print(f"    JupyterLab               {url}/user/{name}/lab")
    print(f"  students ({len(class_)}): {', '.join(class_)}")
    print(f"    JupyterLab               {url}/user/<name>/lab   (Nbgrader -> Assignment List)")
    print(f"  password (every user):    {env['NEURAL_HUB_PASSWORD']}")
    print(f"  time zone:                {env.get('NEURAL_HUB_TIMEZONE', 'Asia/Tokyo')}")
    print(f"  state: {env['NEURAL_HUB_DIR']}   (Ctrl+C stops the hub and every server)")
    if os.geteuid() != 0:
        print("  note: not root: every server runs under your own user id (students are still sandboxed, "
              "but not separated from each other by user ids)", file=sys.stderr)
    sys.stdout.flush()
    os.makedirs(env["NEURAL_HUB_DIR"], exist_ok=True)
    os.chdir(env["NEURAL_HUB_DIR"])
    os.execve(sys.executable, [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
