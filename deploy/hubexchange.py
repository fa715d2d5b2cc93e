"""nbgrader's exchange through the course's exchange service (deploy/exchange_service.py).

Configured by deploy/jupyterhub_config.py (instructors) and deploy/student/nbgrader_config.py (students):

    c.ExchangeFactory.list = "hubexchange.HubList"             (both)
    c.ExchangeFactory.fetch_assignment = "hubexchange.HubFetchAssignment"   submit, fetch_feedback  (students)
    c.ExchangeFactory.release_assignment = "hubexchange.HubReleaseAssignment"  collect, release_feedback (instructors)
    c.HubExchange.socket = "<the service's Unix socket>"

Nothing here reads or writes a shared folder: a student sends their files and receives what the service
gives them; the service takes the submission time and knows who is asking from the socket. The instructors'
side writes collected submissions as regular files it creates itself, with names it checked, each
submission first into a fresh folder that replaces the previous copy only once it is complete. A bad
submission is set aside in <course>/quarantine/ and reported as a PROBLEM line; everyone else is
collected (and released) all the same.
"""
from __future__ import annotations

import base64
import glob
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import stat

from nbgrader.exchange.abc import Exchange
from nbgrader.exchange.default import (
    ExchangeCollect, ExchangeFetchAssignment, ExchangeFetchFeedback, ExchangeList,
    ExchangeReleaseAssignment, ExchangeReleaseFeedback, ExchangeSubmit,
)
from nbgrader.utils import parse_utc
from traitlets import Unicode

STUDENT_SOCKET = "/run/course/exchange.sock"
PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
PROBLEM = "PROBLEM"          # the word collect and release feedback put in front of a per-student problem


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 300):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def safe_relative(name: str) -> str | None:
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or len(parts) > 3 or any(not PART.match(p) for p in parts):
        return None
    return name


def folder_name(timestamp: str) -> str:
    """The local folder a submission's feedback goes to (no ':' in names a student clicks)."""
    return timestamp.replace(":", "-")


class HubExchange(Exchange):
    """Requests to the exchange service (the base of every class here)."""

    socket = Unicode(STUDENT_SOCKET, help="The exchange service's Unix socket").tag(config=True)
    url = Unicode("", help="Instead of the socket: the exchange service's URL (Kubernetes); the request "
                           "carries this server's JupyterHub API token").tag(config=True)

    def call(self, method: str, path: str, payload=None):
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.url:
            from urllib.parse import urlparse

            where = urlparse(self.url)
            connection = http.client.HTTPConnection(where.hostname, where.port or 80, timeout=300)
            headers["Authorization"] = f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"
            path = where.path.rstrip("/") + path
        else:
            connection = _UnixConnection(self.socket)
        try:
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except OSError as error:
                self.fail(f"The course exchange cannot be reached ({error}); ask your instructor")
        finally:
            connection.close()
        try:
            answer = json.loads(data or b"null")
        except ValueError:
            answer = {"error": data[:200].decode("utf-8", "replace")}
        if response.status != 200:
            message = answer.get("error") if isinstance(answer, dict) else str(answer)
            self.fail(f"The course exchange refused this: {message}")
        return answer

    def start(self):
        # nothing of the default exchange's checks of a shared folder applies
        self.set_timestamp()
        self.init_src()
        self.init_dest()
        self.copy_files()

    def ensure_root(self):
        pass


def read_regular_files(src: str, coursedir, log, limit: int | None = None) -> dict[str, str]:
    """Regular files under src (never symlinks, devices, FIFOs, checkpoints, hidden files, feedback/)."""
    files, total = {}, 0
    ignore = shutil.ignore_patterns(*coursedir.ignore)
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        skipped = ignore(dirpath, dirnames + filenames)
        dirnames[:] = [d for d in dirnames if d not in skipped and not d.startswith(".")
                       and not (rel == "." and d == "feedback") and not os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames):
            if name in skipped or name.startswith(".") or name in ("timestamp.txt", "submission_secret.txt"):
                continue
            path = os.path.join(dirpath, name)
            relname = os.path.normpath(os.path.join(rel, name)).replace(os.sep, "/")
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                log.warning("Not sent (a link or unreadable): %s", relname)
                continue
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    log.warning("Not sent (not a regular file): %s", relname)
                    continue
                if safe_relative(relname) is None:
                    log.warning("Not sent (name not allowed): %s", relname)
                    continue
                data = f.read()
            total += len(data)
            if limit is not None and total > limit:
                raise ValueError(f"more than {limit} bytes")
            files[relname] = base64.b64encode(data).decode("ascii")
    return files


