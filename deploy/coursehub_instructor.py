"""The instructors' server extension on the course hub (enabled by deploy/jupyterhub_config.py).

- The formgrader's long operations (generate, release, collect, autograde, generate and release
  feedback) run in a worker thread, one at a time, instead of blocking the whole server; while one
  runs, /coursehub/progress tells what it is doing (its latest log lines, "[3/20] Collected ...").
- Every formgrader page gets deploy/static/formgrader.js: a progress line at the bottom while an
  operation runs; a dialog that finished with per-student PROBLEM lines (deploy/hubexchange.py) is
  shown as "done, with problems" and lists them first, not as a green "Success"; the submissions
  of an assignment show how late each one arrived (the exchange's clock, /coursehub/api/lateness).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jinja2 import BaseLoader
from tornado import web
from traitlets import Unicode
from traitlets.config import Configurable

STATIC = Path(__file__).resolve().parent / "static"


class CourseInstructor(Configurable):
    timezone = Unicode("Asia/Tokyo", config=True, help="the course's time zone")


class Progress(logging.Handler):
    """What the operation running in the worker thread logs, kept for /coursehub/progress."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.state_lock = threading.Lock()
        self.state = {"operation": None, "started": None, "lines": [], "finished": None}
        self.worker: int | None = None

    def emit(self, record):
        if threading.get_ident() != self.worker:
            return
        line = record.getMessage().strip().splitlines()
        if not line:
            return
        with self.state_lock:
            self.state["lines"] = (self.state["lines"] + [line[0][:300]])[-8:]

    def begin(self, operation: str) -> None:
        with self.state_lock:
            self.state = {"operation": operation, "started": time.time(), "lines": [], "finished": None}

    def end(self) -> None:
        with self.state_lock:
            self.state["finished"] = time.time()

    def snapshot(self) -> dict:
        with self.state_lock:
            state = dict(self.state)
        state["running"] = bool(state["operation"]) and state["finished"] is None
        state["elapsed"] = round((state["finished"] or time.time()) - state["started"], 1) if state["started"] else 0
        return state


PROGRESS = Progress()
EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="formgrader-operation")


def _in_worker(operation: str, call):
    def run():
        PROGRESS.worker = threading.get_ident()
        PROGRESS.begin(operation)
        try:
            return call()
        finally:
            PROGRESS.end()
    return run


def _async_post(original, operation: str):
    """A formgrader API handler whose POST runs its nbgrader call in the worker thread."""

    class Handler(original):
        @web.authenticated
        async def post(self, *args):
            _ = self.xsrf_token
            if self.settings["nbgrader_bad_setup"]:
                return self.write_error(500)
            api = self.api
            method = {"assign": lambda: api.generate_assignment(*args), "release": lambda: api.release_assignment(*args),
                      "unrelease": lambda: api.unrelease(*args), "collect": lambda: api.collect(*args),
                      "autograde": lambda: api.autograde(*args),
                      "generate_feedback": lambda: api.generate_feedback(*args),
                      "release_feedback": lambda: api.release_feedback(*args)}[operation]
            label = f"{operation} {' '.join(args)}"
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(EXECUTOR, _in_worker(label, method))
            self.write(json.dumps(result))

    Handler.__name__ = f"Async{original.__name__}"
    return Handler


def _lateness(coursedir, assignment: str, timezone: str) -> dict:
    """student -> when their collected submission arrived (timestamp.txt, the exchange's clock) and how late,
    from submitted/ (autograde copies the same time into the gradebook)."""
    import glob
    from zoneinfo import ZoneInfo

    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.utils import parse_utc

    tz, utc = ZoneInfo(timezone), ZoneInfo("UTC")
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            duedate = gb.find_assignment(assignment).duedate
        except MissingEntry:
            duedate = None
    pattern = coursedir.format_path(coursedir.submitted_directory, "*", assignment)
    out = {}
    for folder in sorted(glob.glob(pattern)):
        student = os.path.basename(os.path.dirname(folder))
        try:
            with open(os.path.join(folder, "timestamp.txt"), encoding="utf-8") as f:
                when = parse_utc(f.read().strip())
        except (OSError, ValueError):
            continue
        late = max(0.0, (when - duedate).total_seconds()) if duedate is not None else 0.0
        out[student] = {"seconds_late": round(late),
                        "submitted_at": when.replace(tzinfo=utc).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z"),
                        "duedate": duedate.replace(tzinfo=utc).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
                        if duedate is not None else None}
    return out


