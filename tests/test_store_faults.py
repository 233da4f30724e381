"""The service over an object store that stalls (SIGSTOP) or dies (SIGKILL) and comes back: bounded answers,
503 with Retry-After instead of a 500 or a hang, nothing half-written visible, and recovery without a restart.

The service waits at most a second for any answer of the store here (but for a part of an upload, which it may
take longer to store); every client waits ``WAIT``, ten times that, so a service that held a request for as long
as the store is gone fails the test by the client's timeout.
"""

from __future__ import annotations

import threading

import httpx
import obstore
import pytest

from tests.helpers import WAIT, put, uploaded, wait_for

BUCKET = "videos"
WAITS = {"VIDEO_STORE_CONNECT_TIMEOUT_SECONDS": "1", "VIDEO_STORE_TIMEOUT_SECONDS": "1",
         "VIDEO_STORE_WRITE_TIMEOUT_SECONDS": "10", "VIDEO_STORE_CLAIM_SECONDS": "2"}


@pytest.fixture
def prefix(tmp_path) -> str:
    return tmp_path.name


@pytest.fixture
def service(start_server, seaweed, prefix, tmp_path):
    return start_server(**seaweed.env(BUCKET, prefix), VIDEO_STAGING_DIR=str(tmp_path / "staging"), **WAITS)


@pytest.fixture
def http(service):
    with httpx.Client(base_url=service.url, timeout=WAIT) as client:
        yield client


@pytest.fixture
def stored(http, sample_mp4) -> dict:
    """A video stored before the fault, described (its worker done with the store)."""
    return uploaded(http, sample_mp4)


def unavailable(response: httpx.Response) -> bool:
    """Whether the answer is the service's "try again later": 503, Retry-After, a short JSON reason."""
    return (response.status_code == 503 and response.headers["retry-after"] == "5"
            and "object store" in response.json()["detail"])


def test_a_stream_from_a_stalled_store_is_503_with_retry_after(http, seaweed, stored):
    with seaweed.paused():
        assert unavailable(http.get(stored["video_url"]))


def test_a_head_of_a_video_in_a_stalled_store_is_503(http, seaweed, stored):
    with seaweed.paused():
        response = http.head(stored["video_url"])
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")


def test_the_service_streams_again_once_the_stalled_store_answers(http, seaweed, stored, sample_mp4):
    with seaweed.paused():
        http.get(stored["video_url"])
    assert http.get(stored["video_url"]).content == sample_mp4.read_bytes()


def test_an_upload_to_a_stalled_store_is_503_and_stores_nothing(http, seaweed, sample_mp4):
    with seaweed.paused():
        assert unavailable(http.post("/video", files={"file": ("stalled.mp4", sample_mp4.read_bytes())}))
    assert http.get("/video/stalled.mp4").status_code == 404
    assert "stalled.mp4" not in [video["name"] for video in http.get("/video").json()["videos"]]


def test_a_stream_whose_store_stalls_mid_way_is_cut_not_held_open(http, seaweed, large_mp4):
    url = uploaded(http, large_mp4)["video_url"]
    with http.stream("GET", url) as response, seaweed.paused():
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):  # cut short: fewer bytes than Content-Length
            for _ in response.iter_raw():
                pass


def test_every_store_route_of_a_service_whose_store_is_down_is_503_and_works_again_after(http, seaweed, stored,
                                                                                       sample_mp4):
    with seaweed.down():
        assert unavailable(http.get(stored["video_url"]))
        assert unavailable(http.post("/video", files={"file": ("down.mp4", sample_mp4.read_bytes())}))
        assert unavailable(http.post("/uploads/", headers={"tus-resumable": "1.0.0", "upload-length": "10"}))
        assert http.get("/healthz").status_code == 200
    assert http.get(stored["video_url"]).status_code == 200
    assert uploaded(http, sample_mp4, "down.mp4")["name"] == "down.mp4"


def test_a_name_whose_upload_died_with_the_store_is_free_again_once_its_claim_is_stale(http, seaweed, prefix,
                                                                                       large_mp4, sample_mp4):
    client = seaweed.client(BUCKET)
    marker = f"{prefix}/.names/cut.mp4"
    answers: list[httpx.Response] = []
    upload = threading.Thread(target=lambda: answers.append(
        http.post("/video", files={"file": ("cut.mp4", large_mp4.read_bytes())})))
    upload.start()
    assert wait_for(lambda: _exists(client, marker), timeout=WAIT)  # publishing: its name is claimed
    with seaweed.down():
        upload.join()
    assert unavailable(answers[0])
    assert http.get("/video/cut.mp4").status_code == 404
    # Its claim outlived the request (the store was gone); once stale, a create-only PUT may have the name
    # (refused with 412 while the claim is fresh, so asking again changes nothing until then).
    assert wait_for(lambda: put(http, "cut.mp4", sample_mp4, if_none_match="*").status_code == 201,
                    timeout=3 * WAIT)  # the store's own recovery, then the claim's
    assert http.get("/get_video_by_name/cut.mp4").content == sample_mp4.read_bytes()


def _exists(client, key: str) -> bool:
    try:
        obstore.head(client, key)
    except FileNotFoundError:
        return False
    return True