def write_new_files(folder: str, files: dict[str, bytes]) -> None:
    """Create every file (O_EXCL | O_NOFOLLOW) in folder, which must not exist yet."""
    os.makedirs(folder, mode=0o700)
    for name, data in files.items():
        path = os.path.join(folder, *name.split("/"))
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


# ---------------------------------------------------------------------------------------------------
# students

class HubList(HubExchange, ExchangeList):

    def start(self):
        if self.inbound and self.cached:
            self.fail("Options --inbound and --cached are incompatible.")
        return self.remove_files() if self.remove else self.list_files()

    def init_src(self):
        pass

    def init_dest(self):
        pass

    def copy_files(self):
        pass

    def _course(self) -> str:
        return self.coursedir.course_id or "course"

    def _assignment_dir(self, assignment: str) -> str:
        if self.path_includes_course:
            return os.path.join(self.assignment_dir, self._course(), assignment)
        return os.path.join(self.assignment_dir, assignment)

    def _released(self) -> list[dict]:
        out = []
        wanted = self.coursedir.assignment_id
        for item in self.call("GET", "/released"):
            name = item["assignment"]
            if wanted and name != wanted:
                continue
            local = os.path.abspath(self._assignment_dir(name))
            info = {"course_id": self._course(), "assignment_id": name}
            if os.path.isdir(local):
                info["status"], info["path"] = "fetched", local
                notebooks = sorted(glob.glob(os.path.join(local, "*.ipynb")))
            else:
                info["status"], info["path"] = "released", name
                notebooks = [f for f in item["files"] if f.endswith(".ipynb") and "/" not in f]
            info["notebooks"] = [{"notebook_id": os.path.splitext(os.path.basename(n))[0],
                                  "path": os.path.abspath(n) if info["status"] == "fetched" else n} for n in notebooks]
            out.append(info)
        return out

    def _submitted(self) -> list[dict]:
        student = os.environ.get("JUPYTERHUB_USER") or os.environ.get("USER") or "me"
        grouped: dict[str, list] = {}
        for sub in self.call("GET", "/submissions"):
            name = sub["assignment"]
            if self.coursedir.assignment_id and name != self.coursedir.assignment_id:
                continue
            local_dir = os.path.join(self._assignment_dir(name), "feedback", folder_name(sub["timestamp"]))
            notebooks = []
            for nb in sorted(f for f in sub["files"] if f.endswith(".ipynb") and "/" not in f):
                nb_id = nb[:-6]
                local = os.path.join(local_dir, nb_id + ".html")
                exchange_sum = sub["feedback"].get(nb_id + ".html")
                local_sum = None
                if os.path.isfile(local):
                    with open(local, "rb") as f:
                        local_sum = hashlib.sha256(f.read()).hexdigest()
                notebooks.append({"notebook_id": nb_id, "path": nb, "has_local_feedback": local_sum is not None,
                                  "has_exchange_feedback": exchange_sum is not None,
                                  "local_feedback_path": local if local_sum else None,
                                  "feedback_updated": bool(local_sum and exchange_sum and local_sum != exchange_sum)})
            info = {"course_id": self._course(), "student_id": student, "assignment_id": name,
                    "timestamp": sub["timestamp"], "status": "submitted", "path": name, "notebooks": notebooks,
                    "has_local_feedback": bool(notebooks) and all(n["has_local_feedback"] for n in notebooks),
                    "has_exchange_feedback": bool(notebooks) and all(n["has_exchange_feedback"] for n in notebooks),
                    "feedback_updated": any(n["feedback_updated"] for n in notebooks)}
            info["local_feedback_path"] = os.path.abspath(local_dir) if info["has_local_feedback"] else None
            grouped.setdefault(name, []).append(info)
        return [{"course_id": self._course(), "student_id": student, "assignment_id": name, "status": "submitted",
                 "submissions": sorted(subs, key=lambda s: s["timestamp"])} for name, subs in sorted(grouped.items())]

    def list_files(self):
        if self.inbound:
            assignment = self.coursedir.assignment_id
            if not assignment:
                self.fail("nbgrader list --inbound needs an assignment here")
            listing = self.call("GET", f"/inbound/{assignment}")
            for student, subs in sorted(listing.items()):
                for sub in subs:
                    self.log.info("%s %s %s %s (%d bytes)", self._course(), student, assignment, sub["timestamp"], sub["size"])
            return listing
        if self.cached:
            assignments = self._submitted()
            self.log.info("Submitted assignments:")
            for a in assignments:
                for s in a["submissions"]:
                    self.log.info("%s %s %s%s", s["course_id"], s["assignment_id"], s["timestamp"],
                                  " (feedback ready to be fetched)" if s["has_exchange_feedback"] else "")
            return assignments
        assignments = self._released()
        self.log.info("Released assignments:")
        for a in assignments:
            self.log.info("%s %s%s", a["course_id"], a["assignment_id"],
                          " (already downloaded)" if a["status"] == "fetched" else "")
        return assignments

    def remove_files(self):
        assignment = self.coursedir.assignment_id
        if self.inbound or self.cached or not assignment:
            self.fail("Only `nbgrader list --remove ASSIGNMENT` (unrelease) is possible on this exchange")
        removed = self.call("DELETE", f"/release/{assignment}")
        self.log.info("Removed release of %s: %s", assignment, removed.get("removed"))
        return [{"course_id": self._course(), "assignment_id": assignment, "status": "removed"}]


