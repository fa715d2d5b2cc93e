"""The hub's exchange service (deploy/exchange_service.py) on its own: who may do what, what it stores.

Fast (no hub, no browser): the service runs in threads on Unix sockets in a temporary folder; requests go
through the same client nbgrader uses on the hub (deploy/hubexchange.py's connection class).
"""
from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
sys.path.insert(0, str(DEPLOY))

import exchange_service  # noqa: E402
from hubexchange import _UnixConnection  # noqa: E402


@pytest.fixture
def service(tmp_path):
    store = exchange_service.Store(tmp_path / "store", ["aoki", "baba"], quota=300_000, max_submission=100_000,
                                   timezone="Asia/Tokyo")
    servers = exchange_service.serve(store, tmp_path / "sockets")
    yield tmp_path
    for server in servers:
        server.shutdown()
        server.server_close()


def call(root: Path, who: str, method: str, path: str, payload=None, raw: bytes | None = None):
    conn = _UnixConnection(str(root / "sockets" / who / "exchange.sock"))
    body = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    conn.request(method, path, body=body)
    response = conn.getresponse()
    data = json.loads(response.read() or b"null")
    conn.close()
    return response.status, data


def files(**named: bytes) -> dict:
    return {"files": {k.replace("__", "/"): base64.b64encode(v).decode() for k, v in named.items()}}


NB = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def release(root, name="73_backprop_scalar"):
    assert call(root, "instructor", "PUT", f"/release/{name}", files(**{f"{name}.ipynb": NB}))[0] == 200


def test_identity_is_the_socket_and_time_is_the_services(service):
    release(service)
    before = time.time()
    status, answer = call(service, "aoki", "POST", "/submit/73_backprop_scalar",
                          {"files": {"73_backprop_scalar.ipynb": base64.b64encode(NB).decode(),
                                     "timestamp.txt": base64.b64encode(b"2001-01-01 00:00:00 UTC").decode()},
                           "student": "baba", "timestamp": "2001-01-01 00:00:00"})
    assert status == 200, answer
    assert answer["timestamp"].endswith("+09:00")          # the course's time zone
    from nbgrader.utils import parse_utc
    import calendar
    assert calendar.timegm(parse_utc(answer["timestamp"]).timetuple()) >= int(before) - 1
    listing = call(service, "instructor", "GET", "/inbound/73_backprop_scalar")[1]
    assert [s["id"] for s in listing["aoki"]] == [answer["id"]] and listing["baba"] == []
    # the student's own timestamp.txt is only a file of the submission, never the time
    got = call(service, "instructor", "GET", f"/inbound/73_backprop_scalar/aoki/{answer['id']}")[1]
    assert got["meta"]["timestamp"] == answer["timestamp"]


def test_students_cannot_do_an_instructors_requests(service):
    release(service)
    for method, path in (("PUT", "/release/x"), ("DELETE", "/release/73_backprop_scalar"), ("GET", "/inbound/73_backprop_scalar"),
                         ("PUT", "/feedback/aoki/73_backprop_scalar/20260101T000000000000Z-00000000"), ("GET", "/usage/all")):
        assert call(service, "baba", method, path, files(a=b"x"))[0] == 404, (method, path)


def test_a_refused_requests_body_is_never_read_as_the_next_request(service, capfd):
    """A refused request with a body the handler never read: the rest of that body is not parsed as a second
    request on the same connection (it was: a 400 'Bad request version' and a traceback for each refusal)."""
    import socket
    release(service)
    body = json.dumps(files(a=b"x")).encode()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(service / "sockets" / "baba" / "exchange.sock"))
        sock.sendall(b"PUT /release/x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        sock.settimeout(5)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 404") and b"Connection: close" in answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    time.sleep(0.2)
    log = capfd.readouterr().err
    assert "Bad request" not in log and "Traceback" not in log, log


def test_socket_modes(service):
    assert stat.S_IMODE(os.stat(service / "sockets" / "instructor" / "exchange.sock").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(service / "sockets" / "instructor").st_mode) == 0o700


@pytest.mark.parametrize("name", ["../x.ipynb", "/etc/passwd", ".hidden.ipynb", "a/../../b.ipynb", "a/b/c/d.ipynb",
                                  "x\0.ipynb", "sp ace.ipynb", ""])
def test_bad_names_are_refused_whole(service, name):
    release(service)
    status, answer = call(service, "aoki", "POST", "/submit/73_backprop_scalar",
                          {"files": {"73_backprop_scalar.ipynb": base64.b64encode(NB).decode(),
                                     name: base64.b64encode(b"x").decode()}})
    assert status == 400, answer
    assert call(service, "aoki", "GET", "/submissions")[1] == []


