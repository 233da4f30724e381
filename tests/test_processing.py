"""Media work as jobs: uploads answered before their poster is made, videos processing then ready, and workers
inside the server or apart from it, one of which may die mid-job."""

from __future__ import annotations


import httpx
from tests.helpers import WAIT, job_state, processed, put_file, upload, wait_for


def test_an_upload_is_answered_with_its_media_while_its_poster_is_still_to_be_made(make_client, sample_mp4):
    described = upload(make_client(embedded_workers=0), sample_mp4).json()
    assert (described["status"], described["progress"], described["poster_url"]) == ("processing", 0, None)
    assert (described["width"], described["video_codec"]) == (320, "h264")


def test_the_servers_own_worker_makes_an_uploads_poster(client, sample_mp4):
    described = processed(client, upload(client, sample_mp4).json()["name"])
    assert (described["status"], described["status_reason"]) == ("ready", None)
    assert client.get(described["poster_url"]).headers["content-type"] == "image/jpeg"


def test_the_events_stream_ends_with_the_work_and_says_how_it_ended(client, sample_mp4):
    name = upload(client, sample_mp4).json()["name"]
    with client.stream("GET", f"/video/{name}/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        data = [line for line in events.iter_lines() if line.startswith("data:")]
    assert data[-1] == 'data: {"status":"ready","progress":1.0,"status_reason":null}'


def test_the_events_stream_of_an_unknown_video_is_404(client):
    assert client.get("/video/nothing.mp4/events").status_code == 404


def test_a_file_copied_in_by_hand_is_listed_at_once_as_processing(make_client, store_dir, sample_mp4):
    put_file(store_dir, "copied.mp4", sample_mp4.read_bytes())
    [listed] = make_client(embedded_workers=0).get("/video").json()["videos"]
    assert (listed["name"], listed["status"], listed["width"]) == ("copied.mp4", "processing", None)


def test_a_file_copied_in_by_hand_is_described_in_the_background(client, store_dir, sample_mp4):
    put_file(store_dir, "copied.mp4", sample_mp4.read_bytes())
    client.post("/video", files={"file": ("not-this.txt", b"x")})  # any request: the app has started
    assert processed(client, "copied.mp4")["width"] == 320


def test_a_worker_apart_from_the_server_does_the_servers_media_work(start_server, start_worker, database_url,
                                                                    sample_mp4):
    server = start_server(VIDEO_EMBEDDED_WORKERS="0", VIDEO_DATABASE_URL=database_url)
    with httpx.Client(base_url=server.url, timeout=WAIT) as http:
        name = upload(http, sample_mp4).json()["name"]
        start_worker(VIDEO_DATABASE_URL=database_url)
        described = processed(http, name)
    assert described["status"] == "ready" and described["poster_url"]


def test_a_job_whose_worker_is_killed_mid_way_is_finished_by_another(start_server, start_worker, database_url,
                                                                       sample_mp4):
    settings = {"VIDEO_DATABASE_URL": database_url, "VIDEO_JOB_LEASE_SECONDS": "2"}
    server = start_server(VIDEO_EMBEDDED_WORKERS="0", **settings)
    with httpx.Client(base_url=server.url, timeout=WAIT) as http:
        name = upload(http, sample_mp4).json()["name"]
        doomed = start_worker(**settings)
        assert wait_for(lambda: job_state(database_url, name)[0] == "running", timeout=WAIT)
        doomed.kill()
        assert job_state(database_url, name) == ("running", 1), "the job ended before its worker could be killed"
        start_worker(**settings)
        described = processed(http, name)
    assert (described["status"], described["poster_url"] is not None) == ("ready", True)
    assert job_state(database_url, name) == ("done", 2)


def test_two_instances_and_two_workers_share_one_postgresql_and_one_bucket(start_server, start_worker, seaweed,
                                                                          postgres_url, tmp_path, sample_mp4):
    shared = {**seaweed.env("videos", tmp_path.name), "VIDEO_DATABASE_URL": postgres_url}
    instances = [start_server(VIDEO_EMBEDDED_WORKERS="0", VIDEO_STAGING_DIR=str(tmp_path / f"api-{number}"),
                              **shared) for number in (1, 2)]
    for number in (1, 2):
        start_worker(VIDEO_STAGING_DIR=str(tmp_path / f"worker-{number}"), **shared)
    with httpx.Client(base_url=instances[0].url, timeout=WAIT) as first:
        name = upload(first, sample_mp4).json()["name"]
    with httpx.Client(base_url=instances[1].url, timeout=WAIT) as second:
        described = processed(second, name)
        poster = second.get(described["poster_url"])
    assert (described["status"], described["width"], poster.headers["content-type"]) == ("ready", 320, "image/jpeg")
    assert job_state(postgres_url, name) == ("done", 1)