class HubFetchAssignment(HubExchange, ExchangeFetchAssignment):

    def init_src(self):
        if not self.coursedir.assignment_id:
            self.fail("Which assignment? (nbgrader fetch_assignment NAME)")
        self.files = self.call("GET", f"/released/{self.coursedir.assignment_id}")["files"]

    def copy_files(self):
        made = not os.path.isdir(self.dest_path)
        for name, data in sorted(self.files.items()):
            if safe_relative(name) is None:
                self.log.warning("Skipped a released file with a strange name: %r", name[:80])
                continue
            path = os.path.join(self.dest_path, *name.split("/"))
            if os.path.lexists(path):
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "xb") as f:
                f.write(base64.b64decode(data))
            if not made:
                self.log.warning("Replacing missing file '%s'", name)
        self.log.info("Fetched as: %s %s", self.coursedir.course_id, self.coursedir.assignment_id)


class HubSubmit(HubExchange, ExchangeSubmit):

    def init_dest(self):
        pass

    def copy_files(self):
        assignment = self.coursedir.assignment_id
        released = {r["assignment"]: r["files"] for r in self.call("GET", "/released")}
        if assignment not in released:
            self.fail(f"{assignment} is not released (or no longer)")
        usage = self.call("GET", "/usage")
        try:
            files = read_regular_files(self.src_path, self.coursedir, self.log, limit=usage["max_submission"])
        except ValueError:
            self.fail(f"{assignment} is larger than the {usage['max_submission'] >> 20} MB a submission may have: "
                      f"remove big files from the folder and submit again")
        missing = [f for f in released[assignment] if f.endswith(".ipynb") and f not in files]
        if missing:
            message = f"Notebooks missing from the submission of {assignment}: {', '.join(missing)}"
            if self.strict:
                self.fail(message)
            self.log.warning(message)
        answer = self.call("POST", f"/submit/{assignment}", {"files": files})
        self.timestamp = answer["timestamp"]
        self.log.info("Submitted as: %s %s %s (time taken by the exchange; %d bytes)",
                      self.coursedir.course_id, assignment, answer["timestamp"], answer["size"])


class HubFetchFeedback(HubExchange, ExchangeFetchFeedback):

    def init_src(self):
        wanted = self.coursedir.assignment_id
        self.subs = [s for s in self.call("GET", "/submissions") if s["feedback"] and (not wanted or s["assignment"] == wanted)]
        if not self.subs:
            self.log.warning("No feedback yet for %s", wanted or "any assignment")

    def init_dest(self):
        pass

    def copy_files(self):
        for sub in self.subs:
            files = self.call("GET", f"/feedback/{sub['assignment']}/{sub['id']}")["files"]
            root = os.path.join(self.assignment_dir, self.coursedir.course_id, sub["assignment"]) \
                if self.path_includes_course else os.path.join(self.assignment_dir, sub["assignment"])
            dest = os.path.join(root, "feedback", folder_name(sub["timestamp"]))
            os.makedirs(dest, exist_ok=True)
            for name, data in files.items():
                if "/" in name or safe_relative(name) is None:
                    continue
                path = os.path.join(dest, name)
                if os.path.islink(path):
                    os.unlink(path)
                with open(path, "wb") as f:
                    f.write(base64.b64decode(data))
                self.log.info("Fetched feedback: %s", os.path.relpath(path, self.assignment_dir))


# ---------------------------------------------------------------------------------------------------
# instructors

