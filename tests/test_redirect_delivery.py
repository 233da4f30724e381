"""``VIDEO_DELIVERY=redirect`` over a real SeaweedFS: the preconditions are answered by the service, the rest is a
307 to a signed URL that lives ``VIDEO_REDIRECT_SECONDS`` and is signed for the store's public endpoint."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.helpers import WAIT, uploaded

BUCKET = "videos"
PUBLIC = "http://videos-store.example"


@pytest.fixture
def start(start_server, seaweed, tmp_path):
    def start_with(**env: str):
        return start_server(**seaweed.env(BUCKET, tmp_path.name), VIDEO_STAGING_DIR=str(tmp_path / "staging"),
                            VIDEO_DELIVERY="redirect", **env)
    return start_with


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
