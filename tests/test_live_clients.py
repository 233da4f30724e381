"""The service over real TCP, driven by clients nobody here wrote: curl, ffprobe, ffmpeg,
and the request sequences browsers send."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers import put_file


@pytest.fixture
def video_in_store(live_store: Path, sample_mp4_moov_last: Path, request: pytest.FixtureRequest) -> tuple[str, bytes]:
    """An MP4 copied in by hand under a name unique to the test; its index is at the end,
    so a player over HTTP must seek."""
    name = f"{request.node.name.replace('[', '-').replace(']', '')}.mp4"
    shutil.copyfile(sample_mp4_moov_last, live_store / name)
    return name, sample_mp4_moov_last.read_bytes()


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, check=True, timeout=60)


def test_curl_uploads_a_file_with_form_field(live_server, sample_mp4, live_store):
    result = run("curl", "-sS", "-F", f"file=@{sample_mp4};filename=curl-upload.mp4", f"{live_server.url}/video")
    body = json.loads(result.stdout)
    assert body["video_url"] == f"{live_server.url}/get_video_by_name/{body['name']}"
    assert (live_store / body["name"]).read_bytes() == sample_mp4.read_bytes()


def test_curl_keeps_the_quotes_and_extension_of_a_filename(live_server, sample_mp4, live_store):
    """curl 7.88 sends each ``"`` of the name as ``%22``; the name it is given here is curl's own quoted form."""
    field = f'file=@{sample_mp4};filename="curl\\";quoted;\\".mp4"'
    result = run("curl", "-sS", "-F", field, f"{live_server.url}/video")
    assert json.loads(result.stdout)["name"] == 'curl";quoted;".mp4'
    assert (live_store / 'curl";quoted;".mp4').read_bytes() == sample_mp4.read_bytes()


def test_curl_range_option_fetches_inclusive_range(live_server, video_in_store, tmp_path):
    name, data = video_in_store
    run("curl", "-sS", "-r", "100-1099", "-o", str(tmp_path / "part"), f"{live_server.url}/get_video_by_name/{name}")
    assert (tmp_path / "part").read_bytes() == data[100:1100]


def test_curl_resumes_a_partial_download(live_server, video_in_store, tmp_path):
    name, data = video_in_store
    partial = put_file(tmp_path, "download.mp4", data[:12345])
    run("curl", "-sS", "-C", "-", "-o", str(partial), f"{live_server.url}/get_video_by_name/{name}")
    assert partial.read_bytes() == data


def test_ffprobe_reads_a_video_over_http(live_server, video_in_store):
    name, _ = video_in_store
    result = run("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json",
                 f"{live_server.url}/get_video_by_name/{name}")
    probe = json.loads(result.stdout)
    assert sorted(stream["codec_name"] for stream in probe["streams"]) == ["aac", "h264"]
    assert float(probe["format"]["duration"]) == pytest.approx(2.0, abs=0.1)


def test_ffmpeg_seeks_into_a_video_over_http(live_server, video_in_store):
    name, _ = video_in_store
    result = run("ffmpeg", "-v", "error", "-ss", "1.5", "-i", f"{live_server.url}/get_video_by_name/{name}",
                 "-map", "0:v", "-f", "framemd5", "-")
    frames = [line for line in result.stdout.decode().splitlines() if not line.startswith("#")]
    assert 0 < len(frames) < 25  # a seek: well under the 50 frames of the whole clip


def test_safari_two_byte_probe_then_full_range(live, video_in_store):
    name, data = video_in_store
    probe = live.get(f"/get_video_by_name/{name}", headers={"range": "bytes=0-1"})
    assert (probe.status_code, probe.content) == (206, data[:2])
    assert probe.headers["content-range"] == f"bytes 0-1/{len(data)}"
    whole = live.get(f"/get_video_by_name/{name}", headers={"range": f"bytes=0-{len(data) - 1}"})
    assert (whole.status_code, whole.content) == (206, data)