class HubReleaseAssignment(HubExchange, ExchangeReleaseAssignment):

    def init_src(self):
        self.src_path = self.coursedir.format_path(self.coursedir.release_directory, ".", self.coursedir.assignment_id)
        if not os.path.isdir(self.src_path):
            source = self.coursedir.format_path(self.coursedir.source_directory, ".", self.coursedir.assignment_id)
            if os.path.isdir(source):
                self.fail(f"{self.coursedir.assignment_id} is in source/ but not in release/: generate it first")
            self.fail(f"No assignment {self.coursedir.assignment_id} in {self.src_path}")

    def init_dest(self):
        pass

    def copy_files(self):
        files = read_regular_files(self.src_path, self.coursedir, self.log)
        self.call("PUT", f"/release/{self.coursedir.assignment_id}", {"files": files})
        self.log.info("Released as: %s %s (%d files)", self.coursedir.course_id, self.coursedir.assignment_id, len(files))


class HubCollect(HubExchange, ExchangeCollect):

    def init_src(self):
        assignment = self.coursedir.assignment_id
        if not assignment:
            self.fail("Which assignment? (nbgrader collect NAME)")
        listing = self.call("GET", f"/inbound/{assignment}")
        if self.coursedir.student_id and self.coursedir.student_id != "*":
            listing = {s: v for s, v in listing.items() if s == self.coursedir.student_id}
        duedate = None
        if self.before_duedate:
            from nbgrader.api import Gradebook, MissingEntry
            with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
                try:
                    duedate = gb.find_assignment(assignment).duedate
                except MissingEntry:
                    duedate = None
        self.records = []
        for student, subs in sorted(listing.items()):
            if not subs:
                continue
            subs = sorted(subs, key=lambda s: s["received"])
            chosen = subs[-1]
            if duedate is not None:
                on_time = [s for s in subs if parse_utc(s["timestamp"]) <= duedate]
                chosen = on_time[-1] if on_time else subs[-1]
            self.records.append((student, chosen))
        self.problems = []

    def init_dest(self):
        pass

    def problem(self, student: str, sub: dict | None, reason: str, files: dict | None = None) -> None:
        where = ""
        if files is not None and sub is not None:
            quarantine = os.path.join(self.coursedir.root, "quarantine", self.coursedir.assignment_id,
                                      f"{student}+{sub['id']}")
            try:
                if os.path.isdir(quarantine):
                    shutil.rmtree(quarantine)
                write_new_files(quarantine, {k: v for k, v in files.items() if safe_relative(k)})
                with open(os.path.join(quarantine, "PROBLEM.txt"), "w", encoding="utf-8") as f:
                    f.write(f"{student} {self.coursedir.assignment_id} {sub['timestamp']}: {reason}\n")
                where = f"; set aside in {os.path.relpath(quarantine, self.coursedir.root)}"
            except OSError as error:
                where = f"; could not be set aside ({error})"
        when = f" (submitted {sub['timestamp']})" if sub else ""
        self.problems.append(f"{student}: {reason}")
        self.log.error("%s %s%s: %s; not collected%s", PROBLEM, student, when, reason, where)

    def _check(self, files: dict[str, bytes]) -> str | None:
        limit = self.coursedir.max_dir_size * 1000
        size = sum(len(v) for v in files.values())
        if size > limit:
            return f"{size} bytes, more than the {limit} bytes a submission may have"
        bad = [k for k in files if safe_relative(k) is None]
        if bad:
            return f"file names not allowed: {', '.join(repr(b[:60]) for b in bad[:3])}"
        source = self.coursedir.format_path(self.coursedir.source_directory, ".", self.coursedir.assignment_id)
        expected = sorted(os.path.basename(p) for p in glob.glob(os.path.join(source, "*.ipynb")))
        present = [e for e in expected if e in files]
        if expected and not present:
            return f"none of the assignment's notebooks ({', '.join(expected)}) is in it"
        for name in present:
            try:
                nb = json.loads(files[name].decode("utf-8"))
                if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
                    raise ValueError("no cells")
            except (ValueError, UnicodeDecodeError) as error:
                return f"{name} is not a readable notebook ({str(error)[:80]})"
        return None

    def copy_files(self):
        assignment = self.coursedir.assignment_id
        if not self.records:
            self.log.warning("No submissions of '%s' to collect", assignment)
        else:
            self.log.info("Processing %d submissions of '%s'", len(self.records), assignment)
        collected = 0
        for number, (student, sub) in enumerate(self.records, 1):
            dest = self.coursedir.format_path(self.coursedir.submitted_directory, student, assignment)
            existing = self.coursedir.get_existing_timestamp(dest) if os.path.isdir(dest) else None
            new = parse_utc(sub["timestamp"])
            if os.path.isdir(dest) and not (self.update and (existing is None or new > existing)) \
                    and not (self.before_duedate and existing != new):
                self.log.info("[%d/%d] %s: already collected (%s)", number, len(self.records), student, sub["timestamp"])
                continue
            try:
                got = self.call("GET", f"/inbound/{assignment}/{student}/{sub['id']}")
                files = {k: base64.b64decode(v) for k, v in got["files"].items()}
            except Exception as error:  # noqa: BLE001 - one student's problem, never the class's
                self.problem(student, sub, f"could not be read from the exchange ({error})")
                continue
            reason = self._check(files)
            if reason:
                self.problem(student, sub, reason, files)
                continue
            parent = os.path.dirname(dest)
            os.makedirs(parent, exist_ok=True)
            fresh = os.path.join(parent, f".{assignment}.collecting-{secrets.token_hex(4)}")
            try:
                write_new_files(fresh, files)
                with open(os.path.join(fresh, "timestamp.txt"), "x", encoding="utf-8") as f:
                    f.write(sub["timestamp"])
                old = None
                if os.path.lexists(dest):
                    old = os.path.join(parent, f".{assignment}.replaced-{secrets.token_hex(4)}")
                    os.rename(dest, old)
                os.rename(fresh, dest)
                if old:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError as error:
                shutil.rmtree(fresh, ignore_errors=True)
                self.problem(student, sub, f"could not be written ({error}); the previous copy is kept")
                continue
            collected += 1
            self.log.info("[%d/%d] Collected %s %s, submitted %s%s", number, len(self.records), student, assignment,
                          sub["timestamp"], " (replacing an earlier one)" if existing else "")
        total = len(self.records)
        if self.problems:
            self.log.error("%s summary: collected %d of %d submissions of %s; %d need a look: %s", PROBLEM, collected,
                           total, assignment, len(self.problems), "; ".join(self.problems))
        else:
            self.log.info("Collected %d of %d submissions of %s", collected, total, assignment)


