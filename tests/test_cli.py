"""``python -m app upload``: the resumable command-line uploader, end to end against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import put_file, visible, wait_for
from tests.proxy import CuttingProxy
from tests.servers import REPO, ManagedProcess, answers, free_port


def cli(server_url: str, *args: str, state: Path, **popen: object) -> subprocess.Popen:
    command = [sys.executable, "-m", "app", "upload", "--server", server_url, "--state-file", str(state), *args]
    env = {key: value for key, value in os.environ.items() if key != "VIDEO_API_TOKEN"}
    return subprocess.Popen(command, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, **popen)


def run_cli(server_url: str, *args: str, state: Path) -> subprocess.CompletedProcess:
    with cli(server_url, *args, state=state, stderr=subprocess.PIPE) as process:
        stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


GATED_SERVER = """
import asyncio, sys
from pathlib import Path
import uvicorn
from app.uploads.ingest import IngestPipeline

gate = Path(sys.argv[2])
ingest = IngestPipeline.run

async def held_at_the_gate(*args):
    gate.with_suffix(".waiting").touch()
    while not gate.exists():
        await asyncio.sleep(0.05)
    return await ingest(*args)

IngestPipeline.run = held_at_the_gate
uvicorn.run("app.main:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


class GatedServer(ManagedProcess):
    """The service with every ingest held until ``open()``: a window in which a client can miss the answer."""

    def __init__(self, store: Path, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._gate = workdir / "gate"
        env = {**os.environ, "VIDEO_STORAGE_DIR": str(store), "VIDEO_ACCEPT_ANY_FILE": "true"}
        super().__init__([sys.executable, "-c", GATED_SERVER, str(self.port), str(self._gate)],
                         lambda: answers(self.url + "/healthz"), cwd=REPO, env=env)

    @property
    def ingesting(self) -> bool:
        return self._gate.with_suffix(".waiting").exists()

    def open(self) -> None:
        self._gate.touch()


@pytest.fixture
def gated(store_dir: Path, tmp_path: Path) -> Iterator[GatedServer]:
    server = GatedServer(store_dir, tmp_path)
    yield server
    server.stop()


def cut_off_while_ingesting(server: GatedServer, video: Path, state: Path) -> None:
    """A run that sent every byte and was stopped before the server answered (Ctrl-C, a dropped network)."""
    first = cli(server.url, str(video), state=state, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: server.ingesting, timeout=60)
    first.kill()
    first.communicate()


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


def test_a_run_after_the_server_finished_unseen_prints_the_url_and_uploads_nothing_again(gated, store_dir, tmp_path,
                                                                                         state):
    video = put_file(tmp_path, "clip.mp4", os.urandom(100_000))
    cut_off_while_ingesting(gated, video, state)
    gated.open()
    assert wait_for(lambda: (store_dir / "clip.mp4").exists())
    second = run_cli(gated.url, str(video), state=state)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{gated.url}/get_video_by_name/clip.mp4" in second.stdout
    assert visible(store_dir) == ["clip.mp4"]


def test_a_run_while_the_server_still_makes_the_video_waits_for_its_url(gated, store_dir, tmp_path, state):
    video = put_file(tmp_path, "clip.mp4", os.urandom(100_000))
    cut_off_while_ingesting(gated, video, state)
    with cli(gated.url, str(video), state=state, stderr=subprocess.PIPE) as second:
        waiting = next((line for line in second.stdout if "waiting" in line), None)
        gated.open()
        stdout, stderr = second.communicate(timeout=60)
    assert waiting is not None, stdout + stderr
    assert second.returncode == 0, stdout + stderr
    assert f"{gated.url}/get_video_by_name/clip.mp4" in stdout
    assert visible(store_dir) == ["clip.mp4"]


def test_an_unreadable_state_file_is_set_aside_with_a_warning(start_server, sample_mp4, state):
    server = start_server()
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    result = run_cli(server.url, str(sample_mp4), state=state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "could not read" in result.stdout
    assert state.with_name("urls.json.unreadable").read_text() == "{not json"
