"""What several test modules use: constants, looking at and filling a store, waiting for a condition,
requests to the library API and to tus uploads, reading their answers, and raw sockets.

A helper that one module alone uses stays in that module; fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import base64
import email.policy
import io
import select
import socket
import time
from collections.abc import Awaitable, Callable
from email.parser import BytesParser
from pathlib import Path
from typing import TypeVar

import av
import httpx
import sqlalchemy
from sqlalchemy.engine import Connection
from tusclient.client import TusClient
from tusclient.uploader import Uploader

from app.catalog.database import make_engine
from app.catalog.tables import JobRow
from app.core.settings import CATALOG_DIR

MiB = 1024 * 1024
T = TypeVar("T")
WAIT = 10  # seconds: a test that waits longer than this has failed
TUS = {"tus-resumable": "1.0.0"}
CHUNK = {**TUS, "content-type": "application/offset+octet-stream"}


# --- the store ------------------------------------------------------------------------------------

def store_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under a store, hidden ones included, with its bytes; the catalog's database aside
    (it mirrors the store, and a server that opens it writes to it)."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and path.relative_to(root).parts[0] != CATALOG_DIR}


def put_file(store: Path, name: str, data: bytes) -> Path:
    """Place a file in a store by hand, as an operator copying videos in would."""
    path = store / name
    path.write_bytes(data)
    return path


def visible(store: Path) -> list[str]:
    """The names of the files a local store shows (hidden ones left out)."""
    return sorted(path.name for path in store.iterdir() if not path.name.startswith("."))


# --- the catalog's database ---------------------------------------------------------------------

def in_database(database_url: str, work: Callable[[Connection], T]) -> T:
    """What ``work`` returns, run in one committed transaction on the database itself, past the service."""
    async def run() -> T:
        engine = make_engine(database_url)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def job_state(database_url: str, video: str, kind: str = "describe") -> tuple[str, int]:
    """The status and tries of ``video``'s job of ``kind``, as the catalog's database holds them."""
    def read(connection: Connection) -> tuple[str, int]:
        row = connection.execute(sqlalchemy.select(JobRow.status, JobRow.attempts).where(
            JobRow.video == video, JobRow.kind == kind)).first()
        return (row.status, row.attempts) if row else ("none", 0)

    return in_database(database_url, read)


# --- waiting --------------------------------------------------------------------------------------

def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll a condition that no event announces (files on disk, counters in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# --- the library API ------------------------------------------------------------------------------

def header_fields(**headers: str) -> dict[str, str]:
    """Keyword arguments as header fields: ``if_match=`` is If-Match."""
    return {key.replace("_", "-"): value for key, value in headers.items()}


def processed(client, name: str) -> dict:
    """The description of ``name`` once its media work has ended (ready or failed).

    Waits on the video's events stream, which ends when the work does (bounded by the client's timeout).
    """
    with client.stream("GET", f"/video/{name}/events", timeout=WAIT) as events:
        assert events.status_code == 200
        for _ in events.iter_lines():
            pass
    return client.get(f"/video/{name}").json()


def upload(client, video: Path | bytes, filename: str | None = None, **kwargs: object) -> httpx.Response:
    """``POST /video`` with one file field, as a form sends it.

    A file goes under its own name and bytes as ``clip.mp4`` (a video/mp4 part), unless ``filename`` is given.
    """
    if isinstance(video, bytes):
        part = ("clip.mp4" if filename is None else filename, video, "video/mp4")
    else:
        part = (filename or video.name, video.read_bytes())
    return client.post("/video", files={"file": part}, **kwargs)


def uploaded(client, video: Path | bytes, filename: str | None = None) -> dict:
    """Upload a video and give its description once it is processed (its poster made)."""
    response = upload(client, video, filename)
    assert response.status_code == 201, response.text
    return processed(client, response.json()["name"])


def put(client, name: str, video: Path | bytes, **headers: str) -> httpx.Response:
    """``PUT /video/{name}`` with a file's bytes or with bytes; keyword arguments are headers."""
    content = video if isinstance(video, bytes) else video.read_bytes()
    return client.put(f"/video/{name}", content=content, headers=header_fields(**headers))


def refused(response: httpx.Response, store: Path, before: dict[str, bytes], status: int = 415) -> str:
    """Check that a write was refused with ``status`` and left the store as it was; the answer's detail."""
    assert response.status_code == status, response.text
    assert store_snapshot(store) == before
    assert not any((store / ".staging").iterdir())
    return response.json()["detail"]


def parts_of(response: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Range, body) of each part of a multipart/byteranges response."""
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + response.content)
    return [(part["content-range"], part.get_payload(decode=True)) for part in message.iter_parts()]


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Decode a JPEG for real and return its picture size."""
    with av.open(io.BytesIO(data), format="image2pipe") as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


# --- tus uploads ----------------------------------------------------------------------------------
# With an httpx.AsyncClient, ``create`` and ``patch`` give awaitables of what they give with a client.

def metadata(**values: str) -> str:
    """An Upload-Metadata header's value."""
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def create(client, length: int, filename: str | None = "clip.mp4") -> str | Awaitable[str]:
    """Create an upload of ``length`` bytes to be stored as ``filename`` (None: no name sent); its URL."""
    named = {} if filename is None else {"upload-metadata": metadata(filename=filename)}
    answer = client.post("/uploads/", headers={**TUS, "upload-length": str(length), **named})
    if isinstance(client, httpx.AsyncClient):
        async def location() -> str:
            return _created(await answer)

        return location()
    return _created(answer)


def _created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"]


def patch(client, url: str, offset: int, data, **headers: str) -> httpx.Response | Awaitable[httpx.Response]:
    """Append ``data`` (bytes, or an async iterable of them) at ``offset``; extra headers as given."""
    return client.patch(url, content=data, headers={**CHUNK, "upload-offset": str(offset), **headers})


def uploader(server_url: str, path: Path, chunk_size: int = 16 * 1024, filename: str | None = None,
             **options: object) -> Uploader:
    """tuspy's uploader of ``path`` to a running service, stored under ``filename`` or the file's name."""
    client = TusClient(f"{server_url}/uploads/")
    return Uploader(file_path=str(path), client=client, chunk_size=chunk_size,
                    metadata={"filename": filename or path.name}, **options)


# --- raw HTTP over a socket -----------------------------------------------------------------------

def connect(url: str) -> socket.socket:
    """A TCP connection to the server at ``url`` (``http://host:port``), for requests sent byte for byte."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_response_head(sock: socket.socket) -> bytes:
    """What arrives up to the end of the response head, or until the server closes the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def send_until_answered(sock: socket.socket, chunks: int, chunk: bytes) -> tuple[bytes, int]:
    """Send chunked-encoded ``chunk`` up to ``chunks`` times, stopping once the server answers."""
    sent = 0
    for _ in range(chunks):
        if select.select([sock], [], [], 0)[0]:
            break
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    try:
        return read_response_head(sock), sent
    except ConnectionResetError:
        return b"", sent
