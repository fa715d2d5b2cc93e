"""The course's nbgrader exchange as a service of the hub: it owns every file, it keeps the clock.

    python exchange_service.py --store DIR --sockets DIR --students aoki,baba [--quota BYTES] ...

JupyterHub starts it (deploy/jupyterhub_config.py, a managed service) under a user id of its own
(not root, no capabilities). It listens on one Unix socket per student,
<sockets>/<student>/exchange.sock, and one for the instructors, <sockets>/instructor/exchange.sock.
A student's sandbox gets only its own socket folder (deploy/coursehub.py), so *who* is asking is
the socket a request arrives on: nothing a student sends names a student. Instructors' socket is
reachable by root only.

What a student can do through it (deploy/hubexchange.py is the nbgrader side):

    GET  /released                      assignments released, with their file names
    GET  /released/<assignment>         the released files
    POST /submit/<assignment>           a submission: {"files": {relative name: base64}}
    GET  /submissions                   my submissions: assignment, id, time received, feedback?
    GET  /feedback/<assignment>/<id>    the feedback of one of my submissions

and an instructor:

    PUT    /release/<assignment>        (re)release files        DELETE /release/<assignment>
    GET    /inbound/<assignment>        every student's submissions (id, time received, size)
    GET    /inbound/<assignment>/<student>/<id>      one submission's files
    PUT    /feedback/<student>/<assignment>/<id>     feedback files of that submission
    GET    /usage                       bytes stored per student

A submission is stored only whole and only if it is well formed: plain relative names (letters,
digits, `_ - .`, no leading dot, at most 3 levels), no more than --max-submission bytes, the
student's stored submissions within --quota, the assignment released. Its time is the service's
clock when the submission arrived (UTC, shown in --timezone): nothing the student writes sets it.
Everything is stored as regular files created here (mode 0600, folders 0700).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from zoneinfo import ZoneInfo

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
ASSIGNMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
SUBMISSION_ID = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}$")
MAX_DEPTH = 3
MAX_FILES = 200


class Refused(Exception):
    """A request refused, with the HTTP status and the message the user reads."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def clean_name(name: str) -> str:
    """A stored relative file name, or Refused: components of NAME only, no '..', at most MAX_DEPTH deep."""
    if not isinstance(name, str):
        raise Refused(400, "a file name is not a string")
    parts = name.split("/")
    if len(parts) > MAX_DEPTH or any(not NAME.match(p) or p in (".", "..") for p in parts):
        raise Refused(400, f"file name not allowed: {name[:80]!r} (letters, digits, _ - . only, "
                           f"no leading dot, at most {MAX_DEPTH} folders deep)")
    return name


def decode_files(payload: dict, limit: int) -> dict[str, bytes]:
    files = payload.get("files") if isinstance(payload, dict) else None
    if not isinstance(files, dict) or not files:
        raise Refused(400, "no files")
    if len(files) > MAX_FILES:
        raise Refused(413, f"too many files ({len(files)}; at most {MAX_FILES})")
    out, total = {}, 0
    for name, data in files.items():
        name = clean_name(name)
        if not isinstance(data, str):
            raise Refused(400, f"{name}: content is not base64 text")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, f"{name}: content is not base64") from None
        total += len(raw)
        if total > limit:
            raise Refused(413, f"submission larger than {limit} bytes")
        out[name] = raw
    names = set(out)
    for name in names:   # a name may not be both a file and a folder
        parts = name.split("/")
        if any("/".join(parts[:i]) in names for i in range(1, len(parts))):
            raise Refused(400, f"{name}: a folder of that name is also a file")
    return out


