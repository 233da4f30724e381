"""Readiness (/readyz) apart from liveness (/healthz): an instance whose store or database does not answer says so,
within its time limit, with 503 and Retry-After."""

from __future__ import annotations

import shutil
import signal
import time

import httpx

from app.core.settings import CATALOG_DIR
from tests.helpers import WAIT


def test_an_instance_whose_store_and_database_answer_is_ready(client):
    answer = client.get("/readyz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ready"})


def test_an_instance_whose_database_is_gone_is_unready_but_alive(client, store_dir):
    assert client.get("/readyz").status_code == 200
    shutil.rmtree(store_dir / CATALOG_DIR)
    (store_dir / CATALOG_DIR).write_text("a file where the catalog's folder was: the database cannot be opened")
    answer = client.get("/readyz")
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
    assert answer.json() == {"status": "unavailable", "detail": "the database cannot be reached"}
    assert client.get("/healthz").status_code == 200


def test_a_stalled_object_store_makes_the_instance_unready_within_its_time_limit(start_server, seaweed, tmp_path):
    server = start_server(**seaweed.env("videos", tmp_path.name), VIDEO_STAGING_DIR=str(tmp_path / "staging"),
                          VIDEO_READY_TIMEOUT_SECONDS="1")
    assert httpx.get(f"{server.url}/readyz", timeout=WAIT).status_code == 200
    seaweed.process.send_signal(signal.SIGSTOP)  # the store accepts connections but answers nothing
    try:
        started = time.monotonic()
        answer = httpx.get(f"{server.url}/readyz", timeout=WAIT)
        waited = time.monotonic() - started
    finally:
        seaweed.process.send_signal(signal.SIGCONT)
    assert (answer.status_code, answer.json()["detail"]) == (503, "the store did not answer within 1 s")
    assert waited < WAIT / 2
    assert httpx.get(f"{server.url}/readyz", timeout=WAIT).status_code == 200
