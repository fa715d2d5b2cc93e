"""Time one class cycle on the course hub: release -> fetch -> answer -> submit -> collect -> autograde ->
feedback generated, released and fetched, for N students (no browser: each student's steps are what the
Assignment List and a kernel of their own server do; the instructor's are the formgrader's API).

    .venv/bin/python browser_tests/hub_class_cycle.py --students 20

Servers are started before the clock starts (as in a class, students log in first). Prints the seconds of
each phase and the total, and writes build/hub-class-cycle-<N>.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from conftest import ROOT, free_port, running  # noqa: E402
from coursetools.common import venv_env  # noqa: E402
from hubclient import HubUser  # noqa: E402
from qa.corpus import solution_answers  # noqa: E402

A73, COURSE, PASSWORD = "73_backprop_scalar", "neural-engine-unit00", "cycle-password"

ANSWER = """import json
answers = json.loads({answers!r})
path = "{a}/{a}.ipynb"
nb = json.load(open(path))
n = 0
for cell in nb["cells"]:
    grade_id = cell.get("metadata", {{}}).get("nbgrader", {{}}).get("grade_id")
    if grade_id in answers:
        cell["source"] = answers[grade_id]
        n += 1
json.dump(nb, open(path, "w"))
print("answered", n)
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=2)
    args = parser.parse_args(argv)
    names = [f"s{i:02d}" for i in range(1, args.students + 1)]
    state = Path(tempfile.mkdtemp(prefix="hub-cycle-", dir=ROOT / "build"))
    port = free_port()
    env = venv_env(NEURAL_HUB_DIR=str(state), NEURAL_HUB_PASSWORD=PASSWORD, NEURAL_HUB_PORT=str(port),
                   NEURAL_HUB_API_PORT=str(free_port()), NEURAL_HUB_INSTRUCTORS="sensei",
                   NEURAL_HUB_STUDENTS=",".join(names))
    url = f"http://127.0.0.1:{port}"
    phases: dict[str, float] = {}
    answers = json.dumps(solution_answers(A73))
    try:
        with running([sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "deploy" / "jupyterhub_config.py")],
                     state, env, state.parent / f"{state.name}.log", url + "/hub/health", "JupyterHub"):
            sensei = HubUser(url, "sensei", PASSWORD)
            sensei.start_server()
            with ThreadPoolExecutor(4) as pool:
                students = list(pool.map(lambda n: HubUser(url, n, PASSWORD), names))
                list(pool.map(lambda u: u.start_server(), students))
            sensei.api("POST", f"/formgrader/api/assignment/{A73}/assign", timeout=900)

            def phase(name, call):
                t = time.monotonic()
                call()
                phases[name] = round(time.monotonic() - t, 1)

            start = time.monotonic()
            phase("release", lambda: sensei.api("POST", f"/formgrader/api/assignment/{A73}/release"))

            def student_work(user):
                user.api("POST", "/assignments/fetch", json={"course_id": COURSE, "assignment_id": A73})
                user.run(ANSWER.format(answers=answers, a=A73))
                user.api("POST", "/assignments/submit", json={"course_id": COURSE, "assignment_id": A73})

            with ThreadPoolExecutor(4) as pool:
                phase("students fetch, answer, submit", lambda: list(pool.map(student_work, students)))
            phase("collect", lambda: sensei.api("POST", f"/formgrader/api/assignment/{A73}/collect", timeout=900))
            scores = []

            def autograde_all():
                for name in names:
                    r = sensei.api("POST", f"/formgrader/api/submission/{A73}/{name}/autograde", timeout=1800)
                    scores.append(json.loads(r.text).get("success"))
            phase("autograde", autograde_all)
            phase("generate feedback",
                  lambda: sensei.api("POST", f"/formgrader/api/assignment/{A73}/generate_feedback", timeout=1800))
            phase("release feedback",
                  lambda: sensei.api("POST", f"/formgrader/api/assignment/{A73}/release_feedback", timeout=900))
            with ThreadPoolExecutor(4) as pool:
                phase("students fetch feedback", lambda: list(pool.map(
                    lambda u: u.api("POST", "/assignments/fetch_feedback",
                                    json={"course_id": COURSE, "assignment_id": A73}), students)))
            total = round(time.monotonic() - start, 1)
            fetched = sum(1 for n in names if list((state / "home" / n / A73 / "feedback").glob(f"*/{A73}.html")))
    finally:
        shutil.rmtree(state, ignore_errors=True)
    result = {"students": args.students, "total_seconds": total, "phases": phases,
              "autograded": sum(bool(s) for s in scores), "feedback_fetched": fetched}
    print(json.dumps(result, indent=1))
    (ROOT / "build" / f"hub-class-cycle-{args.students}.json").write_text(json.dumps(result), encoding="utf-8")
    return 0 if fetched == args.students else 1


if __name__ == "__main__":
    sys.exit(main())
