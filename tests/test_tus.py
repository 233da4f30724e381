"""Resumable uploads (tus 1.0.0): the protocol in-process, and tuspy against a real server."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from fastapi.testclient import TestClient
from tusclient.uploader import Uploader

from app.core.settings import Settings
from app.main import create_app

from tests.helpers import (CHUNK, TUS, connect, create, metadata, patch, read_response_head, store_snapshot,
                           uploader, visible, wait_for)
from tests.servers import ServerProcess


def offset_of(client, url: str) -> int:
    return int(client.head(url, headers=TUS).headers["upload-offset"])


# --- the protocol, in-process --------------------------------------------------------

def test_options_advertises_version_extensions_limit_and_checksums(make_client):
    response = make_client(max_upload_bytes=12345).options("/uploads/")
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation", "creation-with-upload", "termination", "expiration", "checksum"}
    assert response.headers["tus-max-size"] == "12345"
    assert "sha1" in response.headers["tus-checksum-algorithm"].split(",")


def test_every_answer_carries_tus_resumable(client):
    for response in (client.options("/uploads/"), client.head("/uploads/nonexistent-upload-id", headers=TUS),
                     client.post("/uploads/", headers=TUS)):
        assert response.headers["tus-resumable"] == "1.0.0"


def test_a_path_that_only_starts_like_the_tus_prefix_carries_no_tus_header(client):
    assert "tus-resumable" not in client.get("/uploadsX").headers


def test_under_a_root_path_tus_answers_carry_tus_resumable(store_dir):
    app = create_app(Settings(storage_dir=store_dir))
    with TestClient(app, root_path="/videos") as client:
        response = client.options("/videos/uploads/")
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"


@pytest.mark.parametrize("version", [None, "0.2.2", "2.0.0"])
def test_unsupported_tus_version_is_412(client, version):
    headers = {"upload-length": "10"} | ({"tus-resumable": version} if version else {})
    response = client.post("/uploads/", headers=headers)
    assert response.status_code == 412
    assert response.headers["tus-version"] == "1.0.0"


def test_creation_answers_location_offset_and_expiry(client):
    response = client.post("/uploads/", headers={**TUS, "upload-length": "100",
                                                 "upload-metadata": metadata(filename="a.mp4")})
    assert response.status_code == 201
    assert response.headers["location"].startswith("http://testserver/uploads/")
    assert response.headers["upload-offset"] == "0"
    assert response.headers["upload-expires"].endswith(" GMT")


def test_head_reports_offset_length_and_metadata(client):
    url = create(client, 100)
    response = client.head(url, headers=TUS)
    assert (response.headers["upload-offset"], response.headers["upload-length"]) == ("0", "100")
    assert response.headers["upload-metadata"] == metadata(filename="clip.mp4")
    assert response.headers["cache-control"] == "no-store"


def test_chunks_append_at_the_offset_and_finish_as_a_video(client, store_dir, sample_mp4):
    data = sample_mp4.read_bytes()
    url = create(client, len(data))
    assert patch(client, url, 0, data[:20000]).headers["upload-offset"] == "20000"
    final = patch(client, url, 20000, data[20000:])
    assert final.status_code == 204
    assert final.headers["upload-offset"] == str(len(data))
    assert final.headers["video-url"] == "http://testserver/get_video_by_name/clip.mp4"
    assert (store_dir / "clip.mp4").read_bytes() == data


def test_finished_upload_is_listed_in_the_library_and_head_tells_its_url(client, sample_mp4):
    data = sample_mp4.read_bytes()
    url = create(client, len(data), filename="listed.mp4")
    patch(client, url, 0, data)
    assert client.head(url, headers=TUS).headers["video-url"].endswith("/get_video_by_name/listed.mp4")
    assert [video["name"] for video in client.get("/video").json()["videos"]] == ["listed.mp4"]


def test_creation_with_upload_takes_the_first_bytes(client, sample_mp4):
    data = sample_mp4.read_bytes()
    response = client.post("/uploads/", content=data[:1000], headers={
        **CHUNK, "upload-length": str(len(data)), "upload-metadata": metadata(filename="c.mp4")})
    assert response.headers["upload-offset"] == "1000"


def uploads_kept(store_dir) -> list[str]:
    return sorted(path.name for path in (store_dir / ".uploads").iterdir())


@pytest.mark.parametrize("extra", [{"content-length": "11"}, {"upload-checksum": "crc32 AAAA"}],
                         ids=["body-past-length", "unknown-checksum"])
def test_a_refused_creation_with_upload_keeps_no_session(client, store_dir, extra):
    response = client.post("/uploads/", content=b"x" * 11, headers={**CHUNK, "upload-length": "10", **extra})
    assert response.status_code == 400
    assert uploads_kept(store_dir) == []


def test_upload_metadata_longer_than_the_limit_is_refused_and_keeps_nothing(make_client, store_dir):
    client = make_client(max_upload_metadata_bytes=64)
    long_metadata = metadata(filename="x" * 100 + ".mp4")
    response = client.post("/uploads/", headers={**TUS, "upload-length": "10", "upload-metadata": long_metadata})
    assert response.status_code == 400
    assert "Upload-Metadata" in response.json()["detail"]
    assert uploads_kept(store_dir) == []


def test_creation_with_the_whole_upload_finishes_it(client, store_dir, sample_mp4):
    data = sample_mp4.read_bytes()
    response = client.post("/uploads/", content=data, headers={
        **CHUNK, "upload-length": str(len(data)), "upload-metadata": metadata(filename="whole.mp4")})
    assert response.headers["video-url"].endswith("/whole.mp4")
    assert (store_dir / "whole.mp4").read_bytes() == data


def test_patch_at_the_wrong_offset_is_409_and_writes_nothing(client):
    url = create(client, 100)
    patch(client, url, 0, b"x" * 10)
    assert patch(client, url, 5, b"y" * 10).status_code == 409
    assert offset_of(client, url) == 10


def test_patch_with_the_wrong_content_type_is_415_and_writes_nothing(client):
    url = create(client, 100)
    response = client.patch(url, content=b"x" * 10, headers={**TUS, "upload-offset": "0",
                                                             "content-type": "application/octet-stream"})
    assert response.status_code == 415
    assert offset_of(client, url) == 0


def test_patch_past_the_length_is_refused_and_writes_nothing(client):
    url = create(client, 10)
    assert patch(client, url, 0, b"x" * 11).status_code == 400
    assert offset_of(client, url) == 0


def sha1(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


def test_chunk_with_matching_checksum_is_kept(client):
    url = create(client, 100)
    assert patch(client, url, 0, b"abc", **{"upload-checksum": sha1(b"abc")}).status_code == 204
    assert offset_of(client, url) == 3


def test_checksum_mismatch_is_460_and_the_chunk_is_discarded(client):
    url = create(client, 100)
    patch(client, url, 0, b"abc")
    response = patch(client, url, 3, b"def", **{"upload-checksum": sha1(b"xyz")})
    assert response.status_code == 460
    assert offset_of(client, url) == 3


def test_unknown_checksum_algorithm_is_400(client):
    url = create(client, 100)
    assert patch(client, url, 0, b"abc", **{"upload-checksum": "crc99 AAAA"}).status_code == 400


def test_upload_length_over_the_limit_is_413_at_creation(make_client, store_dir):
    client = make_client(max_upload_bytes=1000)
    response = client.post("/uploads/", headers={**TUS, "upload-length": "1001"})
    assert response.status_code == 413
    assert not any((store_dir / ".uploads").iterdir())


@pytest.mark.parametrize("headers", [{}, {"upload-length": "-1"}, {"upload-length": "ten"},
                                     {"upload-length": "10", "upload-metadata": "filename ***"},
                                     {"upload-length": "10", "upload-metadata": metadata(filename="..")}])
def test_bad_creation_requests_are_400(client, store_dir, headers):
    assert client.post("/uploads/", headers={**TUS, **headers}).status_code == 400
    assert not any((store_dir / ".uploads").iterdir())


def test_upload_length_with_more_digits_than_int_takes_is_400(client, store_dir):
    assert client.post("/uploads/", headers={**TUS, "upload-length": "1" * 5000}).status_code == 400
    assert not any((store_dir / ".uploads").iterdir())


def test_upload_offset_with_more_digits_than_int_takes_is_400(client):
    url = create(client, 100)
    assert client.patch(url, content=b"x", headers={**CHUNK, "upload-offset": "1" * 5000}).status_code == 400
    assert offset_of(client, url) == 0


def test_termination_removes_the_upload(client, store_dir):
    url = create(client, 100)
    patch(client, url, 0, b"x" * 10)
    assert client.delete(url, headers=TUS).status_code == 204
    assert client.head(url, headers=TUS).status_code == 404
    assert not any((store_dir / ".uploads").iterdir())


def test_unknown_upload_is_404(client):
    assert client.head("/uploads/doesnotexist00000000", headers=TUS).status_code == 404
    assert client.head("/uploads/..%2F..%2Fetc", headers=TUS).status_code == 404


def test_finished_upload_that_is_not_a_video_is_415_and_stores_nothing(client, store_dir):
    page = b"<html><script>alert(1)</script></html>" * 100
    url = create(client, len(page), filename="page.mp4")
    before = store_snapshot(store_dir)
    response = patch(client, url, 0, page)
    assert response.status_code == 415
    assert "not a video" in response.json()["detail"]
    assert visible(store_dir) == []
    assert client.head(url, headers=TUS).status_code == 404
    assert {k: v for k, v in store_snapshot(store_dir).items() if not k.startswith(".uploads")} == {
        k: v for k, v in before.items() if not k.startswith(".uploads")}


def test_uploads_need_the_token_when_one_is_set(make_client):
    client = make_client(api_token="t0k")
    assert client.post("/uploads/", headers={**TUS, "upload-length": "10"}).status_code == 401
    assert client.options("/uploads/").status_code == 204
    authorised = client.post("/uploads/", headers={**TUS, "upload-length": "10", "authorization": "Bearer t0k"})
    assert authorised.status_code == 201
    assert client.head(authorised.headers["location"], headers=TUS).status_code == 401


# --- tuspy against a real server --------------------------------------------------------

@pytest.fixture
def tus_server(start_server) -> ServerProcess:
    return start_server()


def raw_status(server: ServerProcess, request_head: bytes) -> bytes:
    """The status line of a bodyless request sent byte for byte (httpx would re-encode its headers)."""
    with connect(server.url) as sock:
        sock.sendall(request_head + b"Host: x\r\nTus-Resumable: 1.0.0\r\nContent-Length: 0\r\n\r\n")
        return read_response_head(sock).split(b"\r\n", 1)[0]


def test_upload_length_in_non_ascii_digits_is_400(tus_server, store_dir):
    assert raw_status(tus_server, b"POST /uploads/ HTTP/1.1\r\nUpload-Length: \xb2\r\n") == b"HTTP/1.1 400 Bad Request"
    assert not any((store_dir / ".uploads").iterdir())


def test_upload_offset_in_non_ascii_digits_is_400(tus_server):
    with httpx.Client(base_url=tus_server.url) as client:
        path = create(client, 100).removeprefix(tus_server.url).encode()
        assert raw_status(tus_server, b"PATCH " + path + b" HTTP/1.1\r\nUpload-Offset: \xb2\r\n"
                          b"Content-Type: application/offset+octet-stream\r\n") == b"HTTP/1.1 400 Bad Request"
        assert offset_of(client, path.decode()) == 0


def test_tuspy_uploads_a_video(tus_server, store_dir, sample_mp4):
    tus = uploader(tus_server.url, sample_mp4)
    tus.upload()
    assert tus.request.response_headers["video-url"] == f"{tus_server.url}/get_video_by_name/sample.mp4"
    assert (store_dir / "sample.mp4").read_bytes() == sample_mp4.read_bytes()


def test_tuspy_resumes_an_interrupted_upload(tus_server, store_dir, sample_mp4):
    first = uploader(tus_server.url, sample_mp4)
    first.upload(stop_at=3 * 16 * 1024)
    assert visible(store_dir) == []
    second = uploader(tus_server.url, sample_mp4, url=first.url)
    assert second.offset == 3 * 16 * 1024
    second.upload()
    assert (store_dir / "sample.mp4").read_bytes() == sample_mp4.read_bytes()


def test_tuspy_resumes_after_the_server_restarts(start_server, store_dir, sample_mp4):
    server = start_server()
    first = uploader(server.url, sample_mp4)
    first.upload(stop_at=2 * 16 * 1024)
    server.stop()
    restarted = start_server(port=server.port)
    second = uploader(restarted.url, sample_mp4, url=first.url)
    assert second.offset == 2 * 16 * 1024
    second.upload()
    assert (store_dir / "sample.mp4").read_bytes() == sample_mp4.read_bytes()


def test_tuspy_checksums_are_verified(tus_server, store_dir, sample_mp4):
    tus = uploader(tus_server.url, sample_mp4, upload_checksum=True)
    tus.upload()
    assert (store_dir / "sample.mp4").read_bytes() == sample_mp4.read_bytes()


class MislabelledChecksumUploader(Uploader):
    """Says sha1 but sends an md5 digest: a checksum the server must reject."""

    CHECKSUM_ALGORITHM_PAIR = ("sha1", hashlib.md5)


def test_tuspy_sees_a_checksum_mismatch_as_460(tus_server, sample_mp4):
    tus = MislabelledChecksumUploader(file_path=str(sample_mp4), client=TusClient(f"{tus_server.url}/uploads/"),
                                      chunk_size=16 * 1024, upload_checksum=True)
    with pytest.raises(TusCommunicationError) as failure:
        tus.upload()
    assert failure.value.status_code == 460
    assert int(httpx.head(tus.url, headers=TUS).headers["upload-offset"]) == 0


def test_tuspy_upload_over_the_limit_is_refused(start_server, sample_mp4):
    server = start_server(VIDEO_MAX_UPLOAD_BYTES="1000")
    with pytest.raises(TusCommunicationError) as failure:
        uploader(server.url, sample_mp4).upload()
    assert failure.value.status_code == 413


def test_tuspy_termination(tus_server, store_dir, sample_mp4):
    tus = uploader(tus_server.url, sample_mp4)
    tus.upload(stop_at=16 * 1024)
    assert httpx.delete(tus.url, headers=TUS).status_code == 204
    with pytest.raises(TusCommunicationError):
        uploader(tus_server.url, sample_mp4, url=tus.url)
    assert not any((store_dir / ".uploads").iterdir())


def test_expired_uploads_are_gone_and_swept(start_server, store_dir, sample_mp4):
    server = start_server(VIDEO_UPLOAD_EXPIRY_SECONDS="1")
    tus = uploader(server.url, sample_mp4)
    tus.upload(stop_at=16 * 1024)
    assert wait_for(lambda: not any((store_dir / ".uploads").iterdir()), timeout=10)
    assert httpx.head(tus.url, headers=TUS).status_code in (404, 410)


def patch_head(path: str, offset: int, framing: str) -> bytes:
    """A PATCH request head, up to the body, with ``framing`` (Content-Length or Transfer-Encoding)."""
    return (f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n"
            f"Content-Type: application/offset+octet-stream\r\n{framing}\r\n\r\n").encode()


def test_a_chunked_body_that_runs_past_the_length_keeps_none_of_its_chunks(tus_server, store_dir):
    with httpx.Client(base_url=tus_server.url) as client:
        url = create(client, 10)
        part = store_dir / ".uploads" / f"{url.rsplit('/', 1)[1]}.part"
        with connect(tus_server.url) as sock:
            sock.sendall(patch_head(url.removeprefix(tus_server.url), 0, "Transfer-Encoding: chunked")
                         + b"6\r\nxxxxxx\r\n")
            assert wait_for(lambda: part.stat().st_size == 6)
            sock.sendall(b"6\r\nyyyyyy\r\n0\r\n\r\n")
            assert read_response_head(sock).startswith(b"HTTP/1.1 400")
        assert offset_of(client, url) == 0


def test_a_content_length_past_the_length_is_refused_before_the_body_is_sent(tus_server):
    with httpx.Client(base_url=tus_server.url) as client:
        url = create(client, 10)
        with connect(tus_server.url) as sock:
            sock.settimeout(3)
            sock.sendall(patch_head(url.removeprefix(tus_server.url), 0, "Content-Length: 11"))
            assert read_response_head(sock).startswith(b"HTTP/1.1 400")
        assert offset_of(client, url) == 0


def test_concurrent_patches_never_interleave(tus_server, store_dir):
    with httpx.Client(base_url=tus_server.url) as client:
        url = create(client, 1000, filename="race.mp4")
        with connect(tus_server.url) as slow:
            path = url.removeprefix(tus_server.url)
            slow.sendall((f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                          "Content-Type: application/offset+octet-stream\r\nContent-Length: 500\r\n\r\n").encode()
                         + b"a" * 100)
            part = store_dir / ".uploads" / f"{url.rsplit('/', 1)[1]}.part"
            assert wait_for(lambda: part.stat().st_size == 100)
            assert patch(client, url, 0, b"b" * 500).status_code == 409
            assert patch(client, url, 100, b"b" * 400).status_code == 409
            slow.sendall(b"a" * 400)
            assert read_response_head(slow).startswith(b"HTTP/1.1 204")
        assert part.read_bytes() == b"a" * 500
