"""Clients that leave early or send too much, against a real server process."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import MiB, connect, read_response_head, send_until_answered, store_snapshot, wait_for


def bytes_read_by(pid: int) -> int:
    """Bytes the process has read through read-like system calls (pread included)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/PID/io")


def settled(read: Callable[[], int], quiet: float = 0.3, timeout: float = 10.0) -> int:
    """The counter's value once it has stopped moving for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    value = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        latest = read()
        if latest == value:
            return value
        value = latest
    return value


def test_abandoned_open_ended_range_stops_reading_the_file(start_server, store_dir):
    with open(store_dir / "big.mp4", "wb") as big:
        big.truncate(512 * MiB)  # sparse: cheap to make, still 512 MiB to read
    server = start_server()
    pid = server.process.pid
    before = settled(lambda: bytes_read_by(pid))
    with connect(server.url) as sock:
        sock.sendall(b"GET /get_video_by_name/big.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-\r\n\r\n")
        assert read_response_head(sock).startswith(b"HTTP/1.1 206")
    read = settled(lambda: bytes_read_by(pid)) - before
    assert read < 64 * MiB, f"server read {read / MiB:.0f} MiB after the client left"


def multipart_head(url: str, content_length: int | None, boundary: str = "B0und") -> tuple[bytes, bytes]:
    length_header = f"Content-Length: {content_length}\r\n" if content_length else "Transfer-Encoding: chunked\r\n"
    request = (f"POST /video HTTP/1.1\r\nHost: x\r\n{length_header}"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n").encode()
    return request, part


def test_client_leaving_mid_upload_leaves_nothing_behind(start_server, store_dir):
    server = start_server()
    before = {name: data for name, data in store_snapshot(store_dir).items()}
    request, part = multipart_head(server.url, content_length=100 * MiB)
    with connect(server.url) as sock:
        sock.sendall(request + part + os.urandom(4 * MiB))
        staging = store_dir / ".staging"
        assert wait_for(lambda: any(staging.iterdir())), "the upload never reached staging"
    assert wait_for(lambda: not any(staging.iterdir())), "staging debris left behind"
    assert store_snapshot(store_dir) == before


def test_limit_is_enforced_while_streaming_a_chunked_upload(start_server, store_dir):
    server = start_server(VIDEO_MAX_UPLOAD_BYTES=str(1 * MiB))
    request, part = multipart_head(server.url, content_length=None)
    chunk = os.urandom(256 * 1024)
    with connect(server.url) as sock:
        sock.sendall(request + b"%x\r\n%s\r\n" % (len(part), part))
        answer, sent = send_until_answered(sock, chunks=1024, chunk=chunk)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 * MiB, "the server let a 256 MiB body in before answering"
    assert wait_for(lambda: not any((store_dir / ".staging").iterdir()))
    assert store_snapshot(store_dir) == {}


def test_declared_oversize_upload_is_refused_before_the_body_is_sent(start_server):
    server = start_server(VIDEO_MAX_UPLOAD_BYTES=str(1 * MiB))
    request, part = multipart_head(server.url, content_length=1024 * MiB)
    with connect(server.url) as sock:
        sock.sendall(request + part)
        assert read_response_head(sock).startswith(b"HTTP/1.1 413")
