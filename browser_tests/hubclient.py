"""A hub user without a browser: log in, start the server, run code in a kernel of it, call its APIs.

What a student (or instructor) can do from their own server is what the hostile hub cases need: the code
runs in a kernel of that user's server, exactly as a cell or a terminal command would.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests


class HubUser:
    def __init__(self, hub_url: str, name: str, password: str):
        self.hub_url, self.name = hub_url.rstrip("/"), name
        self.session = requests.Session()
        self.session.get(f"{self.hub_url}/hub/login", timeout=30)
        xsrf = self.session.cookies.get("_xsrf", "")
        r = self.session.post(f"{self.hub_url}/hub/login?next=", data={"username": name, "password": password,
                                                                     "_xsrf": xsrf}, allow_redirects=False, timeout=60)
        if r.status_code not in (200, 302):
            raise RuntimeError(f"{name}: login failed ({r.status_code})")
        self.xsrf = self.session.cookies.get("_xsrf", xsrf)
        r = self.session.post(f"{self.hub_url}/hub/api/users/{name}/tokens", json={"expires_in": 3600, "note": "test"},
                              headers={"X-XSRFToken": self.xsrf}, timeout=30)
        r.raise_for_status()
        self.token = r.json()["token"]
        self.headers = {"Authorization": f"token {self.token}"}
        self.base = f"{self.hub_url}/user/{name}"
        self.kernel_id: str | None = None

    def start_server(self, timeout: float = 120) -> None:
        r = requests.post(f"{self.hub_url}/hub/api/users/{self.name}/server", headers=self.headers, timeout=60)
        if r.status_code not in (201, 202, 400):
            raise RuntimeError(f"{self.name}: could not start the server: {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            user = requests.get(f"{self.hub_url}/hub/api/users/{self.name}", headers=self.headers, timeout=30).json()
            if user.get("servers", {}).get("", {}).get("ready"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.name}: server not ready after {timeout} s")

    def api(self, method: str, path: str, **kwargs):
        return requests.request(method, f"{self.base}{path}", headers=self.headers, timeout=kwargs.pop("timeout", 300),
                                **kwargs)

    def kernel(self) -> str:
        if self.kernel_id is None:
            r = self.api("POST", "/api/kernels", json={"name": "python3"})
            r.raise_for_status()
            self.kernel_id = r.json()["id"]
        return self.kernel_id

    def run(self, code: str, timeout: float = 300) -> str:
        """Execute code in this user's kernel; stdout, stderr and the error (if any) as one text."""
        # a thread of its own: the caller may already run an event loop (Playwright's sync API does)
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self._run(code, timeout)).result()

    async def _run(self, code: str, timeout: float) -> str:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        kernel = self.kernel()
        url = f"{self.base.replace('http', 'ws', 1)}/api/kernels/{kernel}/channels"
        conn = await websocket_connect(HTTPRequest(url, headers=self.headers, request_timeout=60))
        msg_id = uuid.uuid4().hex
        conn.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                       "username": self.name, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    out.append("[timeout]")
                    break
                raw = await asyncio.wait_for(conn.read_message(), remaining)
                if raw is None:
                    out.append("[connection closed]")
                    break
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    out.append(f"{content['ename']}: {content['evalue']}")
                elif kind == "status" and content.get("execution_state") == "idle":
                    break
        except asyncio.TimeoutError:
            out.append("[timeout]")
        finally:
            conn.close()
        return "".join(out)
