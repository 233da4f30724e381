"""``python -m app upload``: the resumable command-line uploader, end to end against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import put_file
from tests.proxy import CuttingProxy
from tests.servers import REPO


def run_cli(server_url: str, *args: str, state: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "app", "upload", "--server", server_url, "--state-file", str(state), *args]
    env = {key: value for key, value in os.environ.items() if key != "VIDEO_API_TOKEN"}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "urls.json"


def test_uploads_several_videos_and_prints_their_urls(start_server, store_dir, sample_mp4, sample_webm, state):
    server = start_server()
    result = run_cli(server.url, str(sample_mp4), str(sample_webm), state=state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{server.url}/get_video_by_name/sample.mp4" in result.stdout
    assert f"{server.url}/get_video_by_name/sample.webm" in result.stdout
    assert (store_dir / "sample.webm").read_bytes() == sample_webm.read_bytes()


def test_an_interrupted_run_resumes_when_run_again(start_server, store_dir, tmp_path, state):
    server = start_server(VIDEO_ACCEPT_ANY_FILE="true")
    data = os.urandom(3 * 1024 * 1024)
    big = put_file(tmp_path, "big.mp4", data)
    proxy = CuttingProxy(server.port)
    proxy.cut_after(1024 * 1024 + 50_000)
    first = run_cli(proxy.url, "--chunk-size", "262144", str(big), state=state)
    assert first.returncode == 1
    assert "failed" in first.stdout
    assert proxy.cuts >= 1
    proxy.cut_after(None)
    second = run_cli(proxy.url, "--chunk-size", "262144", str(big), state=state)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming at byte 1048576 of 3145728" in second.stdout
    assert (store_dir / "big.mp4").read_bytes() == data
    proxy.close()


def test_a_file_that_is_not_a_video_is_reported_and_fails(start_server, tmp_path, state):
    server = start_server()
    page = put_file(tmp_path, "page.mp4", b"<html></html>" * 500)
    result = run_cli(server.url, str(page), state=state)
    assert result.returncode == 1
    assert "refused it: not a video" in result.stdout


def test_a_file_over_the_limit_is_reported_and_fails(start_server, sample_mp4, state):
    server = start_server(VIDEO_MAX_UPLOAD_BYTES="1000")
    result = run_cli(server.url, str(sample_mp4), state=state)
    assert result.returncode == 1
    assert "larger than the server accepts" in result.stdout


def test_a_missing_token_is_reported_and_a_given_one_works(start_server, sample_mp4, state):
    server = start_server(VIDEO_API_TOKEN="t0k")
    refused = run_cli(server.url, str(sample_mp4), state=state)
    assert refused.returncode == 1
    assert "pass --token" in refused.stdout
    accepted = run_cli(server.url, "--token", "t0k", str(sample_mp4), state=state)
    assert accepted.returncode == 0, accepted.stdout


def test_a_missing_file_is_reported_and_the_others_still_upload(start_server, sample_mp4, tmp_path, state):
    server = start_server()
    result = run_cli(server.url, str(tmp_path / "nope.mp4"), str(sample_mp4), state=state)
    assert result.returncode == 1
    assert "no such file" in result.stdout
    assert "/get_video_by_name/sample.mp4" in result.stdout


def test_an_unreachable_server_is_reported(sample_mp4, state):
    result = run_cli("http://127.0.0.1:9", str(sample_mp4), state=state)
    assert result.returncode == 1
    assert "could not reach the server" in result.stdout