class HubReleaseFeedback(HubExchange, ExchangeReleaseFeedback):

    def init_src(self):
        student = self.coursedir.student_id if self.coursedir.student_id else "*"
        self.src_path = self.coursedir.format_path(self.coursedir.feedback_directory, student, self.coursedir.assignment_id)

    def init_dest(self):
        pass

    def copy_files(self):
        assignment = self.coursedir.assignment_id
        excluded = set(filter(None, (self.coursedir.student_id_exclude or "").split(",")))
        listing = self.call("GET", f"/inbound/{assignment}")
        folders = sorted(glob.glob(self.src_path))
        problems, released = [], 0
        for number, folder in enumerate(folders, 1):
            student = os.path.basename(os.path.dirname(folder))     # <course>/feedback/<student>/<assignment>
            if student in excluded:
                continue
            try:
                with open(os.path.join(folder, "timestamp.txt"), encoding="utf-8") as f:
                    timestamp = f.read().strip()
            except OSError:
                problems.append(f"{student}: no timestamp.txt in {os.path.relpath(folder, self.coursedir.root)}")
                self.log.error("%s %s: the feedback has no timestamp.txt; not released", PROBLEM, student)
                continue
            sub = next((s for s in listing.get(student, []) if s["timestamp"] == timestamp), None)
            if sub is None:
                problems.append(f"{student}: no submission received at {timestamp}")
                self.log.error("%s %s: the exchange has no submission of %s received at %s; not released",
                               PROBLEM, student, assignment, timestamp)
                continue
            html = {}
            for path in sorted(glob.glob(os.path.join(folder, "*.html"))):
                with open(path, "rb") as f:
                    html[os.path.basename(path)] = base64.b64encode(f.read()).decode("ascii")
            if not html:
                problems.append(f"{student}: no feedback file")
                self.log.error("%s %s: no feedback HTML in %s; not released", PROBLEM, student, folder)
                continue
            try:
                self.call("PUT", f"/feedback/{student}/{assignment}/{sub['id']}", {"files": html})
            except Exception as error:  # noqa: BLE001
                problems.append(f"{student}: {error}")
                self.log.error("%s %s: %s", PROBLEM, student, error)
                continue
            released += 1
            self.log.info("[%d/%d] Released feedback to %s (%s, submitted %s)", number, len(folders), student,
                          ", ".join(sorted(html)), timestamp)
        if problems:
            self.log.error("%s summary: feedback of %s released to %d of %d students; %d need a look: %s", PROBLEM,
                           assignment, released, len(folders), len(problems), "; ".join(problems))
        else:
            self.log.info("Feedback of %s released to %d students", assignment, released)
