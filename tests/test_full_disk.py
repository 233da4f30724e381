"""A full disk, and the free-space reserve, on a real 8 MiB filesystem: 507 with a reason, never a 500.

Each test mounts its own tmpfs and keeps the store on it (``store`` beside a
``filler`` file that takes space the way other writers would), so the disk
really runs out: no write is faked. Uploads are random bytes under
``VIDEO_ACCEPT_ANY_FILE``, since what matters here is where the bytes go.
"""

from __future__ import annotations

import gc
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import (CHUNK, MiB, TUS, connect, create, metadata, patch, processed, put, put_file, refused,
                           send_until_answered, store_snapshot, upload, wait_for)

DISK_BYTES = 8 * MiB
ANY_FILE = {"accept_any_file": True}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of DISK_BYTES (a tmpfs), mounted for this test alone."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem (needs root): {mounted.stderr.strip()}")
    yield mount
    # A catalog connection whose write met the full disk is closed only once the reference cycle of
    # its exception is collected; until then the mount is busy.
    gc.collect()
    subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def store_dir(disk: Path) -> Path:
    """The store of this module's apps and servers: on the small disk."""
    store = disk / "store"
    store.mkdir()
    return store


def take_space(disk: Path, leave: int) -> Path:
    """Fill the disk with a file beside the store until only ``leave`` bytes are free; the file."""
    info = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(bytes(info.f_bavail * info.f_frsize - leave))
    return filler


