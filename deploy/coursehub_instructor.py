"""Instructors' server extension on the course hub (stub, filled in below)."""
from traitlets import Unicode
from traitlets.config import Configurable


class CourseInstructor(Configurable):
    timezone = Unicode("Asia/Tokyo", config=True)


def _jupyter_server_extension_points():
    return [{"module": "coursehub_instructor"}]


def _load_jupyter_server_extension(serverapp):
    serverapp.log.info("coursehub_instructor loaded")
