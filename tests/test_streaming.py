"""GET and HEAD of stored videos: headers, ranges, multipart, preconditions.

Each test runs twice: in-process over the local store, and over HTTP against a
service whose store is S3 (a real SeaweedFS). Tests that set file times or
settings by hand run on the local store only.
"""

from __future__ import annotations

import os
import re
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.helpers import header_fields, parts_of, put_file
from tests.servers import ServerProcess

URL = "/get_video_by_name/clip.mp4"


@pytest.fixture(scope="module")
def s3_service(seaweed, tmp_path_factory: pytest.TempPathFactory):
    """One service over an S3 store for the module; any bytes may be stored."""
    staging = tmp_path_factory.mktemp("s3-staging")
    server = ServerProcess({**seaweed.env("videos", "streaming"), "VIDEO_ACCEPT_ANY_FILE": "true",
                            "VIDEO_STAGING_DIR": str(staging)})
    yield server
    server.stop()


@pytest.fixture(params=["local", "local-route-only", "s3"])
def service(request: pytest.FixtureRequest) -> str:
    """Every streaming test runs in-process over the local store, answered by the streaming shortcut
    and by the framework's route alone (both must answer alike), and over HTTP with an S3 store."""
    return request.param


@pytest.fixture
def store_kind(service: str) -> str:
    return "s3" if service == "s3" else "local"


@pytest.fixture
def stream_shortcut(service: str) -> bool:
    return service != "local-route-only"


@pytest.fixture
def client(store_kind: str, make_client, request: pytest.FixtureRequest):
    """In-process over the local store, or over HTTP to the S3-backed service."""
    if store_kind == "local":
        yield make_client()
        return
    with httpx.Client(base_url=request.getfixturevalue("s3_service").url, timeout=30) as http:
        yield http


@pytest.fixture
def local_only(store_kind: str) -> None:
    if store_kind != "local":
        pytest.skip("sets file times or settings by hand: local store only")


@pytest.fixture
def put(store_kind: str, store_dir: Path, client):
    """Store bytes under a name: by hand on disk, or through the API on S3."""

    def put(name: str, data: bytes) -> None:
        if store_kind == "local":
            put_file(store_dir, name, data)
        else:
            response = client.put(f"/video/{quote(name, safe='')}", content=data)
            assert response.status_code in (200, 201), response.text

    return put


@pytest.fixture
def stored(put, payload: bytes) -> bytes:
    put("clip.mp4", payload)
    return payload


def get(client: TestClient, url: str = URL, **headers: str):
    return client.get(url, headers=header_fields(**headers))


def test_full_get_returns_all_bytes_with_length(client, stored):
    response = get(client)
    assert response.status_code == 200
    assert response.content == stored
    assert response.headers["content-length"] == str(len(stored))


def test_full_get_advertises_byte_ranges_and_safety_headers(client, stored):
    headers = get(client).headers
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-type"] == "video/mp4"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "public, no-cache"
    assert headers["content-disposition"] == "inline; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4"


def test_last_modified_is_an_imf_fixdate_in_gmt(local_only, client, store_dir, stored):
    os.utime(store_dir / "clip.mp4", (1_700_000_000, 1_700_000_000))
    assert get(client).headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"


def test_cache_control_is_configurable(local_only, make_client, stored):
    client = make_client(cache_control="public, max-age=600")
    assert get(client).headers["cache-control"] == "public, max-age=600"


def test_head_sends_the_get_headers_without_a_body(client, stored):
    head = client.head(URL)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-length", "etag", "last-modified", "content-type", "accept-ranges"):
        assert head.headers[name] == get(client).headers[name]


def test_head_with_range_answers_what_the_get_would_without_its_body(client, stored):
    head = client.head(URL, headers={"range": "bytes=0-1"})
    assert head.status_code == 206
    assert head.headers["content-range"] == f"bytes 0-1/{len(stored)}"
    assert head.headers["content-length"] == "2"
    assert head.content == b""


def test_head_with_an_unsatisfiable_range_is_416_like_the_get(client, stored):
    assert client.head(URL, headers={"range": f"bytes={len(stored)}-"}).status_code == 416


def test_assets_path_serves_same_bytes_and_validators(client, stored):
    direct, alias = get(client), get(client, "/assets/video/clip.mp4")
    assert alias.content == direct.content
    assert alias.headers["etag"] == direct.headers["etag"]
    assert alias.headers["last-modified"] == direct.headers["last-modified"]


def test_missing_video_is_404_with_short_json(client):
    response = get(client, "/get_video_by_name/nothing.mp4")
    assert response.status_code == 404
    assert response.json() == {"detail": "no video with this name"}


def test_empty_file_is_served_with_zero_length(local_only, client, store_dir):
    put_file(store_dir, "empty.mp4", b"")
    response = get(client, "/get_video_by_name/empty.mp4")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("a.webm", "video/webm"), ("a.MOV", "video/quicktime"), ("a.html", "application/octet-stream"),
     ("a.svg", "application/octet-stream"), ("noextension", "application/octet-stream")],
)
def test_content_type_follows_extension_and_is_never_markup(client, put, name, content_type):
    put(name, b"<html><script>alert(1)</script></html>")
    assert get(client, f"/get_video_by_name/{name}").headers["content-type"] == content_type