def encode_files(folder: Path) -> dict[str, str]:
    """Every regular file under folder (created by this service), by relative name."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_symlink() and path.is_file():
            out[path.relative_to(folder).as_posix()] = base64.b64encode(path.read_bytes()).decode("ascii")
    return out


def makedirs(folder: Path) -> None:
    """Create folder and any missing parent with mode 0700 (whatever the umask)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    if folder.exists():
        raise FileExistsError(folder)
    makedirs(folder)
    for name, data in files.items():
        path = folder / name
        makedirs(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def folder_size(folder: Path) -> int:
    return sum(os.lstat(p).st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) \
        if folder.is_dir() else 0


class Store:
    """The exchange's files: outbound/<a>/, inbound/<student>/<a>/<id>/{files/,meta.json}, feedback/..."""

    def __init__(self, root: Path, students: list[str], quota: int, max_submission: int, timezone: str):
        self.root, self.students = root, list(students)
        self.quota, self.max_submission = quota, max_submission
        self.tz = ZoneInfo(timezone)
        self.lock = threading.Lock()
        for sub in ("outbound", "inbound", "feedback", "tmp"):
            makedirs(root / sub)

    # -- helpers
    def _assignment(self, name: str) -> str:
        if not ASSIGNMENT.match(name or ""):
            raise Refused(400, f"not an assignment name: {name[:80]!r}")
        return name

    def _student(self, name: str) -> str:
        if name not in self.students:
            raise Refused(404, f"not a student of this course: {name[:80]!r}")
        return name

    def _tmp(self) -> Path:
        return self.root / "tmp" / secrets.token_hex(8)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def stamp(self, when: dt.datetime) -> str:
        """The time nbgrader stores (timestamp.txt): ISO with the course's UTC offset."""
        return when.astimezone(self.tz).isoformat(sep=" ", timespec="microseconds")

    # -- release
    def released(self) -> list[dict]:
        out = []
        for folder in sorted((self.root / "outbound").iterdir()):
            if folder.is_dir() and ASSIGNMENT.match(folder.name):
                out.append({"assignment": folder.name,
                            "files": sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())})
        return out

    def _replace(self, tmp: Path, target: Path) -> None:
        """Put the complete folder tmp at target in one rename; an earlier target is moved aside, then removed."""
        with self.lock:
            old = None
            if target.exists():
                old = self._tmp()
                os.rename(target, old)
            os.rename(tmp, target)
        if old:
            shutil.rmtree(old, ignore_errors=True)

    def release(self, assignment: str, files: dict[str, bytes]) -> None:
        assignment = self._assignment(assignment)
        tmp = self._tmp()
        write_files(tmp, files)
        target = self.root / "outbound" / assignment
        self._replace(tmp, target)

    def unrelease(self, assignment: str) -> bool:
        target = self.root / "outbound" / self._assignment(assignment)
        if not target.is_dir():
            return False
        old = self._tmp()
        os.rename(target, old)
        shutil.rmtree(old, ignore_errors=True)
        return True

    def released_files(self, assignment: str) -> dict[str, str]:
        folder = self.root / "outbound" / self._assignment(assignment)
        if not folder.is_dir():
            raise Refused(404, f"{assignment} is not released")
        return encode_files(folder)

    # -- submissions
    def usage(self, student: str) -> int:
        return folder_size(self.root / "inbound" / student)

    def submit(self, student: str, assignment: str, body: bytes) -> dict:
        assignment = self._assignment(assignment)
        if not (self.root / "outbound" / assignment).is_dir():
            raise Refused(404, f"{assignment} is not released")
        received = self.now()                       # the moment the submission arrived, before decoding
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Refused(400, "not a JSON submission") from None
        files = decode_files(payload, self.max_submission)
        if not any(name.endswith(".ipynb") for name in files):
            raise Refused(400, "a submission needs at least one notebook (.ipynb)")
        size = sum(len(v) for v in files.values())
        ident = received.strftime("%Y%m%dT%H%M%S") + f"{received.microsecond:06d}Z-{secrets.token_hex(4)}"
        with self.lock:
            used = self.usage(student)
            if used + size > self.quota:
                raise Refused(413, f"exchange quota: {used} bytes stored, this submission {size}, "
                                   f"quota {self.quota} bytes per student")
            tmp = self._tmp()
            write_files(tmp / "files", files)
            meta = {"id": ident, "student": student, "assignment": assignment, "received": received.isoformat(),
                    "timestamp": self.stamp(received), "size": size, "files": sorted(files)}
            fd = os.open(tmp / "meta.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(meta, f)
            parent = self.root / "inbound" / student / assignment
            makedirs(parent)
            os.rename(tmp, parent / ident)
        return {"id": ident, "timestamp": meta["timestamp"], "size": size}

    def _meta(self, folder: Path) -> dict | None:
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    def submissions(self, student: str, assignment: str | None = None) -> list[dict]:
        out = []
        base = self.root / "inbound" / student
        if not base.is_dir():
            return out
        for folder in sorted(base.glob(f"{assignment or '*'}/*")):
            meta = self._meta(folder)
            if not meta:
                continue
            fb = self.root / "feedback" / student / meta["assignment"] / meta["id"]
            meta["feedback"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                for p in sorted(fb.glob("*.html"))} if fb.is_dir() else {}
            out.append(meta)
        return sorted(out, key=lambda m: m["received"])

    def submission_files(self, student: str, assignment: str, ident: str) -> dict:
        student, assignment = self._student(student), self._assignment(assignment)
        if not SUBMISSION_ID.match(ident or ""):
            raise Refused(400, "not a submission id")
        folder = self.root / "inbound" / student / assignment / ident
        meta = self._meta(folder)
        if not meta:
            raise Refused(404, "no such submission")
        return {"meta": meta, "files": encode_files(folder / "files")}

    # -- feedback
    def put_feedback(self, student: str, assignment: str, ident: str, files: dict[str, bytes]) -> None:
        student, assignment = self._student(student), self._assignment(assignment)
        if not SUBMISSION_ID.match(ident or "") or not (self.root / "inbound" / student / assignment / ident).is_dir():
            raise Refused(404, f"{student} has no submission {ident!r} of {assignment}")
        tmp = self._tmp()
        write_files(tmp, files)
        target = self.root / "feedback" / student / assignment / ident
        makedirs(target.parent)
        self._replace(tmp, target)

    def feedback(self, student: str, assignment: str, ident: str) -> dict[str, str]:
        assignment = self._assignment(assignment)
        if not SUBMISSION_ID.match(ident or ""):
            raise Refused(400, "not a submission id")
        folder = self.root / "feedback" / student / assignment / ident
        if not folder.is_dir():
            raise Refused(404, "no feedback for that submission")
        return encode_files(folder)


class Handler(BaseHTTPRequestHandler):
    server_version = "course-exchange"
    protocol_version = "HTTP/1.1"

    # set per socket server: the store, and who is on the other end ("instructor" or a student's name)
    store: Store
    who: str

    def log_message(self, format, *args):  # noqa: A002 - one line per request on stderr
        sys.stderr.write(f"[exchange] {self.who}: {format % args}\n")

    def _body(self, limit: int) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise Refused(411, "Content-Length needed") from None
        # base64 makes bytes 4/3 larger; JSON adds a little
        if length < 0 or length > limit * 4 // 3 + 65536:
            raise Refused(413, f"request too large ({length} bytes; a submission may have {limit} bytes)")
        self._body_read = True
        return self.rfile.read(length)

    def _drain(self, most: int = 1 << 20) -> None:
        """Read (and drop) a refused request's body when it is small, so the client can finish sending it."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return
        if not self._body_read and 0 < length <= most:
            self.rfile.read(length)

    def _send(self, status: int, payload) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        if status != 200:
            self._drain()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status != 200:
            # a refused request's body may be unread: never parse what is left of it as the next request
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        store, who = self.store, self.who
        if who == "instructor":
            if method == "GET" and parts == ["released"]:
                return store.released()
            if method == "PUT" and len(parts) == 2 and parts[0] == "release":
                body = self._body(store.max_submission * 4)
                store.release(parts[1], decode_files(json.loads(body), store.max_submission * 4))
                return {"released": parts[1]}
            if method == "DELETE" and len(parts) == 2 and parts[0] == "release":
                return {"removed": store.unrelease(parts[1])}
            if method == "GET" and len(parts) == 2 and parts[0] == "inbound":
                assignment = store._assignment(parts[1])
                return {s: [{k: m[k] for k in ("id", "timestamp", "received", "size")}
                            for m in store.submissions(s, assignment)] for s in store.students}
            if method == "GET" and len(parts) == 4 and parts[0] == "inbound":
                return store.submission_files(parts[2], parts[1], parts[3])
            if method == "PUT" and len(parts) == 4 and parts[0] == "feedback":
                body = self._body(store.max_submission)
                store.put_feedback(parts[1], parts[2], parts[3], decode_files(json.loads(body), store.max_submission))
                return {"feedback": parts[1:]}
            if method == "GET" and parts == ["usage"]:
                return {s: store.usage(s) for s in store.students}
        else:
            if method == "GET" and parts == ["released"]:
                return store.released()
            if method == "GET" and len(parts) == 2 and parts[0] == "released":
                return {"files": store.released_files(parts[1])}
            if method == "POST" and len(parts) == 2 and parts[0] == "submit":
                return store.submit(who, parts[1], self._body(store.max_submission))
            if method == "GET" and parts == ["submissions"]:
                return [{k: m[k] for k in ("assignment", "id", "timestamp", "size", "files", "feedback")}
                        for m in store.submissions(who)]
            if method == "GET" and len(parts) == 3 and parts[0] == "feedback":
                return {"files": store.feedback(who, parts[1], parts[2])}
            if method == "GET" and parts == ["usage"]:
                return {"used": store.usage(who), "quota": store.quota, "max_submission": store.max_submission}
        raise Refused(404, f"no such request: {method} {self.path[:100]}")

    def identify(self) -> str:
        """Who is asking: on a Unix socket, whose socket it is."""
        return self.who

    def _handle(self, method: str):
        self._body_read = False
        try:
            self.who = self.identify()
            self._send(200, self._route(method))
        except Refused as refused:
            self._send(refused.status, {"error": str(refused)})
        except (ValueError, KeyError) as error:
            self._send(400, {"error": f"bad request: {error}"[:300]})
        except OSError as error:
            self.log_message("storage error: %s", error)
            self._send(500, {"error": "the exchange could not store this (storage error); tell your instructor"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")


class TokenHandler(Handler):
    """Kubernetes (deploy/z2jh-values.yaml): one TCP port for everyone; who is asking is the owner of the
    JupyterHub API token sent (Authorization: token ...), asked of the hub's API (GET /user answers with
    the token's owner). A student is a roster name; an instructor a name given with --instructors."""

    hub_api: str = ""
    instructors: frozenset = frozenset()
    who = "nobody"
    _cache: dict = {}
    _cache_lock = threading.Lock()

    def identify(self) -> str:
        header = self.headers.get("Authorization", "")
        if not header.startswith("token ") or len(header) > 300:
            raise Refused(401, "a JupyterHub API token is needed (Authorization: token ...)")
        token = header[6:].strip()
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(token)
        if hit and now - hit[1] < 60:
            return hit[0]
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.hub_api.rstrip("/") + "/user", headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                user = json.loads(response.read())
        except (urllib.error.URLError, ValueError, OSError):
            raise Refused(403, "the hub does not know this token") from None
        name = user.get("name")
        who = name if name in self.store.students else "instructor" if name in self.instructors else None
        if who is None:
            raise Refused(403, f"{name!r} is neither a student nor an instructor of this course")
        with self._cache_lock:
            self._cache[token] = (who, now)
        return who


class QuietErrors:
    """A client that hangs up mid-request is one line on stderr, not a traceback."""

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        sys.stderr.write(f"[exchange] connection ended: {type(error).__name__}: {str(error)[:200]}\n")


class QuietThreadingTCPServer(QuietErrors, socketserver.ThreadingTCPServer):
    pass


def serve_tcp(store: Store, host: str, port: int, hub_api: str, instructors=()) -> socketserver.TCPServer:
    handler = type("Handler_token", (TokenHandler,), {"store": store, "hub_api": hub_api, "_cache": {},
                                                      "instructors": frozenset(instructors)})
    server = QuietThreadingTCPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="exchange-tcp", daemon=True).start()
    return server