def test_sizes_and_quota(service):
    release(service)
    big = {"73_backprop_scalar.ipynb": base64.b64encode(b"x" * 100_001).decode()}
    assert call(service, "aoki", "POST", "/submit/73_backprop_scalar", {"files": big})[0] == 413
    fine = {"73_backprop_scalar.ipynb": base64.b64encode(b"x" * 90_000).decode()}
    codes = [call(service, "aoki", "POST", "/submit/73_backprop_scalar", {"files": fine})[0] for _ in range(5)]
    assert codes == [200, 200, 200, 413, 413]
    used = call(service, "aoki", "GET", "/usage")[1]["used"]
    assert used <= 300_000
    # a body larger than any submission is refused before it is read
    assert call(service, "baba", "POST", "/submit/73_backprop_scalar", raw=b"{" + b" " * 200_000 + b"}")[0] == 413


def test_only_released_assignments_and_notebooks(service):
    assert call(service, "aoki", "POST", "/submit/74_backprop_matrix", files(**{"74_backprop_matrix.ipynb": NB}))[0] == 404
    release(service)
    assert call(service, "aoki", "POST", "/submit/73_backprop_scalar", files(**{"notes.txt": b"hi"}))[0] == 400
    assert call(service, "aoki", "POST", "/submit/73_backprop_scalar", raw=b"not json")[0] == 400


def test_feedback_reaches_its_student_only(service):
    release(service)
    sub = call(service, "aoki", "POST", "/submit/73_backprop_scalar", files(**{"73_backprop_scalar.ipynb": NB}))[1]
    assert call(service, "instructor", "PUT", f"/feedback/aoki/73_backprop_scalar/{sub['id']}",
                files(**{"73_backprop_scalar.html": b"<p>10/10</p>"}))[0] == 200
    mine = call(service, "aoki", "GET", "/submissions")[1]
    assert list(mine[0]["feedback"]) == ["73_backprop_scalar.html"]
    assert call(service, "aoki", "GET", f"/feedback/73_backprop_scalar/{sub['id']}")[0] == 200
    assert call(service, "baba", "GET", f"/feedback/73_backprop_scalar/{sub['id']}")[0] == 404
    # feedback for a submission that does not exist is refused
    assert call(service, "instructor", "PUT", "/feedback/baba/73_backprop_scalar/" + sub["id"],
                files(**{"x.html": b"x"}))[0] == 404


def test_stored_files_are_private_regular_files(service):
    release(service)
    call(service, "aoki", "POST", "/submit/73_backprop_scalar", files(**{"73_backprop_scalar.ipynb": NB, "data__x.csv": b"1"}))
    for dirpath, dirnames, filenames in os.walk(service / "store"):
        for name in dirnames:
            assert stat.S_IMODE(os.lstat(os.path.join(dirpath, name)).st_mode) == 0o700
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_token_mode_asks_the_hub_who_it_is(tmp_path):
    """Kubernetes: one TCP port; the hub's API says whose token it is (a stand-in hub answers here)."""
    import http.server
    import threading
    import urllib.request

    users = {"tok-aoki": {"name": "aoki", "groups": ["students"]}, "tok-sensei": {"name": "sensei", "groups": ["instructors"]},
             "tok-eve": {"name": "eve", "groups": []}}

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            user = users.get(self.headers.get("Authorization", "")[6:])
            body = json.dumps(user or {}).encode()
            self.send_response(200 if user else 403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    store = exchange_service.Store(tmp_path / "store", ["aoki"], 10**6, 10**5, "Asia/Tokyo")
    server = exchange_service.serve_tcp(store, "127.0.0.1", 0, f"http://127.0.0.1:{hub.server_address[1]}/hub/api",
                                        ["sensei"])
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def req(token, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        r = urllib.request.Request(base + path, data=data, method=method,
                                   headers={"Authorization": f"token {token}"} if token else {})
        try:
            with urllib.request.urlopen(r) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    import urllib.error
    try:
        assert req("tok-sensei", "PUT", "/release/73_backprop_scalar", files(**{"73_backprop_scalar.ipynb": NB})) == 200
        assert req("tok-aoki", "POST", "/submit/73_backprop_scalar", files(**{"73_backprop_scalar.ipynb": NB})) == 200
        assert req("tok-aoki", "GET", "/inbound/73_backprop_scalar") == 404      # a student is not an instructor
        assert req("tok-eve", "GET", "/released") == 403                        # not in the course
        assert req("forged", "GET", "/released") == 403
        assert req(None, "GET", "/released") == 401
    finally:
        server.shutdown()
        hub.shutdown()
