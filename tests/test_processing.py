"""Media work as jobs: uploads answered before their poster is made, videos processing then ready, and workers
inside the server or apart from it, one of which may die mid-job."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.core.settings import CATALOG_DIR
from tests.helpers import WAIT, processed, put_file, upload, wait_for
from tests.servers import REPO, ManagedProcess


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


def test_the_library_page_shows_a_video_as_processing_with_its_progress(make_client, sample_mp4):
    client = make_client(embedded_workers=0)
    upload(client, sample_mp4)
    page = client.get("/").text
    assert 'data-status="processing"' in page and "Processing… 0%" in page


def _job(store: Path, video: str) -> tuple[str, int]:
    """The status and tries of ``video``'s describe job, as the catalog's database holds them."""
    with sqlite3.connect(store / CATALOG_DIR / "catalog.db") as database:
        row = database.execute("SELECT status, attempts FROM jobs WHERE video = ? AND kind = 'describe'",
                               (video,)).fetchone()
    return row or ("none", 0)


class WorkerProcess(ManagedProcess):
    """``python -m app worker`` over a store, in a session of its own so that it dies with its media workers."""

    def __init__(self, store: Path, **env: str) -> None:
        variables = {**os.environ, "VIDEO_STORAGE_DIR": str(store), **env}
        super().__init__([sys.executable, "-m", "app", "worker"], lambda: True, cwd=REPO, env=variables,
                         start_new_session=True, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def start_worker(store_dir: Path):
    workers: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        worker = WorkerProcess(store_dir, **env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.stop()


def test_a_worker_apart_from_the_server_does_the_servers_media_work(start_server, start_worker, sample_mp4):
    server = start_server(VIDEO_EMBEDDED_WORKERS="0")
    with httpx.Client(base_url=server.url, timeout=WAIT) as http:
        name = upload(http, sample_mp4).json()["name"]
        start_worker()
        described = processed(http, name)
    assert described["status"] == "ready" and described["poster_url"]


def test_a_job_whose_worker_is_killed_mid_way_is_finished_by_another(start_server, start_worker, store_dir,
                                                                       sample_mp4):
    server = start_server(VIDEO_EMBEDDED_WORKERS="0", VIDEO_JOB_LEASE_SECONDS="2")
    with httpx.Client(base_url=server.url, timeout=WAIT) as http:
        name = upload(http, sample_mp4).json()["name"]
        doomed = start_worker(VIDEO_JOB_LEASE_SECONDS="2")
        assert wait_for(lambda: _job(store_dir, name)[0] == "running", timeout=WAIT)
        doomed.kill()
        assert _job(store_dir, name) == ("running", 1), "the job ended before its worker could be killed"
        start_worker(VIDEO_JOB_LEASE_SECONDS="2")
        described = processed(http, name)
    assert (described["status"], described["poster_url"] is not None) == ("ready", True)
    assert _job(store_dir, name) == ("done", 2)