def test_content_disposition_carries_utf8_name(client, put):
    put("café \"rés\".mp4", b"x")
    disposition = get(client, "/get_video_by_name/caf%C3%A9%20%22r%C3%A9s%22.mp4").headers["content-disposition"]
    assert disposition == "inline; filename=\"caf_ _r_s_.mp4\"; filename*=UTF-8''caf%C3%A9%20%22r%C3%A9s%22.mp4"


# --- single ranges ----------------------------------------------------------

@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-1", 0, 1),
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, 299_999),
        ("bytes=-500", 299_500, 299_999),
        ("bytes=299990-400000", 299_990, 299_999),
        ("bytes=-999999", 0, 299_999),
        ("BYTES=5-9", 5, 9),
        ("bytes= 5-9", 5, 9),
        ("bytes=5-9,", 5, 9),
    ],
)
def test_single_range_sends_inclusive_bytes(client, stored, header, first, last):
    response = get(client, range=header)
    assert response.status_code == 206
    assert response.content == stored[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(stored)}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize(
    "header",
    ["items=0-1", "bytes 0-1", "bytes=abc", "bytes=5-1", "bytes=-", "bytes=", "bytes=1-2-3", "bytes=0x1-2",
     "bytes=0-1,5-1"],
)
def test_unusable_range_header_is_ignored(client, stored, header):
    response = get(client, range=header)
    assert response.status_code == 200
    assert response.content == stored


@pytest.mark.parametrize("header", ["bytes=300000-", "bytes=400000-500000", "bytes=-0", "bytes=300000-,-0"])
def test_unsatisfiable_range_is_416_with_size(client, stored, header):
    response = get(client, range=header)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(stored)}"
    assert response.headers["content-type"] == "application/json"


def test_unsatisfiable_ranges_are_dropped_when_another_is_satisfiable(client, stored):
    response = get(client, range="bytes=900000-,10-19")
    assert response.status_code == 206
    assert response.content == stored[10:20]


# --- multiple ranges --------------------------------------------------------

def test_several_ranges_give_multipart_byteranges_in_request_order(client, stored):
    response = get(client, range="bytes=500-599, 0-9, -10")
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert int(response.headers["content-length"]) == len(response.content)
    assert parts_of(response) == [
        ("bytes 500-599/300000", stored[500:600]),
        ("bytes 0-9/300000", stored[0:10]),
        ("bytes 299990-299999/300000", stored[-10:]),
    ]


def test_each_part_declares_the_videos_content_type(client, stored):
    body = get(client, range="bytes=0-0,9-9").content
    assert body.count(b"Content-Type: video/mp4\r\n") == 2


def test_overlapping_and_adjacent_ranges_are_coalesced(client, stored):
    response = get(client, range="bytes=0-99,50-149,150-199")
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 0-199/300000"
    assert response.content == stored[:200]


def test_many_overlapping_ranges_never_send_more_than_the_file(client, stored):
    response = get(client, range="bytes=" + ",".join(["0-"] * 500))
    assert response.status_code == 206
    assert len(response.content) == len(stored)


def test_more_separate_ranges_than_allowed_serve_the_whole_file(local_only, make_client, stored):
    client = make_client(max_ranges=3)
    response = get(client, range="bytes=0-0,10-10,20-20,30-30")
    assert response.status_code == 200
    assert response.content == stored


def test_range_count_at_the_limit_is_honoured(local_only, make_client, stored):
    client = make_client(max_ranges=3)
    response = get(client, range="bytes=0-0,10-10,20-20")
    assert response.status_code == 206
    assert [body for _, body in parts_of(response)] == [stored[0:1], stored[10:11], stored[20:21]]


# --- validators and conditional requests -----------------------------------

def test_etag_is_strong_and_stable(client, stored):
    first, second = get(client).headers["etag"], get(client).headers["etag"]
    assert first == second
    assert re.fullmatch(r'"[0-9a-f-]+"', first)


def test_etag_changes_for_same_size_replacement_within_one_second(local_only, client, store_dir, stored):
    path = store_dir / "clip.mp4"
    os.utime(path, ns=(1_700_000_000_100_000_000, 1_700_000_000_100_000_000))
    before = get(client).headers
    path.write_bytes(bytes(reversed(stored)))
    os.utime(path, ns=(1_700_000_000_900_000_000, 1_700_000_000_900_000_000))
    after = get(client).headers
    assert after["last-modified"] == before["last-modified"]
    assert after["etag"] != before["etag"]


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*", '"x" ,  W/{etag}'])
def test_if_none_match_hit_is_304_with_etag_and_cache_control(client, stored, form):
    etag = get(client).headers["etag"]
    response = get(client, if_none_match=form.format(etag=etag))
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "public, no-cache"
    assert "content-length" not in response.headers or response.headers["content-length"] == "0"


