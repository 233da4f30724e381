"""VIDEO_ALLOWED_HOSTS: the client's Host flows into the URLs handed out, so only named hosts are served.

Descriptions carry those URLs, so no shared cache may keep them either.
"""

from __future__ import annotations

import pytest

from tests.helpers import put_file


@pytest.fixture
def guarded(make_client, store_dir):
    put_file(store_dir, "clip.mp4", b"stored by hand")
    return make_client(allowed_hosts=("videos.example", "*.cdn.example"))


@pytest.mark.parametrize("path", ["/video", "/get_video_by_name/clip.mp4", "/", "/uploads/"])
def test_a_host_not_allowed_is_answered_400_on_every_route(guarded, path):
    answer = guarded.get(path, headers={"Host": "evil.example"})
    assert answer.status_code == 400
    assert "host" in answer.json()["detail"]


@pytest.mark.parametrize("host", ["videos.example", "VIDEOS.example:8000", "eu.cdn.example"])
def test_an_allowed_host_is_served(guarded, host):
    answer = guarded.get("/video", headers={"Host": host})
    assert answer.status_code == 200
    assert answer.json()["videos"][0]["video_url"].startswith(f"http://{host}/")


def test_a_wildcard_does_not_take_the_bare_domain(guarded):
    assert guarded.get("/video", headers={"Host": "cdn.example"}).status_code == 400


def test_a_forwarded_host_is_checked_when_proxy_headers_are_trusted(make_client):
    client = make_client(allowed_hosts=("videos.example",), trust_proxy_headers=True)
    answer = client.get("/video", headers={"Host": "videos.example", "X-Forwarded-Host": "evil.example"})
    assert answer.status_code == 400


def test_without_the_setting_any_host_is_served(client):
    assert client.get("/video", headers={"Host": "anything.example"}).status_code == 200


@pytest.mark.parametrize("path", ["/video", "/video/clip.mp4"])
def test_descriptions_are_not_kept_by_shared_caches(client, store_dir, path):
    put_file(store_dir, "clip.mp4", b"stored by hand")
    assert client.get(path).headers["cache-control"] == "private, no-cache"
