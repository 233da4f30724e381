"""Write protection with VIDEO_API_TOKEN: writes need the bearer token, reads stay public."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.core.settings import Settings
from tests.helpers import processed, store_snapshot

TOKEN = "s3cret-token"


@pytest.fixture
def guarded(make_client):
    return make_client(api_token=TOKEN)


@pytest.fixture
def stored_name(guarded, sample_mp4) -> str:
    response = guarded.post("/video", files={"file": ("a.mp4", sample_mp4.read_bytes())},
                            headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 201
    return processed(guarded, response.json()["name"])["name"]


def writes(sample: bytes, name: str):
    """Every write route, as (method, path, keyword arguments for the client)."""
    return [
        ("POST", "/video", {"files": {"file": ("b.mp4", sample)}}),
        ("PUT", f"/video/{name}", {"content": sample}),
        ("PUT", "/video/new.mp4", {"content": sample}),
        ("DELETE", f"/video/{name}", {}),
    ]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"])
def test_writes_without_the_token_are_401_and_change_nothing(guarded, store_dir, stored_name, sample_mp4,
                                                             authorization):
    before = store_snapshot(store_dir)
    headers = {"authorization": authorization} if authorization else {}
    for method, path, kwargs in writes(sample_mp4.read_bytes(), stored_name):
        response = guarded.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert store_snapshot(store_dir) == before


def test_writes_with_the_token_succeed(guarded, stored_name, sample_mp4):
    headers = {"authorization": f"Bearer {TOKEN}"}
    statuses = [guarded.request(method, path, headers=headers, **kwargs).status_code
                for method, path, kwargs in writes(sample_mp4.read_bytes(), stored_name)]
    assert statuses == [201, 200, 201, 204]


def test_reads_stay_public(guarded, stored_name):
    for path in ("/video", f"/video/{stored_name}", f"/get_video_by_name/{stored_name}",
                 f"/video/{stored_name}/poster.jpg"):
        assert guarded.get(path).status_code == 200, path


def start_and_stop(settings: Settings) -> None:
    with TestClient(create_app(settings)):
        pass


def test_open_writes_are_logged_at_start(store_dir, caplog):
    with caplog.at_level(logging.WARNING):
        start_and_stop(Settings(storage_dir=store_dir))
    assert "VIDEO_API_TOKEN is not set" in caplog.text


def test_no_warning_when_a_token_is_set(store_dir, caplog):
    with caplog.at_level(logging.WARNING):
        start_and_stop(Settings(storage_dir=store_dir, api_token=TOKEN))
    assert "VIDEO_API_TOKEN" not in caplog.text
