"""A resumable upload to S3 whose PATCH is cut midway keeps the parts that went up, and lets go of its claim.

Against a real server process over a real SeaweedFS: the parts are the store's
own 8 MiB (a server process cannot be given smaller ones), so a request of a
few parts is tens of MiB, sent over a raw socket so that the test decides where
it is cut. Where a request is, the test reads from what it leaves: the parts
and claims in the bucket, and the part that gathers in the instance's staging
folder.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import obstore
import pytest

from app.storage.s3 import PART_BYTES
from tests.helpers import CHUNK, TUS, WAIT, wait_for
from tests.servers import ServerProcess

BUCKET = "videos"


@pytest.fixture
def prefix() -> str:
    return f"s3-cut-{secrets.token_hex(6)}"


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    return tmp_path / "staging"


@pytest.fixture
def server(seaweed, prefix: str, staging: Path):
    server = ServerProcess({**seaweed.env(BUCKET, prefix), "VIDEO_STAGING_DIR": str(staging),
                            "VIDEO_ACCEPT_ANY_FILE": "true"})
    yield server
    server.stop()


class RawPatch:
    """A tus PATCH at ``offset`` over its own socket that announces ``length`` bytes and sends what it is told."""

    def __init__(self, url: str, offset: int, length: int) -> None:
        parts = urlsplit(url)
        self._socket = socket.create_connection((parts.hostname, parts.port), timeout=WAIT)
        head = (f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
                f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
                f"Content-Length: {length}\r\n\r\n")
        self._socket.sendall(head.encode())

    def send(self, data: bytes) -> None:
        self._socket.sendall(data)

    def cut(self) -> None:
        """Close the connection before the body is whole, as a client that loses its network does."""
        self._socket.close()


def created(server: ServerProcess, length: int) -> str:
    answer = httpx.post(f"{server.url}/uploads/", headers={**TUS, "upload-length": str(length)})
    assert answer.status_code == 201, answer.text
    return answer.headers["location"]


def upload_objects(seaweed, prefix: str, url: str, kind: str) -> dict[int, int]:
    """Offset and size of each of the upload's objects of one kind (``part`` or ``claim``) now in the store."""
    listing = obstore.list_with_delimiter(seaweed.client(BUCKET), f"{prefix}/.uploads/{url.rpartition('/')[2]}")
    return {int(meta["path"].rpartition("-")[2]): meta["size"] for meta in listing["objects"]
            if meta["path"].rpartition("/")[2].startswith(f"{kind}-")}


def buffered(staging: Path) -> int:
    """The bytes the instance holds in its local part files now."""
    return sum(path.stat().st_size for path in staging.glob("part-*"))


def offset(url: str) -> int:
    return int(httpx.head(url, headers=TUS).headers["upload-offset"])


def finished(url: str, data: bytes) -> bytes:
    """Send the rest of ``data`` from the upload's offset; the bytes of the video it became."""
    start = offset(url)
    answer = httpx.patch(url, content=data[start:], headers={**CHUNK, "upload-offset": str(start)}, timeout=60)
    assert answer.status_code == 204, answer.text
    return httpx.get(answer.headers["video-url"], timeout=60).content


def test_a_patch_cut_by_its_client_keeps_the_parts_that_went_up_and_what_arrived_after(server, seaweed, prefix,
                                                                                      staging):
    data = os.urandom(4 * PART_BYTES)
    url = created(server, len(data))
    sent = 2 * PART_BYTES + PART_BYTES // 2
    request = RawPatch(url, 0, len(data))
    request.send(data[:sent])
    assert wait_for(lambda: upload_objects(seaweed, prefix, url, "part") == {0: PART_BYTES, PART_BYTES: PART_BYTES}
                    and buffered(staging) == sent - 2 * PART_BYTES), "the full parts did not go up as they filled"
    request.cut()
    assert wait_for(lambda: upload_objects(seaweed, prefix, url, "claim") == {}), "the cut request kept its claim"
    assert offset(url) == sent
    assert finished(url, data) == data


def test_a_patch_cut_while_the_store_hangs_keeps_its_parts_once_the_store_is_back(server, seaweed, prefix, staging):
    data = os.urandom(3 * PART_BYTES)
    url = created(server, len(data))
    request = RawPatch(url, 0, len(data))
    request.send(data[:PART_BYTES + 1024])
    assert wait_for(lambda: upload_objects(seaweed, prefix, url, "part") == {0: PART_BYTES}
                    and set(upload_objects(seaweed, prefix, url, "claim")) == {PART_BYTES}
                    and buffered(staging) == 1024), "the first part did not go up as it filled"
    with seaweed.paused():
        request.send(data[PART_BYTES + 1024:2 * PART_BYTES])
        assert wait_for(lambda: buffered(staging) == PART_BYTES), "the second part was not waiting for the store"
        request.cut()
    assert wait_for(lambda: upload_objects(seaweed, prefix, url, "claim") == {}), "the cut request kept its claim"
    assert offset(url) == 2 * PART_BYTES
    assert finished(url, data) == data
