"""``python -m app serve`` (what ``make run`` starts) bounds what a connection may cost, on a real socket.

Heads have a size, a line count and a time limit; connections have a count;
only HTTP/1.0 and 1.1 are served. What the limits must not do is cut off a
response or a body that takes longer than a head may.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time

import httpx
import pytest

from sqlalchemy import text

from app.catalog.database import NEWEST_REVISION
from app.core.settings import Settings
from app.server import serve
from tests.helpers import MiB, connect, in_database, put_file, read_response_head, wait_for
from tests.servers import PLAIN_UVICORN, REPO, ServerProcess


def status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def closed_by_server(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Whether the server closes the connection within ``timeout`` (whatever it sent first is read)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def answer_to(server: ServerProcess, raw: bytes) -> bytes:
    with connect(server.url) as sock:
        sock.sendall(raw)
        return read_response_head(sock)


def get(path: str, *headers: bytes) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def receive_until(sock: socket.socket, *markers: bytes) -> bytes:
    """What arrives until each marker has been seen, in order."""
    data, searched_from = b"", 0
    for marker in markers:
        while (found := data.find(marker, searched_from)) < 0:
            chunk = sock.recv(65536)
            assert chunk, f"closed before {marker!r}"
            data += chunk
        searched_from = found + len(marker)
    return data


def read_slowly(sock: socket.socket, length: int, piece: int, pause: float) -> int:
    """Read ``length`` bytes ``piece`` at a time with a pause in between: a client slower than the server."""
    received = 0
    while received < length:
        chunk = sock.recv(min(piece, length - received))
        if not chunk:
            break
        received += len(chunk)
        time.sleep(pause)
    return received


@pytest.fixture
def big_video(store_dir):
    """64 MiB: more than loopback socket buffers hold, so a slow reader keeps the response in progress."""
    path = store_dir / "big.mp4"
    with open(path, "wb") as big:
        big.truncate(64 * MiB)
    return path


def test_a_head_past_the_size_limit_is_answered_431_and_closed(start_server):
    server = start_server(VIDEO_MAX_HEAD_BYTES="16384")
    with connect(server.url) as sock:
        sock.sendall(get("/healthz", b"X-Padding: " + b"a" * 20_000))
        assert status_of(read_response_head(sock)) == 431
        assert closed_by_server(sock)


def test_a_head_within_the_size_limit_is_served(start_server):
    server = start_server(VIDEO_MAX_HEAD_BYTES="16384")
    assert status_of(answer_to(server, get("/healthz", b"X-Padding: " + b"a" * 12_000))) == 200


def test_a_huge_head_is_cut_off_long_before_it_ends(start_server):
    server = start_server(VIDEO_MAX_HEAD_BYTES="16384")
    piece = b"a" * MiB
    sent = 0
    with connect(server.url) as sock, pytest.raises(OSError):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Huge: ")
        while sent < 256 * MiB:
            sock.sendall(piece)
            sent += len(piece)
    assert sent < 64 * MiB


def test_too_many_header_lines_are_answered_431(start_server):
    server = start_server(VIDEO_MAX_HEADER_COUNT="20")
    head = get("/healthz", *(b"X-Line-%d: 1" % index for index in range(25)))
    assert status_of(answer_to(server, head)) == 431


def test_header_lines_up_to_the_limit_are_served(start_server):
    server = start_server(VIDEO_MAX_HEADER_COUNT="20")
    head = get("/healthz", *(b"X-Line-%d: 1" % index for index in range(19)))
    assert status_of(answer_to(server, head)) == 200


def test_a_request_line_without_a_version_is_answered_505(start_server):
    server = start_server()
    assert status_of(answer_to(server, b"GET /healthz\r\n\r\n")) == 505


def test_a_head_trickling_in_past_the_timeout_is_answered_408(start_server):
    server = start_server(VIDEO_HEAD_TIMEOUT_SECONDS="1")
    started = time.monotonic()
    with connect(server.url) as sock:
        sock.settimeout(0.2)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        answer = b""
        while not answer and time.monotonic() - started < 10:
            sock.sendall(b"X")  # a byte every 0.2 s: never idle, never done
            try:
                answer = read_response_head(sock)
            except TimeoutError:
                continue
    assert status_of(answer) == 408
    assert time.monotonic() - started < 5


def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(start_server):
    server = start_server(VIDEO_HEAD_TIMEOUT_SECONDS="1")
    with connect(server.url) as sock:
        assert closed_by_server(sock, timeout=5)


def test_a_response_slower_than_the_head_timeout_is_sent_whole(start_server, big_video):
    server = start_server(VIDEO_HEAD_TIMEOUT_SECONDS="1")
    length = big_video.stat().st_size
    with connect(server.url) as sock:
        sock.sendall(get("/get_video_by_name/big.mp4"))
        head = read_response_head(sock)
        body_start = len(head) - head.index(b"\r\n\r\n") - 4
        assert read_slowly(sock, length - body_start, 4 * MiB, 0.1) == length - body_start


def test_a_pipelined_response_slower_than_the_head_timeout_is_sent_whole(start_server, big_video):
    server = start_server(VIDEO_HEAD_TIMEOUT_SECONDS="1")
    length = big_video.stat().st_size
    with connect(server.url) as sock:
        sock.sendall(get("/healthz") + get("/get_video_by_name/big.mp4"))
        received = receive_until(sock, b'{"status":"ok"}HTTP/1.1 200 OK', b"\r\n\r\n")
        body_start = len(received) - received.rindex(b"\r\n\r\n") - 4
        assert read_slowly(sock, length - body_start, 4 * MiB, 0.1) == length - body_start


def test_a_connection_past_the_limit_is_answered_503_and_closed(start_server):
    server = start_server(VIDEO_MAX_CONNECTIONS="3", VIDEO_KEEP_ALIVE_SECONDS="60")
    held = [connect(server.url) for _ in range(3)]
    try:
        for sock in held:  # a request answered on each: the server has counted all three
            sock.sendall(get("/healthz"))
            assert status_of(read_response_head(sock)) == 200
        with connect(server.url) as extra:
            assert status_of(read_response_head(extra)) == 503
            assert closed_by_server(extra)
    finally:
        for sock in held:
            sock.close()


def test_a_connection_is_served_again_once_others_have_closed(start_server):
    server = start_server(VIDEO_MAX_CONNECTIONS="1", VIDEO_KEEP_ALIVE_SECONDS="60")
    with connect(server.url) as first:
        first.sendall(get("/healthz"))
        assert status_of(read_response_head(first)) == 200
    assert wait_for(lambda: status_of(answer_to(server, get("/healthz"))) == 200)


@pytest.mark.parametrize(("trusted", "scheme"), [("false", "http://"), ("true", "https://")])
def test_forwarded_proto_changes_urls_only_when_trusted(start_server, store_dir, trusted, scheme):
    put_file(store_dir, "clip.mp4", b"stored by hand")
    server = start_server(VIDEO_TRUST_PROXY_HEADERS=trusted)
    listing = httpx.get(server.url + "/video", headers={"X-Forwarded-Proto": "https"}).json()
    assert listing["videos"][0]["video_url"].startswith(scheme)


def test_the_app_still_serves_under_plain_uvicorn(store_dir):
    put_file(store_dir, "clip.mp4", b"stored by hand")
    server = ServerProcess({"VIDEO_STORAGE_DIR": str(store_dir)}, runner=PLAIN_UVICORN)
    try:
        answer = httpx.get(server.url + "/get_video_by_name/clip.mp4", headers={"Range": "bytes=0-5"})
        assert (answer.status_code, answer.content) == (206, b"stored")
    finally:
        server.stop()


def test_serve_bounds_glibc_malloc_and_leaves_other_libraries_alone(monkeypatch):
    """Large buffers are unmapped when freed and arenas are few (README, "Memory"); only glibc has mallopt."""
    assert serve.bound_malloc() is (platform.libc_ver()[0] == "glibc")
    monkeypatch.setattr(serve.platform, "libc_ver", lambda: ("musl", ""))
    assert serve.bound_malloc() is False


SERVE_UNTIL_UVICORN = ("import sys; from app.server import serve; "
                       "serve.uvicorn.Server.run = lambda server: print(sorted("
                       "{name.split('.')[0] for name in sys.modules} & {'alembic', 'mako'})); serve.main([])")
"""``python -m app serve`` up to the moment uvicorn would start the app, saying whether Alembic or Mako were
loaded by then."""


def test_serve_migrates_the_catalog_in_a_child_process_before_uvicorn_starts(store_dir):
    """So that the app finds it up to date, and the server never holds Alembic (README, "Memory")."""
    told = subprocess.run([sys.executable, "-c", SERVE_UNTIL_UVICORN], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "VIDEO_STORAGE_DIR": str(store_dir)}, timeout=60, check=True)
    assert told.stdout == "[]\n"
    url = Settings(storage_dir=store_dir).catalog_url
    assert in_database(url, lambda connection: connection.scalar(text("SELECT version_num FROM alembic_version"))) \
        == NEWEST_REVISION
