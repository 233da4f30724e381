"""VIDEO_DELIVERY=x-accel behind a real nginx running the configuration the repository ships."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from string import Template

import httpx
import m3u8
import pytest

from tests.helpers import WAIT, processed
from tests.servers import REPO, NginxProcess, free_port

SITE_TEMPLATE = REPO / "deploy" / "nginx-x-accel.conf.template"
MAIN_TEMPLATE = Path(__file__).with_name("nginx-main.conf.template")


@pytest.fixture
def nginx(start_server, store_dir, tmp_path) -> NginxProcess:
    service = start_server(VIDEO_DELIVERY="x-accel", VIDEO_TRUST_PROXY_HEADERS="true")
    port = free_port()
    site = tmp_path / "site.conf"
    site.write_text(Template(SITE_TEMPLATE.read_text()).safe_substitute(
        LISTEN=f"127.0.0.1:{port}", SERVICE=f"127.0.0.1:{service.port}", STORE_DIR=store_dir))
    proxy = NginxProcess(MAIN_TEMPLATE, tmp_path, port=port, site=site)
    proxy.service = service
    yield proxy
    proxy.stop()
    assert "[emerg]" not in proxy.errors() and "[crit]" not in proxy.errors()


@pytest.fixture
def video(store_dir, sample_mp4) -> bytes:
    shutil.copyfile(sample_mp4, store_dir / "clip.mp4")
    return sample_mp4.read_bytes()


def test_the_service_only_points_nginx_at_the_file(nginx, video):
    direct = httpx.get(f"{nginx.service.url}/get_video_by_name/clip.mp4")
    assert direct.headers["x-accel-redirect"] == "/_video_files/clip.mp4"
    assert direct.content == b""


def test_nginx_sends_the_bytes_with_the_services_headers(nginx, video):
    response = httpx.get(f"{nginx.url}/get_video_by_name/clip.mp4")
    assert response.content == video
    assert response.headers["server"].startswith("nginx")
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline;")
    assert "x-accel-redirect" not in response.headers


def test_ranges_and_revalidation_are_answered_by_nginx(nginx, video):
    url = f"{nginx.url}/get_video_by_name/clip.mp4"
    part = httpx.get(url, headers={"range": "bytes=100-199"})
    assert (part.status_code, part.content) == (206, video[100:200])
    etag = part.headers["etag"]
    assert httpx.get(url, headers={"if-none-match": etag}).status_code == 304


def test_curl_resume_and_ffprobe_work_through_nginx(nginx, video, tmp_path):
    partial = tmp_path / "partial.mp4"
    partial.write_bytes(video[:1000])
    url = f"{nginx.url}/get_video_by_name/clip.mp4"
    subprocess.run(["curl", "-sS", "-C", "-", "-o", str(partial), url], check=True, timeout=60)
    assert partial.read_bytes() == video
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", url],
                           capture_output=True, check=True, timeout=60)
    assert {s["codec_name"] for s in json.loads(probe.stdout)["streams"]} == {"h264", "aac"}


def test_missing_and_escaping_names_are_refused_by_the_service(nginx):
    assert httpx.get(f"{nginx.url}/get_video_by_name/none.mp4").json() == {"detail": "no video with this name"}
    escaping = subprocess.run(["curl", "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}",
                               f"{nginx.url}/get_video_by_name/..%2F..%2Fetc%2Fpasswd"],
                              capture_output=True, text=True, check=True, timeout=30)
    assert escaping.stdout == "400"


def test_the_internal_location_is_not_reachable_from_outside(nginx, video):
    assert httpx.get(f"{nginx.url}/_video_files/clip.mp4").status_code == 404


def test_uploads_and_posters_go_through_nginx(nginx, sample_webm):
    created = httpx.post(f"{nginx.url}/video", files={"file": ("up.webm", sample_webm.read_bytes())}, timeout=60)
    assert created.status_code == 201
    body = created.json()
    assert body["video_url"] == f"{nginx.url}/get_video_by_name/up.webm"
    assert httpx.get(body["video_url"]).content == sample_webm.read_bytes()
    with httpx.Client(base_url=nginx.url, timeout=WAIT) as http:
        poster = httpx.get(processed(http, "up.webm")["poster_url"])
    assert poster.headers["content-type"] == "image/jpeg" and poster.content[:2] == b"\xff\xd8"


def test_hls_playlists_and_segments_go_through_nginx(nginx, sample_webm):
    with httpx.Client(base_url=nginx.url, timeout=WAIT) as http:
        http.post("/video", files={"file": ("adaptive.webm", sample_webm.read_bytes())})
        hls_url = processed(http, "adaptive.webm")["hls_url"]
        master = m3u8.loads(http.get(hls_url).text, uri=hls_url)
        rendition = m3u8.loads(http.get(master.playlists[0].absolute_uri).text, uri=master.playlists[0].absolute_uri)
        segment = http.get(rendition.segments[0].absolute_uri)
    assert hls_url.startswith(nginx.url)
    assert (segment.status_code, segment.headers["cache-control"]) == (200, "public, max-age=31536000, immutable")
    assert segment.content[4:8] in (b"styp", b"moof") and "x-accel-redirect" not in segment.headers
