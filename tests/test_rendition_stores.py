"""Renditions and storyboards kept in either store (local disk, a real SeaweedFS): published whole, replaced and
removed with their video, served through each delivery, and a job killed mid-way leaving nothing half-made
visible."""

from __future__ import annotations

from pathlib import Path

import httpx
import m3u8
import pytest

from tests.helpers import job_state, processed, put, upload, wait_for
from tests.media import make_video
from tests.thumbnails import parse_track

RENDITION_WAIT = 60


@pytest.fixture(scope="module")
def first_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("clips") / "first.mov", seconds=2.0, video_codec="libx265")


@pytest.fixture(scope="module")
def second_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("clips") / "second.mp4", seconds=3.0, width=480, height=360)


def _segments(http: httpx.Client, hls_url: str) -> list[str]:
    """Every URL the master playlist leads to: rendition playlists, init and media segments."""
    master = m3u8.loads(http.get(hls_url).text, uri=hls_url)
    urls = []
    for playlist_uri in [p.absolute_uri for p in master.playlists] + [m.absolute_uri for m in master.media]:
        playlist = m3u8.loads(http.get(playlist_uri).text, uri=playlist_uri)
        urls += [playlist_uri, playlist.segment_map[0].absolute_uri] + [s.absolute_uri for s in playlist.segments]
    return urls


def _sprites(http: httpx.Client, storyboard_url: str) -> list[str]:
    """Every sprite a storyboard's track names."""
    track = http.get(storyboard_url)
    assert track.status_code == 200
    return sorted({cue.sprite for cue in parse_track(track.text, storyboard_url)})


def _ready(http: httpx.Client, name: str) -> dict:
    described = processed(http, name)
    assert (described["status"], described["status_reason"]) == ("ready", None)
    return described


@pytest.fixture
def service(start_service):
    with httpx.Client(base_url=start_service().url, timeout=RENDITION_WAIT, follow_redirects=True) as http:
        yield http


def test_renditions_are_kept_and_served_by_either_store(service, first_clip):
    described = _ready(service, upload(service, first_clip, filename="first.mov").json()["name"])
    assert all(service.get(url).status_code == 200 for url in _segments(service, described["hls_url"]))
    assert service.get(described["web_url"]).content[4:8] == b"ftyp"


def test_a_replaced_video_gets_new_renditions_and_the_old_ones_go(service, first_clip, second_clip):
    before = _ready(service, upload(service, first_clip, filename="clip.mov").json()["name"])
    old = _segments(service, before["hls_url"])
    assert put(service, "clip.mov", second_clip).status_code == 200
    after = _ready(service, "clip.mov")
    assert (after["width"], after["web_url"]) == (480, None)
    assert all(service.get(url).status_code == 200 for url in _segments(service, after["hls_url"]))
    assert [service.get(url).status_code for url in old] == [404] * len(old)


def test_a_deleted_video_takes_its_renditions_along(service, first_clip):
    described = _ready(service, upload(service, first_clip, filename="gone.mov").json()["name"])
    made = _segments(service, described["hls_url"]) + [described["hls_url"], described["web_url"]]
    assert service.delete("/video/gone.mov").status_code == 204
    assert [service.get(url).status_code for url in made] == [404] * len(made)


def test_a_storyboard_is_kept_and_served_by_either_store_and_goes_with_its_video(service, second_clip):
    described = _ready(service, upload(service, second_clip, filename="board.mp4").json()["name"])
    sprites = _sprites(service, described["storyboard_url"])
    assert [service.get(url).headers["content-type"] for url in sprites] == ["image/jpeg"] * len(sprites)
    assert service.delete("/video/board.mp4").status_code == 204
    made = [described["storyboard_url"], *sprites]
    assert [service.get(url).status_code for url in made] == [404] * len(made)


