"""What others put in the store by hand: only regular files are videos, and nothing there can stall the server."""

from __future__ import annotations

import os

import httpx


def test_a_fifo_in_the_store_is_not_found_and_the_server_keeps_answering(start_server, store_dir):
    os.mkfifo(store_dir / "pipe.mp4")
    server = start_server()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/get_video_by_name/pipe.mp4").status_code == 404
        assert http.get("/healthz").status_code == 200
        assert [video["name"] for video in http.get("/video").json()["videos"]] == []
