"""Staging files of processes that died go when a store is opened; those of live processes stay, whatever their age.

Real server processes killed with SIGKILL in the middle of an upload, and
servers started beside a live one on the same store.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from app.core.settings import CATALOG_DIR, Settings
from app.media.workers import MediaWorkers
from app.storage.local import LocalStore
from tests.helpers import connect, read_response_head, upload, wait_for

BOUNDARY = "Orph4n"
TWO_DAYS = 2 * 24 * 3600


def multipart_upload(body_length: int, filename: str = "clip.mp4") -> tuple[bytes, bytes]:
    """The request head and the file part's head of ``POST /video`` with a file of ``body_length`` bytes."""
    part = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: video/mp4\r\n\r\n").encode()
    length = len(part) + body_length + len(closing())
    head = (f"POST /video HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n").encode()
    return head, part


def closing() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


def staged_files(staging: Path) -> list[Path]:
    """The files in a staging folder; the catalog's folder aside (an S3 store's default catalog lives there)."""
    return sorted(path for path in staging.iterdir() if path.name != CATALOG_DIR)


def has_bytes(staging: Path) -> bool:
    """Whether an upload's bytes have reached staging."""
    return any(path.stat().st_size > 0 for path in staged_files(staging))


@pytest.fixture
def staging(store_env: dict[str, str], store_dir: Path) -> Path:
    """Where the service of ``store_env`` stages uploads (inside a local store; a folder of its own for S3)."""
    return Path(store_env.get("VIDEO_STAGING_DIR", store_dir / ".staging"))


def start_upload(url: str, body_length: int, first_bytes: bytes) -> socket.socket:
    """A connection that has sent the start of an upload of ``body_length`` bytes (its first ones included)."""
    head, part = multipart_upload(body_length)
    sock = connect(url)
    sock.sendall(head + part + first_bytes)
    return sock


def test_a_server_killed_mid_upload_leaves_an_orphan_the_next_server_removes_at_start_up(start_service, staging):
    server = start_service()
    with start_upload(server.url, 64 * 1024**2, os.urandom(1024**2)):
        assert wait_for(lambda: has_bytes(staging)), "the upload never reached staging"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
    assert staged_files(staging), "the killed server left nothing to clean up"
    start_service()
    assert staged_files(staging) == []


@pytest.mark.parametrize("store_env", ["local"], indirect=True)
def test_an_old_staging_file_of_a_live_server_survives_another_servers_start_up(start_service, staging,
                                                                                sample_mp4, store_dir):
    video = sample_mp4.read_bytes()
    first = start_service()
    half = len(video) // 2
    with start_upload(first.url, len(video), video[:half]) as sock:
        assert wait_for(lambda: has_bytes(staging)), "the upload never reached staging"
        [live] = staged_files(staging)
        os.utime(live, (time.time() - TWO_DAYS,) * 2)  # a stalled client: age says nothing about its owner
        start_service()
        assert staged_files(staging) == [live]
        sock.sendall(video[half:] + closing())
        assert read_response_head(sock).startswith(b"HTTP/1.1 201")
    assert (store_dir / "clip.mp4").read_bytes() == video


def test_an_upload_being_remuxed_survives_a_store_opened_on_it_meanwhile(make_client, store_dir, sample_mp4_moov_last,
                                                                         monkeypatch):
    """Both the upload and its faststart copy, written by a worker in another process, stay locked meanwhile."""
    remux = MediaWorkers.remux_faststart

    async def remux_while_another_store_starts(workers: MediaWorkers, source: str, target: str,
                                               *args: object) -> bool:
        for path in (Path(source), Path(target)):
            os.utime(path, (time.time() - TWO_DAYS,) * 2)
        LocalStore(store_dir, Settings().chunk_bytes, 0)
        assert sorted(staged_files(store_dir / ".staging")) == sorted([Path(source), Path(target)])
        return await remux(workers, source, target, *args)

    monkeypatch.setattr(MediaWorkers, "remux_faststart", remux_while_another_store_starts)
    response = upload(make_client(), sample_mp4_moov_last)
    assert response.status_code == 201, response.text
    assert staged_files(store_dir / ".staging") == []