class UnixHTTPServer(QuietErrors, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


def serve(store: Store, sockets: Path, mode_student: int = 0o666) -> list[UnixHTTPServer]:
    servers = []
    for who in ["instructor", *store.students]:
        folder = sockets / who
        folder.mkdir(mode=0o700 if who == "instructor" else 0o755, parents=True, exist_ok=True)
        os.chmod(folder, 0o700 if who == "instructor" else 0o755)
        path = folder / "exchange.sock"
        if path.exists() or path.is_symlink():
            path.unlink()
        handler = type(f"Handler_{who}", (Handler,), {"store": store, "who": who})
        server = UnixHTTPServer(str(path), handler)
        os.chmod(path, 0o600 if who == "instructor" else mode_student)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"exchange-{who}", daemon=True).start()
    return servers


def launch(args: argparse.Namespace, uid: int) -> None:
    """As root: run this service in a bubblewrap sandbox as `uid` (no capabilities, the grading sandboxes'
    seccomp filter, no network, nothing of the machine but the runtime, its store and its sockets)."""
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here.parent))
    from coursetools.grading import sandbox

    for folder in (args.store, args.sockets):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        for dirpath, dirnames, filenames in os.walk(folder):
            os.chown(dirpath, uid, uid)
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), uid, uid)
    inner = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session", *sandbox.runtime_binds(tmp_size=16 << 20),
             "--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--dir", "/srv",
             "--bind", str(args.store), "/srv/store", "--bind", str(args.sockets), "/srv/sockets",
             "--ro-bind", str(Path(__file__).resolve()), "/srv/exchange_service.py", "--chdir", "/srv"]
    tail = [*sandbox.drop_to(uid), sandbox.python(), "-I", "/srv/exchange_service.py",
             "--store", "/srv/store", "--sockets", "/srv/sockets", "--students", args.students,
             "--quota", str(args.quota), "--max-submission", str(args.max_submission), "--timezone", args.timezone]
    read_args, write_args = os.pipe()
    os.write(write_args, b"\0".join(a.encode() for a in inner) + b"\0")
    os.close(write_args)
    command = [sandbox.bwrap(), "--args", str(read_args)]
    program = sandbox.seccomp_program()
    if program is not None:
        read_filter, write_filter = os.pipe()
        os.write(write_filter, program)
        os.close(write_filter)
        command += ["--seccomp", str(read_filter)]
    fds = (read_args, *([read_filter] if program is not None else []))
    # bwrap does not pass signals on: this launcher stays, and a signal to it ends the sandbox
    proc = subprocess.Popen(command + tail, pass_fds=fds, start_new_session=True)
    for fd in fds:
        os.close(fd)

    def stop(signum, frame):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:  # and if the hub itself dies (even by SIGKILL), this launcher gets SIGTERM: PR_SET_PDEATHSIG
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    sys.exit(proc.wait())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox-uid", type=int, default=None,
                        help="as root: start the service in a sandbox under this user id")
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--sockets", type=Path, help="one Unix socket per student and one for instructors (one machine)")
    parser.add_argument("--listen", help="HOST:PORT instead of sockets: JupyterHub API tokens say who asks (Kubernetes)")
    parser.add_argument("--hub-api", default=os.environ.get("JUPYTERHUB_API_URL", ""),
                        help="the hub's API (with --listen) [$JUPYTERHUB_API_URL]")
    parser.add_argument("--students", required=True)
    parser.add_argument("--instructors", default="", help="hub names of the instructors (with --listen)")
    parser.add_argument("--quota", type=int, default=200 << 20, help="bytes of submissions stored per student")
    parser.add_argument("--max-submission", type=int, default=50 << 20, help="bytes of one submission")
    parser.add_argument("--timezone", default="Asia/Tokyo")
    args = parser.parse_args(argv)
    os.umask(0o077)
    if args.sandbox_uid is not None and os.geteuid() == 0:
        launch(args, args.sandbox_uid)
    students = [s for s in args.students.split(",") if s]
    store = Store(args.store, students, args.quota, args.max_submission, args.timezone)
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        serve_tcp(store, host or "0.0.0.0", int(port), args.hub_api, [n for n in args.instructors.split(",") if n])
    elif args.sockets:
        serve(store, args.sockets)
    else:
        parser.error("--sockets or --listen")
    sys.stderr.write(f"[exchange] serving {len(students)} students on {args.listen or args.sockets} "
                     f"(quota {args.quota} B, submission {args.max_submission} B, uid {os.getuid()})\n")
    sys.stderr.flush()
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
