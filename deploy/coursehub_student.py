"""Students' server extension on the course hub (bound read-only into the sandbox, enabled by
deploy/student/jupyter_server_config.json).

"(view feedback)" in the Assignment List only moved the file browser: here a click on it opens the
feedback itself in a new browser tab. /coursehub/feedback?timestamp=... answers with the feedback HTML
of that submission from the student's own files (fetched there by Fetch Feedback), with a content
security policy that runs no script.
"""
from __future__ import annotations

import glob
import json
import os

from tornado import web

SCRIPT = """<script>
(function () {
  var config = document.getElementById("jupyter-config-data");
  var base = config ? (JSON.parse(config.textContent).baseUrl || "/") : "/";
  document.addEventListener("click", function (event) {
    var link = event.target && event.target.closest ? event.target.closest("a") : null;
    if (!link || link.textContent.trim() !== "(view feedback)") { return; }
    var row = link.parentElement;
    var stamp = row ? row.textContent.replace(link.textContent, "").trim() : "";
    event.preventDefault();
    event.stopImmediatePropagation();
    window.open(base + "coursehub/feedback?timestamp=" + encodeURIComponent(stamp), "_blank");
  }, true);
})();
</script>"""


def folder_name(timestamp: str) -> str:
    return timestamp.replace(":", "-")


def _jupyter_server_extension_points():
    return [{"module": "coursehub_student"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.base.handlers import JupyterHandler
    from jupyter_server.utils import url_path_join

    root = os.path.realpath(serverapp.root_dir)

    class Feedback(JupyterHandler):
        @web.authenticated
        def get(self):
            stamp = self.get_argument("timestamp", "")
            folder = folder_name(stamp)
            if not stamp or "/" in folder or folder.startswith("."):
                raise web.HTTPError(400, "which submission?")
            found = sorted(glob.glob(os.path.join(glob.escape(root), "*", "feedback", glob.escape(folder), "*.html")))
            found = [f for f in found if os.path.realpath(f).startswith(root + os.sep) and not os.path.islink(f)]
            if not found:
                raise web.HTTPError(404, "no feedback fetched for that submission yet: press Fetch Feedback first")
            with open(found[0], "rb") as f:
                data = f.read()
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; sandbox")
            self.finish(data)

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, "/coursehub/feedback"), Feedback)])


class _InjectingLoader:
    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_source(self, environment, template):
        source, filename, uptodate = self.inner.get_source(environment, template)
        if template == "index.html" and "</body>" in source:
            source = source.replace("</body>", SCRIPT + "\n</body>", 1)
        return source, filename, uptodate

    def load(self, environment, name, globals=None):  # noqa: A002 - jinja's signature
        from jinja2.loaders import BaseLoader

        return BaseLoader.load(self, environment, name, globals)


async def _start_jupyter_server_extension(serverapp):
    env = serverapp.web_app.settings.get("lab_jinja2_env")
    if env is not None and not isinstance(env.loader, _InjectingLoader):
        env.loader = _InjectingLoader(env.loader)
        if env.cache is not None:
            env.cache.clear()
    serverapp.log.info("coursehub_student: feedback opens from the assignment list (%s)", json.dumps(bool(env)))
