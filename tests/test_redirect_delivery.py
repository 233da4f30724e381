"""``VIDEO_DELIVERY=redirect`` over a real SeaweedFS: the preconditions are answered by the service, the rest is a
307 to a signed URL that lives ``VIDEO_REDIRECT_SECONDS`` and is signed for the store's public endpoint; in a
bucket that keeps versions, the URL is of the version it was issued for, and stops working once it is replaced."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.helpers import WAIT, put, uploaded

BUCKET = "videos"
PUBLIC = "http://videos-store.example"


def _starter(start_server, seaweed, tmp_path, bucket: str):
    def start_with(**env: str):
        return start_server(**seaweed.env(bucket, tmp_path.name), VIDEO_STAGING_DIR=str(tmp_path / "staging"),
                            VIDEO_DELIVERY="redirect", **env)
    return start_with


@pytest.fixture
def start(start_server, seaweed, tmp_path):
    return _starter(start_server, seaweed, tmp_path, BUCKET)


@pytest.fixture
def versioned(start_server, seaweed, tmp_path, versioned_bucket):
    """A service over a bucket that keeps versions, and its client."""
    server = _starter(start_server, seaweed, tmp_path, versioned_bucket)()
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        yield client


@pytest.fixture
def video(start, sample_mp4) -> dict:
    with httpx.Client(base_url=start().url, timeout=WAIT) as client:
        return uploaded(client, sample_mp4)


def test_a_matching_if_none_match_is_answered_304_not_redirected(video):
    etag = httpx.get(video["video_url"]).headers["etag"]
    answer = httpx.get(video["video_url"], headers={"if-none-match": etag})
    assert (answer.status_code, answer.headers["etag"]) == (304, etag)


def test_a_failing_if_match_is_answered_412_not_redirected(video):
    answer = httpx.get(video["video_url"], headers={"if-match": '"another-version"'})
    assert answer.status_code == 412


def test_the_redirect_names_the_version_the_store_then_serves(video, seaweed):
    answer = httpx.get(video["video_url"])
    assert answer.status_code == 307 and answer.headers["location"].startswith(seaweed.endpoint)
    assert httpx.get(answer.headers["location"]).headers["etag"] == answer.headers["etag"]


def test_a_redirect_is_valid_for_the_configured_time(start, sample_mp4):
    server = start(VIDEO_REDIRECT_SECONDS="90")
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        url = uploaded(client, sample_mp4)["video_url"]
    signed = urlsplit(httpx.get(url).headers["location"])
    assert parse_qs(signed.query)["X-Amz-Expires"] == ["90"]


def test_a_redirect_is_signed_for_the_public_endpoint_and_the_store_accepts_it_there(start, seaweed, sample_mp4):
    server = start(VIDEO_S3_PUBLIC_ENDPOINT=PUBLIC)
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        url = uploaded(client, sample_mp4)["video_url"]
    signed = httpx.get(url).headers["location"]
    assert signed.startswith(PUBLIC + "/")
    # As a proxy answering for the public name would pass it on: to the store, with the public Host.
    fetched = httpx.get(seaweed.endpoint + signed.removeprefix(PUBLIC), headers={"host": urlsplit(PUBLIC).netloc})
    assert fetched.content == sample_mp4.read_bytes()


def _signed_query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(httpx.get(url).headers["location"]).query)


def test_without_versioning_a_redirect_names_no_version(start, sample_mp4):
    with httpx.Client(base_url=start().url, timeout=WAIT) as client:
        url = uploaded(client, sample_mp4)["video_url"]
    assert "versionId" not in _signed_query(url)


def test_in_a_versioned_bucket_a_redirect_is_of_the_version_opened(versioned, sample_mp4):
    video = uploaded(versioned, sample_mp4)
    answer = httpx.get(httpx.get(video["video_url"]).headers["location"])
    assert answer.content == sample_mp4.read_bytes()
    assert _signed_query(video["video_url"])["versionId"] == [answer.headers["x-amz-version-id"]]


def test_a_replaced_videos_old_redirect_stops_working(versioned, sample_mp4):
    video = uploaded(versioned, sample_mp4)
    old = httpx.get(video["video_url"]).headers["location"]
    assert put(versioned, video["name"], sample_mp4).status_code == 200
    assert httpx.get(old).status_code == 404
    assert httpx.get(httpx.get(video["video_url"]).headers["location"]).content == sample_mp4.read_bytes()


def test_a_deleted_videos_old_redirect_does_not_serve_a_new_upload_under_its_name(versioned, sample_mp4):
    video = uploaded(versioned, sample_mp4)
    old = httpx.get(video["video_url"]).headers["location"]
    assert versioned.delete(f"/video/{video['name']}").status_code == 204
    assert put(versioned, video["name"], sample_mp4).status_code == 201
    assert httpx.get(old).status_code == 404


def test_a_replace_leaves_only_the_new_version_in_the_bucket(versioned, seaweed, versioned_bucket, sample_mp4,
                                                            tmp_path):
    video = uploaded(versioned, sample_mp4)
    put(versioned, video["name"], sample_mp4)
    current = httpx.get(httpx.get(video["video_url"]).headers["location"]).headers["x-amz-version-id"]
    assert seaweed.versions(versioned_bucket, f"{tmp_path.name}/{video['name']}") == [current]


def test_a_delete_leaves_no_version_of_the_video_in_the_bucket(versioned, seaweed, versioned_bucket, sample_mp4,
                                                              tmp_path):
    video = uploaded(versioned, sample_mp4)
    assert versioned.delete(f"/video/{video['name']}").status_code == 204
    assert seaweed.versions(versioned_bucket, f"{tmp_path.name}/{video['name']}") == []


def test_a_deleted_videos_old_poster_redirect_stops_working(versioned, sample_mp4):
    video = uploaded(versioned, sample_mp4)
    old = httpx.get(video["poster_url"]).headers["location"]
    assert versioned.delete(f"/video/{video['name']}").status_code == 204
    assert httpx.get(old).status_code == 404
