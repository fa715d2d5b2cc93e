"""A student's home on the hub is a filesystem of its own (deploy/coursehub.py's mount_home).

Fast and without a hub: the image is made, mounted, filled, unmounted and mounted again. The hostile hub
case (browser_tests/test_hub_hostile.py, test_home_and_server_folder_limits) drives the same from a
student's server. Needs root and a loop device, as the hub does.
"""
from __future__ import annotations

import errno
import os
import shutil
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
sys.path.insert(0, str(DEPLOY))

import coursehub  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mkfs.ext4") or not os.path.exists(
    "/dev/loop-control"), reason="the hub's home limit needs root, mkfs.ext4 and loop devices")

UID = 62123
MB = 2**20


@pytest.fixture
def state(tmp_path):
    yield tmp_path
    for mounted in (tmp_path / "home" / "aoki", tmp_path / "home-images" / "aoki.copying"):
        coursehub.unmount(mounted)


def fill(path: Path, limit_mb: int) -> tuple[int, int | None]:
    written, error = 0, None
    try:
        with open(path, "wb") as f:
            for _ in range(limit_mb):
                f.write(b"h" * MB)
                f.flush()
                os.fsync(f.fileno())
                written += 1
    except OSError as exc:
        error = exc.errno
    return written, error


def test_a_home_holds_its_size_and_no_more_and_keeps_its_files(state):
    home, image = state / "home" / "aoki", state / "home-images" / "aoki.ext4"
    coursehub.mount_home(image, home, 32 * MB, UID)
    assert os.path.ismount(home)
    assert home.stat().st_uid == UID
    assert not (home / "lost+found").exists()
    written, error = fill(home / "big", 100)
    assert error == errno.ENOSPC and 20 <= written <= 32, (written, error)
    (home / "big").unlink()
    (home / "notes.txt").write_text("残しておく", encoding="utf-8")
    empty = state / "empty"
    empty.mkdir()
    os.symlink(empty, home / "lost+found")                   # the student's own "lost+found": not the hub's business
    coursehub.unmount(home)
    assert not os.path.ismount(home) and not (home / "notes.txt").exists()
    coursehub.mount_home(image, home, 32 * MB, UID)          # the next start: the same filesystem again
    assert (home / "notes.txt").read_text(encoding="utf-8") == "残しておく"
    assert (home / "lost+found").is_symlink() and empty.is_dir()
    assert image.stat().st_mode & 0o777 == 0o600 and image.parent.stat().st_mode & 0o777 == 0o700


def test_a_home_from_before_the_limit_moves_in_whole(state):
    home, image = state / "home" / "aoki", state / "home-images" / "aoki.ext4"
    (home / "70_derivatives").mkdir(parents=True)
    (home / "70_derivatives" / "70_derivatives.ipynb").write_text("{}", encoding="utf-8")
    os.symlink("70_derivatives/70_derivatives.ipynb", home / "link")
    os.chown(home / "70_derivatives", UID, UID)
    coursehub.mount_home(image, home, 32 * MB, UID)
    assert os.path.ismount(home)
    assert (home / "70_derivatives" / "70_derivatives.ipynb").read_text(encoding="utf-8") == "{}"
    assert os.readlink(home / "link") == "70_derivatives/70_derivatives.ipynb"
    assert (home / "70_derivatives").stat().st_uid == UID
    before = image.with_suffix(".before-limit")
    assert (before / "70_derivatives" / "70_derivatives.ipynb").is_file(), "the old folder is kept"
    assert not image.with_suffix(".copying").exists()


def test_an_image_that_cannot_be_made_is_an_error_and_leaves_nothing(state):
    home, image = state / "home" / "aoki", state / "home-images" / "aoki.ext4"
    with pytest.raises(OSError, match="mkfs.ext4"):
        coursehub.mount_home(image, home, 4096, UID)              # too small for any ext4 filesystem
    assert not image.exists() and not os.path.ismount(home)
    coursehub.mount_home(image, home, 32 * MB, UID)              # and the next start makes a good one
    assert os.path.ismount(home)
