"""POST /video: streamed multipart uploads, names, limits, refusals (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import put_file, refused, upload, visible


@pytest.fixture
def payload(sample_mp4: Path) -> bytes:
    """A real, faststart MP4: accepted by the ingest pipeline and stored unchanged."""
    return sample_mp4.read_bytes()


def test_upload_is_stored_byte_for_byte(client, store_dir, payload):
    response = upload(client, payload)
    assert response.status_code == 201
    assert (store_dir / "clip.mp4").read_bytes() == payload


def test_upload_answers_name_size_type_and_absolute_url(client, payload):
    response = upload(client, payload)
    body = response.json()
    assert {key: body[key] for key in ("name", "size", "content_type", "video_url")} == {
        "name": "clip.mp4",
        "size": len(payload),
        "content_type": "video/mp4",
        "video_url": "http://testserver/get_video_by_name/clip.mp4",
    }
    assert response.headers["location"] == body["video_url"]


def test_uploaded_video_streams_back_from_its_url(client, payload):
    url = upload(client, payload).json()["video_url"]
    assert client.get(url).content == payload


def test_video_url_percent_encodes_the_name(client, payload):
    body = upload(client, payload, filename="my clip #1?.mp4").json()
    assert body["name"] == "my clip #1?.mp4"
    assert body["video_url"].endswith("/get_video_by_name/my%20clip%20%231%3F.mp4")
    assert client.get(body["video_url"]).content == payload


def test_video_url_uses_public_base_url_when_set(make_client, payload):
    client = make_client(public_base_url="https://videos.example/base/")
    assert upload(client, payload).json()["video_url"] == "https://videos.example/base/get_video_by_name/clip.mp4"


def test_video_url_follows_forwarded_headers_when_trusted(make_client, payload):
    client = make_client(trust_proxy_headers=True)
    headers = {"x-forwarded-proto": "https", "x-forwarded-host": "cdn.example, proxy", "x-forwarded-prefix": "/v"}
    body = upload(client, payload, headers=headers).json()
    assert body["video_url"] == "https://cdn.example/v/get_video_by_name/clip.mp4"


def test_forwarded_headers_are_ignored_unless_trusted(client, payload):
    body = upload(client, payload, headers={"x-forwarded-host": "evil.example"}).json()
    assert body["video_url"].startswith("http://testserver/")


def test_same_name_twice_gets_a_new_name_and_keeps_the_first(client, store_dir, payload, sample_webm):
    first = sample_webm.read_bytes()
    upload(client, first)
    response = upload(client, payload)
    assert response.json()["name"] == "clip-2.mp4"
    assert (store_dir / "clip.mp4").read_bytes() == first
    assert (store_dir / "clip-2.mp4").read_bytes() == payload


def test_hand_copied_file_is_never_overwritten(client, store_dir, payload):
    put_file(store_dir, "clip.mp4", b"by hand")
    upload(client, payload)
    assert (store_dir / "clip.mp4").read_bytes() == b"by hand"


@pytest.mark.parametrize(
    ("filename", "stored"),
    [("../../escape.mp4", "escape.mp4"), ("C:\\temp\\win.mp4", "win.mp4"), ("été.mp4", "été.mp4")],
)
def test_filename_is_sanitised_before_storing(client, store_dir, payload, filename, stored):
    response = upload(client, payload, filename=filename)
    assert response.json()["name"] == stored
    assert visible(store_dir) == [stored]
    assert not (store_dir.parent / "escape.mp4").exists()


def post_raw_multipart(client, filename: bytes, data: bytes):
    """A multipart body whose filename bytes go out exactly as given, as browsers send them."""
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            b"Content-Type: video/mp4\r\n\r\n" + data + b"\r\n--XyZ--\r\n")
    return client.post("/video", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})


def test_utf8_filename_bytes_from_browsers_are_kept(client, payload):
    assert post_raw_multipart(client, "東京.mp4".encode(), payload).json()["name"] == "東京.mp4"


def test_control_characters_in_raw_filename_are_dropped(client, payload):
    assert post_raw_multipart(client, b"a\x01b\x7f.mp4", payload).json()["name"] == "ab.mp4"


def test_raw_filename_of_only_control_characters_is_refused(client, store_dir, before, payload):
    assert_refused(post_raw_multipart(client, b"\x01\x02", payload), 400, store_dir, before)


def test_other_form_fields_are_ignored(client, store_dir, payload):
    response = client.post("/video", data={"title": "hello"}, files={"file": ("clip.mp4", payload)})
    assert response.status_code == 201
    assert visible(store_dir) == ["clip.mp4"]


def assert_refused(response, status_code: int, store: Path, before: dict[str, bytes]) -> None:
    """Refused with ``status_code``, the store as it was, and nothing in the answer but its detail."""
    refused(response, store, before, status_code)
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("filename", ["", ".", "..", "...", "/"])
def test_unusable_filename_is_refused(client, store_dir, before, payload, filename):
    assert_refused(upload(client, payload, filename=filename), 400, store_dir, before)


def test_missing_file_field_is_refused(client, store_dir, before):
    response = client.post("/video", files={"other": ("clip.mp4", b"data")})
    assert_refused(response, 400, store_dir, before)


def test_file_field_sent_as_text_is_refused(client, store_dir, before):
    response = client.post("/video", data={"file": "not a file"}, files={"x": ("a", b"b")})
    assert_refused(response, 400, store_dir, before)


def test_body_that_is_not_multipart_is_415(client, store_dir, before):
    response = client.post("/video", content=b"raw bytes", headers={"content-type": "video/mp4"})
    assert_refused(response, 415, store_dir, before)


def test_multipart_without_boundary_is_refused(client, store_dir, before):
    response = client.post("/video", content=b"x", headers={"content-type": "multipart/form-data"})
    assert_refused(response, 400, store_dir, before)


def test_malformed_multipart_body_is_refused(client, store_dir, before):
    response = client.post("/video", content=b"garbage without boundary",
                           headers={"content-type": "multipart/form-data; boundary=abc"})
    assert_refused(response, 400, store_dir, before)


def test_truncated_multipart_body_is_refused(client, store_dir, before):
    body = b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\npartial data'
    response = client.post("/video", content=body, headers={"content-type": "multipart/form-data; boundary=abc"})
    assert_refused(response, 400, store_dir, before)


def test_empty_file_is_refused(client, store_dir, before):
    assert_refused(upload(client, b""), 400, store_dir, before)


def test_upload_over_the_limit_is_413(make_client, store_dir, before, payload):
    client = make_client(max_upload_bytes=len(payload) - 1)
    assert_refused(upload(client, payload), 413, store_dir, before)


def test_upload_at_the_limit_is_accepted(make_client, store_dir, payload):
    client = make_client(max_upload_bytes=len(payload))
    assert upload(client, payload).status_code == 201


def test_declared_length_far_over_the_limit_is_refused_before_reading(make_client, store_dir, before):
    client = make_client(max_upload_bytes=1000)
    response = client.post(
        "/video", content=b"tiny",
        headers={"content-type": "multipart/form-data; boundary=abc", "content-length": str(50 * 1024**2)},
    )
    assert_refused(response, 413, store_dir, before)


def test_upload_is_described_in_the_openapi_schema(client):
    operation = client.get("/openapi.json").json()["paths"]["/video"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"]
    assert "201" in operation["responses"]