def test_chromium_open_ended_range_then_tail_with_if_range(live, video_in_store):
    name, data = video_in_store
    first = live.get(f"/get_video_by_name/{name}", headers={"range": "bytes=0-"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-{len(data) - 1}/{len(data)}"
    tail_start = len(data) - 4096
    tail = live.get(f"/get_video_by_name/{name}",
                    headers={"range": f"bytes={tail_start}-", "if-range": first.headers["etag"]})
    assert (tail.status_code, tail.content) == (206, data[tail_start:])


def test_revalidation_with_etag_gets_304_over_tcp(live, video_in_store):
    name, _ = video_in_store
    etag = live.get(f"/get_video_by_name/{name}").headers["etag"]
    response = live.get(f"/get_video_by_name/{name}", headers={"if-none-match": etag})
    assert response.status_code == 304
    assert response.content == b""


def test_head_over_tcp_announces_length_without_body(live, video_in_store):
    name, data = video_in_store
    response = live.head(f"/get_video_by_name/{name}")
    assert response.headers["content-length"] == str(len(data))
    assert response.content == b""


def test_healthz_answers_ok(live):
    assert live.get("/healthz").json() == {"status": "ok"}


def test_unknown_route_is_json_404(live):
    response = live.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/get_video_by_name/../../etc/passwd", "/get_video_by_name/%2e%2e/%2e%2e/etc/passwd"])
def test_raw_dot_segments_over_tcp_never_leave_the_store(live_server, path):
    result = run("curl", "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", live_server.url + path)
    assert 400 <= int(result.stdout) < 500


def read_while(url: str, action: Callable[[], object]) -> tuple[bytes, str]:
    """Stream ``url``, run ``action`` after the first chunk, finish reading; (body, ETag)."""
    with httpx.stream("GET", url, timeout=30) as response:
        chunks = response.iter_bytes()
        received = bytearray(next(chunks))
        action()
        for chunk in chunks:
            received += chunk
    return bytes(received), response.headers["etag"]


@pytest.fixture
def big_video(live_store: Path, request: pytest.FixtureRequest) -> tuple[str, bytes]:
    """32 MiB under a test-unique name: far more than socket buffers hold."""
    data = bytes(range(256)) * (128 * 1024)
    name = f"{request.node.name}.mp4"
    put_file(live_store, name, data)
    return name, data


def test_a_stream_keeps_serving_the_version_it_opened_when_replaced(live_server, live_store, big_video):
    name, original = big_video
    url = f"{live_server.url}/get_video_by_name/{name}"

    def replace() -> None:
        put_file(live_store, "replacement.tmp", bytes(reversed(original)))
        (live_store / "replacement.tmp").replace(live_store / name)

    body, etag = read_while(url, replace)
    assert body == original
    assert httpx.get(url).headers["etag"] != etag


def test_a_stream_finishes_when_its_file_is_deleted_by_hand(live_server, live_store, big_video):
    name, original = big_video
    body, _ = read_while(f"{live_server.url}/get_video_by_name/{name}", (live_store / name).unlink)
    assert body == original


def test_a_stream_finishes_when_its_video_is_deleted_through_the_api(live_server, big_video):
    name, original = big_video
    url = f"{live_server.url}/get_video_by_name/{name}"
    body, _ = read_while(url, lambda: httpx.delete(f"{live_server.url}/video/{name}").raise_for_status())
    assert body == original
    assert httpx.get(url).status_code == 404


def test_media_work_runs_outside_the_server_process(live_server, sample_mp4):
    run("curl", "-sS", "-F", f"file=@{sample_mp4};filename=isolated.mp4", f"{live_server.url}/video")
    assert httpx.get(f"{live_server.url}/video/isolated.mp4").json()["video_codec"] == "h264"
    maps = Path(f"/proc/{live_server.process.pid}/maps").read_text()
    assert "libavcodec" not in maps and "libavformat" not in maps