class InjectingLoader(BaseLoader):
    """The formgrader's templates, with formgrader.js added to base.tpl (every page extends it)."""

    def __init__(self, inner, script: str):
        self.inner, self.script = inner, script

    def get_source(self, environment, template):
        source, filename, uptodate = self.inner.get_source(environment, template)
        if template == "base.tpl" and "</body>" in source:
            source = source.replace("</body>", self.script + "\n</body>", 1)
        return source, filename, uptodate

    def list_templates(self):
        return self.inner.list_templates()


def _jupyter_server_extension_points():
    return [{"module": "coursehub_instructor"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join
    from nbgrader.server_extensions.formgrader import apihandlers

    webapp = serverapp.web_app
    base = webapp.settings["base_url"]
    settings = CourseInstructor(parent=serverapp)
    serverapp.log.addHandler(PROGRESS)
    logging.getLogger().addHandler(PROGRESS)

    from jupyter_server.base.handlers import JupyterHandler

    class Progress_(JupyterHandler):
        @web.authenticated
        def get(self):
            self.set_header("Content-Type", "application/json")
            self.set_header("Cache-Control", "no-store")
            self.finish(json.dumps(PROGRESS.snapshot()))

    class Lateness(JupyterHandler):
        @web.authenticated
        def get(self, assignment):
            formgrader = self.settings.get("nbgrader_formgrader")
            if formgrader is None:
                raise web.HTTPError(404)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(_lateness(formgrader.coursedir, assignment, settings.timezone)))

    class Script(JupyterHandler):
        @web.authenticated
        def get(self):
            self.set_header("Content-Type", "application/javascript; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            self.finish((STATIC / "formgrader.js").read_text(encoding="utf-8"))

    operations = [
        (r"/formgrader/api/assignment/([^/]+)/assign", apihandlers.AssignHandler, "assign"),
        (r"/formgrader/api/assignment/([^/]+)/unrelease", apihandlers.UnReleaseHandler, "unrelease"),
        (r"/formgrader/api/assignment/([^/]+)/release", apihandlers.ReleaseHandler, "release"),
        (r"/formgrader/api/assignment/([^/]+)/collect", apihandlers.CollectHandler, "collect"),
        (r"/formgrader/api/assignment/([^/]+)/generate_feedback", apihandlers.GenerateAllFeedbackHandler,
         "generate_feedback"),
        (r"/formgrader/api/assignment/([^/]+)/release_feedback", apihandlers.ReleaseAllFeedbackHandler,
         "release_feedback"),
        (r"/formgrader/api/assignment/([^/]+)/([^/]+)/generate_feedback", apihandlers.GenerateFeedbackHandler,
         "generate_feedback"),
        (r"/formgrader/api/assignment/([^/]+)/([^/]+)/release_feedback", apihandlers.ReleaseFeedbackHandler,
         "release_feedback"),
        (r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde", apihandlers.AutogradeHandler, "autograde"),
    ]
    handlers = [(url_path_join(base, pattern), _async_post(original, op)) for pattern, original, op in operations]
    handlers += [(url_path_join(base, "/coursehub/progress"), Progress_),
                 (url_path_join(base, "/coursehub/api/lateness/([^/]+)"), Lateness),
                 (url_path_join(base, "/coursehub/static/formgrader.js"), Script)]
    # ahead of the formgrader's own handlers for the same addresses
    from tornado.routing import HostMatches, Rule
    from tornado.web import _ApplicationRouter

    webapp.default_router.rules.insert(0, Rule(HostMatches(".*$"), _ApplicationRouter(webapp, handlers)))

    script = (f'<script>window.COURSEHUB = {json.dumps({"base": base.rstrip("/"), "timezone": settings.timezone})};'
              f'</script><script src="{url_path_join(base, "/coursehub/static/formgrader.js")}"></script>')

    # formgrader.js in every formgrader page: wrap the template loader the formgrader makes (or made)
    from nbgrader.server_extensions.formgrader import formgrader as formgrader_module

    plain = formgrader_module.FileSystemLoader
    if not getattr(plain, "coursehub", False):
        def injecting(*args, **kwargs):
            return InjectingLoader(plain(*args, **kwargs), script)
        injecting.coursehub = True
        formgrader_module.FileSystemLoader = injecting
    env = webapp.settings.get("nbgrader_jinja2_env")
    if env is not None and not isinstance(env.loader, InjectingLoader):
        env.loader = InjectingLoader(env.loader, script)
        if env.cache is not None:
            env.cache.clear()
    os.environ.setdefault("TZ", settings.timezone)
    serverapp.log.info("coursehub_instructor: formgrader operations in a worker thread, progress at %s",
                       url_path_join(base, "/coursehub/progress"))
