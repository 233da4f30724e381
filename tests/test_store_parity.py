"""The same behaviour over both stores: local disk and S3 (a real SeaweedFS with signatures).

Every test here runs once per store, against real server processes, through
the service's HTTP interface only, so it says nothing about how a store keeps
its bytes, only that users get the same answers from both. Where the stores
must differ (a video replaced mid-response: the local file finishes the old
version, the object store cuts the response), the test says so, and neither
ever splices two versions.
"""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
from urllib.parse import urlsplit

import httpx
import pytest

from app.media.probe import moov_after_mdat
from tests.helpers import MiB, TUS, WAIT, parts_of, put, uploaded, uploader


@pytest.fixture
def service(start_service):
    return start_service()


def uploaded_to(server, path, filename=None) -> dict:
    """Upload ``path`` to a running service; its description once processed (its poster made)."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        return uploaded(client, path, filename)


def put_raw(server, name: str, data: bytes, **headers: str) -> httpx.Response:
    """Store ``data`` under ``name`` on a running service; keyword arguments are headers."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        return put(client, name, data, **headers)


def names(server) -> list[str]:
    return [video["name"] for video in httpx.get(f"{server.url}/video").json()["videos"]]


class HeldPatch:
    """A tus PATCH at offset 0, sent over its own socket up to the first byte of its body, the rest held back."""

    def __init__(self, url: str, body: bytes) -> None:
        self.body = body
        parts = urlsplit(url)
        self.socket = socket.create_connection((parts.hostname, parts.port), timeout=WAIT)
        head = (f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
                f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        self.socket.sendall(head.encode() + body[:1])

    def finish(self) -> int:
        """Send the rest of the body; the answer's status."""
        self.socket.sendall(self.body[1:])
        return self.status()

    def status(self) -> int:
        with self.socket:
            return int(self.socket.makefile("rb").readline().split()[1])


def answered_first(appends: list[HeldPatch]) -> HeldPatch:
    """The first request answered while every body is held back (failing if none is)."""
    answered, _, _ = select.select([append.socket for append in appends], [], [], WAIT)
    assert answered, "no append was answered before its body was sent"
    return next(append for append in appends if append.socket is answered[0])


def test_an_upload_streams_back_whole_and_in_ranges(service, sample_mp4):
    data = sample_mp4.read_bytes()
    url = uploaded_to(service, sample_mp4)["video_url"]
    assert httpx.get(url).content == data
    head = httpx.head(url)
    assert (head.headers["content-length"], head.headers["accept-ranges"]) == (str(len(data)), "bytes")
    part = httpx.get(url, headers={"range": "bytes=100-199"})
    assert (part.status_code, part.content, part.headers["content-range"]) == (
        206, data[100:200], f"bytes 100-199/{len(data)}")
    assert httpx.get(url, headers={"range": "bytes=-10"}).content == data[-10:]
    unsatisfiable = httpx.get(url, headers={"range": f"bytes={len(data)}-"})
    assert (unsatisfiable.status_code, unsatisfiable.headers["content-range"]) == (416, f"bytes */{len(data)}")


def test_several_ranges_come_as_multipart(service, sample_mp4):
    data = sample_mp4.read_bytes()
    response = httpx.get(uploaded_to(service, sample_mp4)["video_url"], headers={"range": "bytes=0-9,1000-1009"})
    assert [body for _, body in parts_of(response)] == [data[0:10], data[1000:1010]]


def test_conditional_requests_use_the_stored_versions_validators(service, sample_mp4):
    url = uploaded_to(service, sample_mp4)["video_url"]
    first = httpx.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert httpx.get(url, headers={"if-none-match": etag}).status_code == 304
    assert httpx.get(url, headers={"if-modified-since": modified}).status_code == 304
    assert httpx.get(url, headers={"if-match": '"stale"'}).status_code == 412
    assert httpx.get(url, headers={"range": "bytes=0-1", "if-range": etag}).status_code == 206
    assert httpx.get(url, headers={"range": "bytes=0-1", "if-range": '"stale"'}).status_code == 200


def test_a_second_upload_of_a_name_gets_a_new_name(service, sample_mp4, sample_webm):
    first = uploaded_to(service, sample_webm, "same.mp4")
    second = uploaded_to(service, sample_mp4, "same.mp4")
    assert (first["name"], second["name"]) == ("same.mp4", "same-2.mp4")
    assert httpx.get(first["video_url"]).content == sample_webm.read_bytes()


def test_a_file_that_is_not_a_video_is_refused_and_nothing_is_stored(service, tmp_path):
    page = tmp_path / "page.mp4"
    page.write_bytes(b"<html></html>" * 100)
    response = httpx.post(f"{service.url}/video", files={"file": ("page.mp4", page.read_bytes())})
    assert response.status_code == 415
    assert names(service) == []


def test_an_index_at_the_end_is_moved_first(service, sample_mp4_moov_last, tmp_path):
    stored = tmp_path / "stored.mp4"
    stored.write_bytes(httpx.get(uploaded_to(service, sample_mp4_moov_last)["video_url"]).content)
    assert not moov_after_mdat(stored)


def test_an_index_at_the_end_of_a_large_upload_is_moved_first_by_a_job(start_service, sample_mp4_moov_last,
                                                                         tmp_path):
    service = start_service(VIDEO_INLINE_FASTSTART_BYTES="0")
    stored = tmp_path / "stored.mp4"
    stored.write_bytes(httpx.get(uploaded_to(service, sample_mp4_moov_last)["video_url"]).content)
    assert not moov_after_mdat(stored)


def test_the_library_lists_describes_and_shows_posters(service, sample_mp4, sample_webm):
    uploaded_to(service, sample_mp4)
    uploaded_to(service, sample_webm)
    assert sorted(names(service)) == ["sample.mp4", "sample.webm"]
    info = httpx.get(f"{service.url}/video/sample.webm").json()
    assert (info["width"], info["video_codec"], info["audio_codec"]) == (320, "vp9", "opus")
    poster = httpx.get(info["poster_url"])
    assert poster.headers["content-type"] == "image/jpeg" and poster.content[:2] == b"\xff\xd8"
    assert httpx.get(info["poster_url"], headers={"if-none-match": poster.headers["etag"]}).status_code == 304


def test_put_creates_replaces_and_respects_preconditions(service, sample_mp4, sample_webm):
    assert put_raw(service, "put.mp4", sample_webm.read_bytes(), if_none_match="*").status_code == 201
    assert put_raw(service, "put.mp4", sample_mp4.read_bytes(), if_none_match="*").status_code == 412
    assert put_raw(service, "put.mp4", sample_mp4.read_bytes(), if_match='"stale"').status_code == 412
    etag = httpx.head(f"{service.url}/get_video_by_name/put.mp4").headers["etag"]
    assert put_raw(service, "put.mp4", sample_mp4.read_bytes(), if_match=etag).status_code == 200
    assert httpx.get(f"{service.url}/get_video_by_name/put.mp4").content == sample_mp4.read_bytes()


def test_delete_removes_the_video_and_its_poster(service, sample_mp4):
    body = uploaded_to(service, sample_mp4)
    assert httpx.delete(f"{service.url}/video/{body['name']}").status_code == 204
    assert httpx.get(body["video_url"]).status_code == 404
    assert httpx.get(body["poster_url"]).status_code == 404
    assert names(service) == []


def test_a_resumable_upload_becomes_a_video(service, sample_mp4):
    tus = uploader(service.url, sample_mp4, filename="tus.mp4")
    tus.upload()
    url = tus.request.response_headers["video-url"]
    assert httpx.get(url).content == sample_mp4.read_bytes()


def test_a_replacement_mid_stream_never_splices_two_versions(start_service, store_env):
    """The ranges of one response are read one after another; none read after a replacement is stored may
    come from the new version. On local disk the file opened is read on: the old version, whole. On S3,
    where only ``If-Match`` on each range ensures it, the store refuses the next range: the response is cut."""
    on_s3 = "VIDEO_STORAGE_URL" in store_env
    server = start_service(VIDEO_ACCEPT_ANY_FILE="true")
    size, step, length = 32 * MiB, 2 * MiB, 3 * MiB // 2
    assert put_raw(server, "big.bin", b"A" * size).status_code == 201
    ranges = ",".join(f"{start}-{start + length - 1}" for start in range(0, size, step))
    received = bytearray()
    with httpx.stream("GET", f"{server.url}/get_video_by_name/big.bin", headers={"range": f"bytes={ranges}"},
                      timeout=60) as response:
        declared = int(response.headers["content-length"])
        chunks = response.iter_raw()
        received += next(chunks)  # 24 MiB is more than the sockets buffer: later ranges wait until read on
        assert put_raw(server, "big.bin", b"B" * size).status_code == 200
        cut = (pytest.raises(httpx.RemoteProtocolError, match="without sending complete message body") if on_s3
               else contextlib.nullcontext())
        with cut:
            for chunk in chunks:
                received += chunk
    assert b"B" not in received, "bytes of two versions in one response"
    assert (len(received) < declared) if on_s3 else (len(received) == declared)


def test_redirect_delivery_sends_players_to_the_object_store(seaweed, start_service, sample_mp4, store_env):
    if "VIDEO_STORAGE_URL" not in store_env:
        pytest.skip("redirect delivery is for object stores")
    server = start_service(VIDEO_DELIVERY="redirect")
    url = uploaded_to(server, sample_mp4)["video_url"]
    redirect = httpx.get(url)
    assert redirect.status_code == 307
    assert redirect.headers["location"].startswith(seaweed.endpoint)
    result = subprocess.run(["curl", "-sS", "-L", "-r", "0-99", url], capture_output=True, check=True, timeout=60)
    assert result.stdout == sample_mp4.read_bytes()[:100]


def test_instances_over_one_object_store_share_everything(start_service, sample_mp4, store_env):
    if "VIDEO_STORAGE_URL" not in store_env:
        pytest.skip("two instances share an object store")
    first, second = start_service(), start_service()
    body = uploaded_to(first, sample_mp4)
    on_second = body["video_url"].replace(first.url, second.url)
    assert httpx.get(on_second).content == sample_mp4.read_bytes()
    assert names(second) == [body["name"]]
    assert httpx.delete(f"{first.url}/video/{body['name']}").status_code == 204
    assert httpx.get(on_second).status_code == 404


def test_a_resumable_upload_started_on_one_instance_finishes_on_another(start_service, sample_mp4, store_env):
    if "VIDEO_STORAGE_URL" not in store_env:
        pytest.skip("two instances share an object store")
    first, second = start_service(), start_service()
    started = uploader(first.url, sample_mp4, filename="moved.mp4")
    started.upload(stop_at=2 * 16 * 1024)
    continued = uploader(second.url, sample_mp4, url=started.url.replace(first.url, second.url))
    assert continued.offset == 2 * 16 * 1024
    continued.upload()
    assert httpx.get(continued.request.response_headers["video-url"]).content == sample_mp4.read_bytes()


def test_of_two_appends_at_one_offset_on_two_instances_one_is_refused_before_its_body_is_sent(start_service):
    """Both are in flight at once, their bodies held back: one is refused straight away, and only the
    other's bytes are stored."""
    first, second = start_service(VIDEO_ACCEPT_ANY_FILE="true"), start_service(VIDEO_ACCEPT_ANY_FILE="true")
    location = httpx.post(f"{first.url}/uploads/", headers={**TUS, "upload-length": "4"}).headers["location"]
    appends = [HeldPatch(location, b"AAAA"), HeldPatch(location.replace(first.url, second.url), b"BBBB")]
    refused = answered_first(appends)
    assert refused.status() == 409
    winner = appends[1 - appends.index(refused)]
    assert winner.finish() == 204
    video_url = httpx.head(location, headers=TUS).headers["video-url"]
    assert httpx.get(video_url).content == winner.body

