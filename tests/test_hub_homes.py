"""A student's home on the hub is a filesystem of its own (deploy/coursehub.py's mount_home).

Fast and without a hub: the image is made, mounted, filled, unmounted and mounted again. The hostile hub
case (browser_tests/test_hub_hostile.py, test_home_and_server_folder_limits) drives the same from a
student's server. Needs root and a loop device, as the hub does.
"""
from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
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
    for mounted in (tmp_path / "home" / "aoki", tmp_path / "home-images" / "aoki.ext4.new.copying"):
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
    before = image.with_name("aoki.ext4.before-limit")
    assert (before / "70_derivatives" / "70_derivatives.ipynb").is_file(), "the old folder is kept"
    assert not image.with_name("aoki.ext4.new.copying").exists() and not image.with_name("aoki.ext4.new").exists()


def test_an_image_that_cannot_be_made_is_an_error_and_leaves_nothing(state):
    home, image = state / "home" / "aoki", state / "home-images" / "aoki.ext4"
    with pytest.raises(OSError, match="mkfs.ext4"):
        coursehub.mount_home(image, home, 4096, UID)              # too small for any ext4 filesystem
    assert not image.exists() and not os.path.ismount(home)
    coursehub.mount_home(image, home, 32 * MB, UID)              # and the next start makes a good one
    assert os.path.ismount(home)


def test_raid_signatures_written_by_the_student_do_not_lock_the_home(state):
    """md RAID 0.90 keeps its superblock in the device's last 64 KiB: a home full of blocks that start with
    its magic number once made the image probe as "linux_raid_member", and the home never mounted again."""
    home, image = state / "home" / "aoki", state / "home-images" / "aoki.ext4"
    coursehub.mount_home(image, home, 512 * MB, UID)          # as large as it takes: 4 KiB blocks at the end
    block = struct.pack("<4I", 0xA92B4EFC, 0, 90, 0).ljust(4096, b"\0")
    try:
        for n in range(600):
            (home / f"d{n}").mkdir()
            with open(home / f"d{n}" / "raid", "wb") as f:
                for _ in range(MB // 4096):
                    f.write(block)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    os.sync()
    coursehub.unmount(home)
    probe = subprocess.run(["blkid", "-p", str(image)], capture_output=True, text=True).stdout
    assert "linux_raid_member" not in probe, probe
    try:
        coursehub.mount_home(image, home, 512 * MB, UID)
        assert os.path.ismount(home)
    finally:
        coursehub.unmount(home)
        image.unlink()                                         # half a gigabyte: not left in pytest's folders


def test_space_freed_in_a_home_is_freed_on_the_host(state):
    home, image = state / "home" / "aoki", state / "home-images" / "aoki.ext4"
    coursehub.mount_home(image, home, 32 * MB, UID)
    (home / "big").write_bytes(os.urandom(20 * MB))
    os.sync()
    used = image.stat().st_blocks * 512
    (home / "big").unlink()
    for _ in range(50):                      # ext4 discards after the journal commits
        os.sync()
        if image.stat().st_blocks * 512 < used - 15 * MB:
            break
        time.sleep(0.1)
    assert image.stat().st_blocks * 512 < used - 15 * MB, (used, image.stat().st_blocks * 512)


def test_an_old_home_with_its_own_lost_and_found_moves_in(state):
    home, image = state / "home" / "aoki", state / "home-images" / "aoki.ext4"
    home.mkdir(parents=True)
    (home / "notes.txt").write_text("x", encoding="utf-8")
    os.symlink("/", home / "lost+found")
    coursehub.mount_home(image, home, 32 * MB, UID)
    assert os.path.ismount(home) and (home / "notes.txt").is_file()
    assert os.readlink(home / "lost+found") == "/"


def test_an_old_home_too_big_for_the_limit_is_left_as_it_was(state):
    home, image = state / "home" / "aoki", state / "home-images" / "aoki.ext4"
    home.mkdir(parents=True)
    (home / "big").write_bytes(b"x" * (40 * MB))
    with pytest.raises(coursehub.HomeNotMoved):
        coursehub.mount_home(image, home, 32 * MB, UID)
    assert not os.path.ismount(home) and (home / "big").stat().st_size == 40 * MB
    assert sorted(p.name for p in image.parent.iterdir()) == [], "no image, half-made or whole, is left"


# -- the relay in front of a server's socket ------------------------------------------------------------

async def _relay_round(tmp: Path, uid: int) -> tuple[bytes, bytes]:
    """A Unix echo server held by this process; a relay that expects `uid`. What a client gets back, and what
    it reads after the relay is closed with the connection still open."""
    path = str(tmp / "server.sock")

    async def echo(reader, writer):
        while data := await reader.read(100):
            writer.write(data)
            await writer.drain()

    server = await asyncio.start_unix_server(echo, path)
    relay = coursehub.Relay(path, uid)
    port = await relay.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    await writer.drain()
    try:
        first = await asyncio.wait_for(reader.read(100), 5)
    except asyncio.TimeoutError:
        first = b"(nothing)"
    relay.close()
    try:
        after = await asyncio.wait_for(reader.read(100), 5)
    except (asyncio.TimeoutError, ConnectionError):
        after = b"(error)"
    writer.close()
    server.close()
    return first, after


def test_the_relay_forwards_only_to_a_socket_of_its_user_and_closes_what_it_carries(tmp_path):
    first, after = asyncio.run(_relay_round(tmp_path, os.geteuid()))
    assert first == b"ping" and after in (b"", b"(error)"), (first, after)   # closed with the relay
    (tmp_path / "server.sock").unlink()
    first, _ = asyncio.run(_relay_round(tmp_path, UID))                      # the socket is not UID's
    assert first in (b"", b"(error)"), first