def test_if_none_match_sent_on_several_lines_counts_every_tag(client, stored):
    etag = get(client).headers["etag"]
    response = client.get(URL, headers=[("If-None-Match", '"other"'), ("If-None-Match", etag)])
    assert response.status_code == 304


def test_if_none_match_miss_is_200(client, stored):
    assert get(client, if_none_match='"nope", W/"nope2"').status_code == 200


def test_if_none_match_hit_on_head_is_304(client, stored):
    etag = get(client).headers["etag"]
    assert client.head(URL, headers={"if-none-match": etag}).status_code == 304


def test_if_modified_since_at_or_after_mtime_is_304(client, stored):
    last_modified = get(client).headers["last-modified"]
    assert get(client, if_modified_since=last_modified).status_code == 304


def test_if_modified_since_before_mtime_is_200(local_only, client, store_dir, stored):
    os.utime(store_dir / "clip.mp4", (1_700_000_000, 1_700_000_000))
    assert get(client, if_modified_since=formatdate(1_699_999_999, usegmt=True)).status_code == 200


@pytest.mark.parametrize("form", ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"])
def test_obsolete_date_forms_are_understood(local_only, client, store_dir, stored, form):
    os.utime(store_dir / "clip.mp4", (784111777, 784111777))  # Sun, 06 Nov 1994 08:49:37 GMT
    assert get(client, if_modified_since=form).status_code == 304


def test_if_modified_since_is_ignored_when_if_none_match_is_present(client, stored):
    last_modified = get(client).headers["last-modified"]
    assert get(client, if_none_match='"other"', if_modified_since=last_modified).status_code == 200


def test_invalid_if_modified_since_is_ignored(client, stored):
    assert get(client, if_modified_since="yesterday").status_code == 200


def test_if_match_miss_is_412(client, stored):
    response = get(client, if_match='"stale"')
    assert response.status_code == 412
    assert response.json() == {"detail": "precondition failed"}


@pytest.mark.parametrize("form", ["{etag}", "*", '"a", {etag}'])
def test_if_match_hit_is_200(client, stored, form):
    etag = get(client).headers["etag"]
    assert get(client, if_match=form.format(etag=etag)).status_code == 200


def test_if_match_uses_strong_comparison(client, stored):
    etag = get(client).headers["etag"]
    assert get(client, if_match=f"W/{etag}").status_code == 412


def test_if_unmodified_since_before_mtime_is_412(local_only, client, store_dir, stored):
    os.utime(store_dir / "clip.mp4", (1_700_000_000, 1_700_000_000))
    assert get(client, if_unmodified_since=formatdate(1_600_000_000, usegmt=True)).status_code == 412


def test_if_unmodified_since_is_ignored_when_if_match_is_present(local_only, client, store_dir, stored):
    os.utime(store_dir / "clip.mp4", (1_700_000_000, 1_700_000_000))
    etag = get(client).headers["etag"]
    response = get(client, if_match=etag, if_unmodified_since=formatdate(1_600_000_000, usegmt=True))
    assert response.status_code == 200


def test_if_match_is_evaluated_before_if_none_match(client, stored):
    etag = get(client).headers["etag"]
    assert get(client, if_match='"stale"', if_none_match=etag).status_code == 412


def test_if_range_with_current_etag_honours_range(client, stored):
    etag = get(client).headers["etag"]
    response = get(client, range="bytes=10-19", if_range=etag)
    assert response.status_code == 206
    assert response.content == stored[10:20]


def test_if_range_with_stale_etag_sends_whole_file(client, stored):
    response = get(client, range="bytes=10-19", if_range='"stale"')
    assert response.status_code == 200
    assert response.content == stored


def test_if_range_with_weak_etag_sends_whole_file(client, stored):
    etag = get(client).headers["etag"]
    assert get(client, range="bytes=10-19", if_range=f"W/{etag}").status_code == 200


def test_if_range_with_exact_last_modified_honours_range(client, stored):
    last_modified = get(client).headers["last-modified"]
    assert get(client, range="bytes=10-19", if_range=last_modified).status_code == 206


def test_if_range_with_other_date_sends_whole_file(local_only, client, store_dir, stored):
    os.utime(store_dir / "clip.mp4", (1_700_000_000, 1_700_000_000))
    assert get(client, range="bytes=10-19", if_range=formatdate(1_700_000_001, usegmt=True)).status_code == 200


def test_if_range_mismatch_does_not_turn_unsatisfiable_range_into_416(client, stored):
    response = get(client, range="bytes=900000-", if_range='"stale"')
    assert response.status_code == 200


def test_304_date_comparison_uses_whole_seconds(local_only, client, store_dir, stored):
    os.utime(store_dir / "clip.mp4", ns=(1_700_000_000_999_000_000, 1_700_000_000_999_000_000))
    last_modified = get(client).headers["last-modified"]
    assert parsedate_to_datetime(last_modified).timestamp() == 1_700_000_000
    assert get(client, if_modified_since=last_modified).status_code == 304
