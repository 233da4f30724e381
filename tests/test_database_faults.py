"""The service over a PostgreSQL catalog that stalls (its postmaster stopped) or is down, and comes back: 503
with Retry-After instead of a 500 or a hang, liveness kept, and recovery without a restart.

The service waits at most a second for the database here; every client waits ``WAIT``, so a service that held a
request for as long as the database is gone fails the test by the client's timeout.
"""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import WAIT, uploaded


@pytest.fixture
def service(start_server, postgres_url):
    return start_server(VIDEO_DATABASE_URL=postgres_url, VIDEO_DATABASE_TIMEOUT_SECONDS="1")


@pytest.fixture
def http(service):
    with httpx.Client(base_url=service.url, timeout=WAIT) as client:
        yield client


def unavailable(response: httpx.Response) -> bool:
    """Whether the answer is the service's "try again later": 503, Retry-After, a short JSON reason."""
    return (response.status_code == 503 and response.headers["retry-after"] == "5"
            and "database" in response.json()["detail"])


def test_the_listing_of_a_stalled_database_is_503_with_retry_after(http, postgres):
    with postgres.paused():
        assert unavailable(http.get("/video"))


def test_a_video_s_description_from_a_database_that_is_down_is_503(http, postgres, sample_mp4):
    name = uploaded(http, sample_mp4)["name"]
    with postgres.down():
        assert unavailable(http.get(f"/video/{name}"))


def test_an_upload_while_the_database_is_down_is_503_and_stores_nothing(http, postgres, sample_mp4, store_dir):
    with postgres.down():
        assert unavailable(http.post("/video", files={"file": ("down.mp4", sample_mp4.read_bytes())}))
    assert not (store_dir / "down.mp4").exists()


def test_liveness_holds_while_the_database_is_down(http, postgres):
    with postgres.down():
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 503


def test_the_service_answers_again_once_the_database_is_back(http, postgres, sample_mp4):
    with postgres.down():
        http.get("/video")
    assert uploaded(http, sample_mp4)["status"] == "ready"
    assert http.get("/video").json()["videos"][0]["name"] == sample_mp4.name