def in_pieces(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """``data`` as a body of unknown length (sent chunked)."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def upload_id(url: str) -> str:
    return url.rpartition("/")[2]


def offset_of(client, url: str) -> int:
    return int(client.head(url, headers=TUS).headers["upload-offset"])


# --- a disk that fills up (no reserve) ------------------------------------------------------------

def test_a_form_upload_that_fills_the_disk_is_507_and_leaves_the_store_as_it_was(make_client, store_dir, before):
    client = make_client(min_free_bytes=0, **ANY_FILE)
    detail = refused(upload(client, os.urandom(DISK_BYTES + MiB)), store_dir, before, 507)
    assert "storage space" in detail


def test_a_put_that_fills_the_disk_is_507_and_keeps_the_video_it_would_replace(make_client, store_dir, before):
    client = make_client(min_free_bytes=0, **ANY_FILE)
    refused(put(client, "existing.mp4", os.urandom(DISK_BYTES + MiB)), store_dir, before, 507)


def test_a_tus_chunk_that_fills_the_disk_is_507_and_the_offset_is_the_bytes_kept(make_client, store_dir):
    client = make_client(min_free_bytes=0, **ANY_FILE)
    data = os.urandom(DISK_BYTES + MiB)
    url = create(client, len(data))
    assert patch(client, url, 0, data).status_code == 507
    kept = (store_dir / ".uploads" / f"{upload_id(url)}.part").read_bytes()
    assert 0 < offset_of(client, url) == len(kept)
    assert kept == data[:len(kept)]


def test_a_tus_chunk_that_fills_the_disk_leaves_no_temporary_state_file(make_client, store_dir):
    client = make_client(min_free_bytes=0, **ANY_FILE)
    url = create(client, DISK_BYTES + MiB)
    assert patch(client, url, 0, os.urandom(DISK_BYTES + MiB)).status_code == 507
    assert sorted(path.name for path in (store_dir / ".uploads").iterdir()) == [
        f"{upload_id(url)}.json", f"{upload_id(url)}.part"]


def test_a_tus_upload_resumes_once_space_is_freed_and_its_video_has_the_bytes_sent(make_client, disk):
    client = make_client(min_free_bytes=0, **ANY_FILE)
    data = os.urandom(6 * MiB)
    filler = take_space(disk, leave=3 * MiB)
    url = create(client, len(data))
    assert patch(client, url, 0, data).status_code == 507
    filler.unlink()
    offset = offset_of(client, url)
    finished = patch(client, url, offset, data[offset:])
    assert finished.status_code == 204, finished.text
    assert client.get(finished.headers["video-url"]).content == data


def test_a_creation_with_upload_that_fills_the_disk_is_507_and_keeps_no_session(make_client, store_dir):
    client = make_client(min_free_bytes=0, **ANY_FILE)
    data = os.urandom(DISK_BYTES + MiB)
    response = client.post("/uploads/", content=data, headers={
        **CHUNK, "upload-length": str(len(data)), "upload-metadata": metadata(filename="big.mp4")})
    assert response.status_code == 507, response.text
    assert "location" not in response.headers
    assert not any((store_dir / ".uploads").iterdir())


def test_a_video_that_finds_no_room_to_queue_its_description_says_so(make_client, store_dir, disk, sample_mp4):
    client = make_client(min_free_bytes=0)
    assert client.get("/video").status_code == 200  # the catalog is made while there is room
    put_file(store_dir, "clip.mp4", sample_mp4.read_bytes())
    take_space(disk, leave=0)
    response = client.get("/video/clip.mp4")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], "no room" in response.json()["status_reason"]) == ("failed", True)
    assert not any((store_dir / ".staging").iterdir())


def test_a_video_is_described_once_there_is_room_again(make_client, store_dir, disk, sample_mp4):
    client = make_client(min_free_bytes=0)
    assert client.get("/video").status_code == 200
    put_file(store_dir, "clip.mp4", sample_mp4.read_bytes())
    filler = take_space(disk, leave=0)
    client.get("/video/clip.mp4")
    filler.unlink()
    assert processed(client, "clip.mp4")["duration"] > 0


def test_a_served_upload_that_fills_the_disk_is_answered_507_while_it_is_sent(start_server, store_dir):
    server = start_server(VIDEO_MIN_FREE_BYTES="0", VIDEO_ACCEPT_ANY_FILE="true")
    with connect(server.url) as sock:
        sock.sendall(b"PUT /video/big.mp4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        answer, sent = send_until_answered(sock, chunks=64, chunk=os.urandom(256 * 1024))
    assert answer.startswith(b"HTTP/1.1 507"), answer[:200]
    assert wait_for(lambda: not any((store_dir / ".staging").iterdir()))
    assert store_snapshot(store_dir) == {}


# --- the free-space reserve (VIDEO_MIN_FREE_BYTES) ------------------------------------------------

def test_an_upload_declared_larger_than_the_room_above_the_reserve_is_refused_before_it_is_read(
        make_client, store_dir, before):
    client = make_client(min_free_bytes=4 * MiB, **ANY_FILE)
    response = put(client, "new.mp4", os.urandom(5 * MiB))
    refused(response, store_dir, before, 507)
    assert response.headers["connection"] == "close"


def test_a_body_of_unknown_length_stops_with_507_when_free_space_falls_below_the_reserve(
        make_client, store_dir, before):
    client = make_client(min_free_bytes=5 * MiB, **ANY_FILE)
    response = client.put("/video/new.mp4", content=in_pieces(os.urandom(6 * MiB)))
    refused(response, store_dir, before, 507)


def test_a_tus_chunk_declared_larger_than_the_room_above_the_reserve_is_refused_before_it_is_read(
        make_client, disk):
    client = make_client(min_free_bytes=2 * MiB, **ANY_FILE)
    url = create(client, 4 * MiB)
    take_space(disk, leave=4 * MiB)
    response = patch(client, url, 0, os.urandom(4 * MiB))
    assert (response.status_code, response.headers["connection"]) == (507, "close")
    assert offset_of(client, url) == 0


def test_a_served_tus_upload_longer_than_the_room_above_the_reserve_is_refused_at_creation(start_server, store_dir):
    server = start_server(VIDEO_MIN_FREE_BYTES=str(4 * MiB))
    response = httpx.post(f"{server.url}/uploads/", headers={**TUS, "upload-length": str(5 * MiB)})
    assert response.status_code == 507
    assert "storage space" in response.json()["detail"]
    assert not any((store_dir / ".uploads").iterdir())
