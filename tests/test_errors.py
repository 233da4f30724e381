"""Every refusal is answered from one table; a fault is a short 500; the connection closes only when it must."""

from __future__ import annotations

import inspect
import socket

import pytest
from fastapi.testclient import TestClient

from app.api.errors import ANSWERS
from app.core import errors
from app.core.settings import Settings
from app.main import create_app
from app.uploads import sessions
from tests.servers import ServerProcess


def _all_subclasses(kind: type) -> set[type]:
    return {kind}.union(*(_all_subclasses(sub) for sub in kind.__subclasses__()))


def test_every_refusal_is_declared_in_the_vocabulary():
    declared = {kind for module in (errors, sessions) for _, kind in inspect.getmembers(module, inspect.isclass)
                if issubclass(kind, errors.ServiceError)}
    assert declared == _all_subclasses(errors.ServiceError)


def test_every_kind_of_refusal_has_its_own_answer():
    kinds = {kind for kind in _all_subclasses(errors.ServiceError) if not kind.__subclasses__()}
    assert kinds - set(ANSWERS) == set()


@pytest.fixture
def faulty_client(store_dir, stream_shortcut):
    """An app whose store fails to open videos, answering faults instead of raising them into the test."""
    app = create_app(Settings(storage_dir=store_dir), stream_shortcut=stream_shortcut)
    opened = []

    async def broken_open(name: str):
        opened.append(name)
        raise OSError("the disk is gone")

    app.state.services.store.open = broken_open
    with TestClient(app, raise_server_exceptions=False) as client:
        client.opened = opened
        yield client


@pytest.mark.parametrize("stream_shortcut", [True, False], ids=["shortcut", "route"])
def test_a_store_fault_while_streaming_is_a_short_500_after_one_attempt(faulty_client):
    response = faulty_client.get("/get_video_by_name/clip.mp4")
    assert (response.status_code, response.json()) == (500, {"detail": "internal error"})
    assert faulty_client.opened == ["clip.mp4"]


@pytest.mark.parametrize("stream_shortcut", [True, False], ids=["shortcut", "route"])
def test_a_store_fault_is_a_friendly_page_for_a_browser(faulty_client):
    response = faulty_client.get("/get_video_by_name/clip.mp4", headers={"accept": "text/html"})
    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert "disk" not in response.text


def test_a_refusal_after_the_whole_body_was_read_keeps_the_connection(client):
    response = client.post("/video", files={"file": ("notes.mp4", b"not a video at all")})
    assert response.status_code == 415
    assert "connection" not in response.headers


def test_a_refusal_before_the_body_was_read_closes_the_connection(make_client):
    response = make_client(max_upload_bytes=10).put("/video/clip.mp4", content=b"x" * 1000)
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


def test_a_refused_write_without_its_token_closes_the_connection(make_client):
    response = make_client(api_token="secret").put("/video/clip.mp4", content=b"x" * 1000)
    assert response.status_code == 401
    assert response.headers["connection"] == "close"


def test_a_refusal_of_a_request_without_a_body_keeps_the_connection(client):
    response = client.delete("/video/missing.mp4")
    assert response.status_code == 404
    assert "connection" not in response.headers


def _exchange(connection: socket.socket, request: bytes) -> bytes:
    """Send one request and read its whole answer (a short JSON body whose length the head gives)."""
    connection.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += connection.recv(65536)
    return head


def test_a_server_answers_the_next_request_on_a_connection_whose_upload_was_refused(store_dir):
    server = ServerProcess({"VIDEO_STORAGE_DIR": str(store_dir)})
    try:
        body = b"not a video at all"
        refused = (f"PUT /video/notes.mp4 HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
            assert _exchange(connection, refused).startswith(b"HTTP/1.1 415")
            assert _exchange(connection, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


def test_a_wrong_method_names_every_method_of_the_address(client):
    response = client.request("OPTIONS", "/video")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