def test_until_the_new_renditions_are_made_a_replaced_video_has_none(start_service, first_clip, second_clip):
    server = start_service()
    with httpx.Client(base_url=server.url, timeout=RENDITION_WAIT) as http:
        _ready(http, upload(http, first_clip, filename="clip.mov").json()["name"])
    server.stop()
    quiet = start_service(VIDEO_EMBEDDED_WORKERS="0")
    with httpx.Client(base_url=quiet.url, timeout=RENDITION_WAIT) as http:
        replaced = put(http, "clip.mov", second_clip).json()
        assert (replaced["status"], replaced["hls_url"], replaced["renditions"]) == ("processing", None, [])
        assert http.get("/video/clip.mov/hls/master.m3u8").status_code == 404


def test_redirect_delivery_redirects_segments_and_serves_playlists_itself(start_server, seaweed, tmp_path,
                                                                          first_clip):
    server = start_server(**seaweed.env("videos", tmp_path.name), VIDEO_STAGING_DIR=str(tmp_path / "staging"),
                          VIDEO_DELIVERY="redirect")
    with httpx.Client(base_url=server.url, timeout=RENDITION_WAIT) as http:
        described = _ready(http, upload(http, first_clip, filename="first.mov").json()["name"])
        urls = _segments(http, described["hls_url"])
        answers = {url: http.get(url) for url in urls}
    for url, answer in answers.items():
        expected = 200 if url.endswith(".m3u8") else 307
        assert answer.status_code == expected, url
        if expected == 307:
            assert answer.headers["location"].startswith(seaweed.endpoint)
            assert httpx.get(answer.headers["location"]).status_code == 200


def test_redirect_delivery_redirects_sprites_and_serves_the_track_itself(start_server, seaweed, tmp_path,
                                                                        second_clip):
    server = start_server(**seaweed.env("videos", tmp_path.name), VIDEO_STAGING_DIR=str(tmp_path / "staging"),
                          VIDEO_DELIVERY="redirect", VIDEO_RENDITION_LADDER="")
    with httpx.Client(base_url=server.url, timeout=RENDITION_WAIT) as http:
        described = _ready(http, upload(http, second_clip, filename="board.mp4").json()["name"])
        assert http.get(described["storyboard_url"]).status_code == 200
        redirects = [http.get(url) for url in _sprites(http, described["storyboard_url"])]
    assert [answer.status_code for answer in redirects] == [307] * len(redirects)
    for answer in redirects:
        assert answer.headers["location"].startswith(seaweed.endpoint)
        assert httpx.get(answer.headers["location"]).headers["content-type"] == "image/jpeg"


def test_a_rendition_job_killed_mid_way_leaves_nothing_visible_and_is_done_again(start_server, start_worker,
                                                                                 store_dir, tmp_path):
    database = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    settings = {"VIDEO_DATABASE_URL": database, "VIDEO_JOB_LEASE_SECONDS": "2", "VIDEO_RENDITION_THREADS": "1"}
    long_clip = make_video(tmp_path / "long.mp4", seconds=20.0, width=640, height=360)
    server = start_server(VIDEO_EMBEDDED_WORKERS="0", **settings)
    with httpx.Client(base_url=server.url, timeout=RENDITION_WAIT) as http:
        name = upload(http, long_clip).json()["name"]
        doomed = start_worker(**settings)
        assert wait_for(lambda: _made_some(store_dir), timeout=RENDITION_WAIT), "no segment was ever made"
        doomed.kill()
        assert job_state(database, name, "renditions") == ("running", 1), "the job ended before the kill"
        assert http.get(f"/video/{name}").json()["hls_url"] is None
        assert http.get(f"/video/{name}/hls/master.m3u8").status_code == 404
        start_worker(**settings)
        described = _ready(http, name)
        urls = _segments(http, described["hls_url"])
    assert all(httpx.get(url).status_code == 200 for url in urls)
    assert job_state(database, name, "renditions") == ("done", 2)
    assert list((store_dir / ".staging").iterdir()) == []


def _made_some(store: Path) -> bool:
    """Whether a worker has written a media segment into its staging folder."""
    return any((store / ".staging").glob("*.d/hls/*/*/1.m4s"))
