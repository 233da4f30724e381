"""Renditions: every upload becomes an HLS ladder (and a web MP4 when it does not play as it is), served like
the video itself, read by parsers and players nobody here wrote (the ``m3u8`` package, ffprobe)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import re

import av
import httpx
import m3u8
import pytest
from playwright.sync_api import expect

from tests.browser import BROWSER_WAIT_MS
from tests.helpers import upload
from tests.media import make_audio, make_offset_ts, make_rotated, make_video
from tests.servers import ServerProcess

RENDITION_WAIT = 120  # seconds for the renditions of all the sources below, made one after another
SOURCES = {
    "phone.mov": {"video_codec": "libx265"},
    "old.avi": {"video_codec": "mpeg4", "audio_codec": "libmp3lame"},
    "vp9.webm": {"video_codec": "libvpx-vp9", "audio_codec": "libopus"},
    "one-second.mp4": {"seconds": 1.0},
    "odd.webm": {"width": 853, "height": 479, "video_codec": "libvpx-vp9", "audio_codec": "libopus"},
}
PORTRAIT = "portrait.mp4"
LADDER = "ladder.mp4"  # long and large enough for a player to choose among renditions
SOUND = "song.m4a"
BROADCAST = "camera.ts"  # a clock that starts seconds in
NEEDS_WEB = {"phone.mov", "old.avi", BROADCAST}
IMMUTABLE = "public, max-age=31536000, immutable"
THROTTLED_BYTES_PER_SECOND = 100_000  # 800 kbit/s: under the 720p rendition's bitrate, over the 240p one's


def _sources(folder: Path) -> dict[str, Path]:
    made = {name: make_video(folder / name, **{"seconds": 2.0, **options}) for name, options in SOURCES.items()}
    landscape = make_video(folder / "landscape.mp4", seconds=1.0, width=1920, height=1080, rate=25)
    made[PORTRAIT] = make_rotated(landscape, folder / PORTRAIT, 90)
    made[LADDER] = make_video(folder / LADDER, seconds=12.0, width=1280, height=720, rate=25)
    made[SOUND] = make_audio(folder / SOUND, seconds=2.0)
    made[BROADCAST] = make_offset_ts(folder / BROADCAST)
    return made


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _sources(tmp_path_factory.mktemp("rendition-sources"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One service as ``make run`` starts it, with its default ladder."""
    server = ServerProcess({"VIDEO_STORAGE_DIR": str(tmp_path_factory.mktemp("rendition-store"))})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=RENDITION_WAIT) as client:
        yield client


@pytest.fixture(scope="module")
def described(http: httpx.Client, sources: dict[str, Path]) -> dict[str, dict]:
    """Each source uploaded, and its description once its work has ended."""
    names = {name: upload(http, path, filename=name).json()["name"] for name, path in sources.items()}
    return {name: _finished(http, stored) for name, stored in names.items()}


def _finished(http: httpx.Client, name: str) -> dict:
    with http.stream("GET", f"/video/{name}/events") as events:
        for _ in events.iter_lines():
            pass
    return http.get(f"/video/{name}").json()


def _playlist(http: httpx.Client, url: str) -> m3u8.M3U8:
    response = http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    return m3u8.loads(response.text, uri=url)


def _ffprobe(*arguments: str) -> dict:
    done = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *arguments], capture_output=True, text=True,
                          timeout=RENDITION_WAIT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


ALL = sorted([*SOURCES, PORTRAIT, BROADCAST])  # the ladder's clip is left to the browser's tests, the sound to its own


@pytest.mark.parametrize("source", ALL)
def test_every_source_becomes_ready_with_an_hls_ladder(described, source):
    video = described[source]
    assert (video["status"], video["status_reason"]) == ("ready", None)
    assert video["hls_url"].endswith("/hls/master.m3u8")
    assert video["renditions"]


@pytest.mark.parametrize("source", ALL)
def test_a_web_mp4_is_made_only_of_what_browsers_do_not_play(described, source):
    assert (described[source]["web_url"] is not None) == (source in NEEDS_WEB)


@pytest.mark.parametrize("source", sorted(NEEDS_WEB))
def test_the_web_mp4_is_h264_and_aac_with_its_index_first(http, described, source, tmp_path):
    web = tmp_path / "web.mp4"
    web.write_bytes(http.get(described[source]["web_url"]).content)
    streams = _ffprobe("-show_entries", "stream=codec_name,profile,pix_fmt", str(web))["streams"]
    assert [(s["codec_name"], s.get("pix_fmt")) for s in streams] == [("h264", "yuv420p"), ("aac", None)]
    assert web.read_bytes().find(b"moov") < web.read_bytes().find(b"mdat")


@pytest.mark.parametrize("source", ALL)
def test_the_master_playlist_lists_every_rendition_with_its_attributes(http, described, source):
    video = described[source]
    master = _playlist(http, video["hls_url"])
    assert master.is_variant and master.is_independent_segments
    listed = [(p.stream_info.resolution, p.stream_info.bandwidth, p.stream_info.average_bandwidth,
               p.stream_info.codecs, p.stream_info.frame_rate) for p in master.playlists]
    described_ones = [((r["width"], r["height"]), r["bandwidth"], r["average_bandwidth"], r["codecs"],
                       r["frame_rate"]) for r in video["renditions"]]
    assert listed == described_ones
    assert [media.type for media in master.media] == ["AUDIO"]


@pytest.mark.parametrize("source", ALL)
def test_every_rendition_playlist_is_a_complete_vod_playlist_of_fmp4_segments(http, described, source):
    for rendition in described[source]["renditions"]:
        playlist = _playlist(http, rendition["url"])
        assert playlist.is_endlist and playlist.playlist_type == "vod" and playlist.segment_map
        assert all(round(segment.duration) <= playlist.target_duration for segment in playlist.segments)


@pytest.mark.parametrize("source", ALL)
def test_renditions_are_cut_at_the_same_instants(http, described, source):
    """Keyframes aligned: a player may switch renditions at any segment."""
    cuts = {tuple(segment.duration for segment in _playlist(http, r["url"]).segments)
            for r in described[source]["renditions"]}
    assert len(cuts) == 1


def test_a_sound_recording_gets_an_audio_only_playlist(http, described):
    sound = described[SOUND]
    assert (sound["status"], sound["renditions"], sound["web_url"]) == ("ready", [], None)
    master = _playlist(http, sound["hls_url"])
    [only] = master.playlists
    assert (only.stream_info.codecs, only.stream_info.resolution, master.media) == ("mp4a.40.2", None, [])
    audio = _playlist(http, only.absolute_uri)
    assert audio.is_endlist and audio.segment_map and audio.segments
    duration = float(_ffprobe("-show_entries", "format=duration", sound["hls_url"])["format"]["duration"])
    assert duration == pytest.approx(sound["duration"], abs=0.25)


def test_chromium_plays_a_sound_recordings_playlist_to_the_end(page, server, described):
    _watch(page, server, described[SOUND]["name"])
    expect(page.locator("#player")).to_have_attribute("data-playback", "hls.js")
    _play_to_end(page)


def test_the_ladder_never_scales_a_video_up(described):
    sizes = [(r["width"], r["height"]) for r in described["odd.webm"]["renditions"]]
    assert sizes == [(426, 240), (640, 360), (852, 478)]
    assert max(r["height"] for r in described["one-second.mp4"]["renditions"]) == 240


@pytest.mark.parametrize("source", ALL)
def test_the_codecs_attribute_says_what_the_segments_hold(http, described, source, tmp_path):
    for rendition in described[source]["renditions"]:
        playlist = _playlist(http, rendition["url"])
        joined = tmp_path / "joined.mp4"
        joined.write_bytes(http.get(playlist.segment_map[0].absolute_uri).content
                           + http.get(playlist.segments[0].absolute_uri).content)
        [stream] = _ffprobe("-show_entries", "stream=codec_tag_string,profile,level", str(joined))["streams"]
        video_codec = rendition["codecs"].split(",")[0]
        profile_idc = {"Constrained Baseline": 66, "Main": 77, "High": 100}[stream["profile"]]
        assert (video_codec[:5], video_codec[5:7], video_codec[9:]) == (
            stream["codec_tag_string"] + ".", f"{profile_idc:02x}", f"{stream['level']:02x}")


@pytest.mark.parametrize("source", ALL)
def test_ffprobe_reads_the_hls_stream_whole(described, source):
    duration = float(_ffprobe("-show_entries", "format=duration", described[source]["hls_url"])
                     ["format"]["duration"])
    assert duration == pytest.approx(described[source]["duration"], abs=0.25)


def test_pictures_and_sound_start_together_whatever_clock_the_source_keeps(http, described, tmp_path):
    master = _playlist(http, described[BROADCAST]["hls_url"])
    starts = []
    for uri in (master.playlists[0].absolute_uri, master.media[0].absolute_uri):
        playlist = _playlist(http, uri)
        first = tmp_path / "first.mp4"
        first.write_bytes(http.get(playlist.segment_map[0].absolute_uri).content
                          + http.get(playlist.segments[0].absolute_uri).content)
        starts.append(float(_ffprobe("-show_entries", "stream=start_time", str(first))["streams"][0]["start_time"]))
    assert starts[0] == pytest.approx(starts[1], abs=0.15)


def test_a_portrait_video_with_rotation_comes_out_upright(http, described, sources, tmp_path):
    video = described[PORTRAIT]
    assert all(r["height"] > r["width"] for r in video["renditions"])
    top = video["renditions"][-1]["url"]
    made = _gray_picture(top, tmp_path / "made.png")
    assert made == pytest.approx(_gray_picture(str(sources[PORTRAIT]), tmp_path / "shown.png", (1080, 1920)), abs=12)


def _gray_picture(url: str, png: Path, size: tuple[int, int] | None = None) -> list[float]:
    """The first picture as ffmpeg shows it (turned as its metadata says), averaged over a 4x4 grid."""
    scale = ["-vf", f"scale={size[0]}:{size[1]}"] if size else []
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", url, "-frames:v", "1", *scale, "-pix_fmt", "gray",
                    str(png)], check=True, timeout=RENDITION_WAIT)
    with av.open(str(png)) as picture:
        pixels = next(picture.decode(video=0)).to_ndarray().astype(float)
    rows, columns = pixels.shape
    return [float(pixels[r * rows // 4:(r + 1) * rows // 4, c * columns // 4:(c + 1) * columns // 4].mean())
            for r in range(4) for c in range(4)]


@pytest.mark.parametrize("source", ["phone.mov"])
def test_segments_are_cached_for_good_and_playlists_revalidated(http, described, source):
    video = described[source]
    playlist = _playlist(http, video["renditions"][0]["url"])
    assert http.get(playlist.segments[0].absolute_uri).headers["cache-control"] == IMMUTABLE
    assert http.get(playlist.segment_map[0].absolute_uri).headers["cache-control"] == IMMUTABLE
    assert http.get(video["web_url"]).headers["cache-control"] == IMMUTABLE
    assert "no-cache" in http.get(video["hls_url"]).headers["cache-control"]
    assert "no-cache" in http.get(video["renditions"][0]["url"]).headers["cache-control"]


def test_segments_answer_ranges_and_revalidation_like_videos(http, described):
    segment = _playlist(http, described["phone.mov"]["renditions"][0]["url"]).segments[0].absolute_uri
    whole = http.get(segment)
    part = http.get(segment, headers={"Range": "bytes=0-99"})
    assert (part.status_code, part.content) == (206, whole.content[:100])
    assert http.get(segment, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304


@pytest.mark.parametrize("path", ["hls/..%2F..%2Fphone.mov", "hls/master.m3u9", "hls/0123456789abcdef/v1/x.ts",
                                  "web/phone.mov"])
def test_only_files_made_from_a_video_are_served_beside_it(http, described, path):
    assert http.get(f"/video/phone.mov/{path}").status_code == 404


# --- in Chromium -------------------------------------------------------------------------------------------

def _watch(page, server: ServerProcess, name: str) -> None:
    page.goto(f"{server.url}/watch/{name}")


def _play_to_end(page, rate: float = 2.0, timeout_ms: float = BROWSER_WAIT_MS) -> None:
    """Play the page's video muted at ``rate``, and wait until it has ended.

    ``play()``'s promise is not awaited (it may wait for data as long as it likes): the wait is for
    ``ended``, bounded by ``timeout_ms``.
    """
    page.evaluate("rate => { const v = document.getElementById('player'); v.muted = true; v.playbackRate = rate;"
                  " v.play().catch(() => {}); }", rate)
    page.wait_for_function("() => document.getElementById('player').ended", timeout=timeout_ms)


@pytest.mark.parametrize("source", ALL)
def test_chromium_plays_the_hls_ladder_to_the_end(page, server, described, source):
    _watch(page, server, described[source]["name"])
    expect(page.locator("#player")).to_have_attribute("data-playback", "hls.js")
    _play_to_end(page)


@pytest.mark.parametrize("source", ALL)
def test_chromium_falls_back_to_the_progressive_source_and_plays_it_to_the_end(page, server, described, source):
    page.route("**/hls/**", lambda route: route.abort())
    _watch(page, server, described[source]["name"])
    expect(page.locator("#player")).to_have_attribute("data-playback", "progressive")
    _play_to_end(page)
    expected = described[source]["web_url"] or described[source]["video_url"]
    assert page.evaluate("() => document.getElementById('player').currentSrc") == expected


def test_the_quality_menu_offers_auto_and_each_rendition(page, server, described):
    _watch(page, server, described[LADDER]["name"])
    menu = page.locator("#quality option")
    expect(menu).to_have_count(5)
    assert menu.all_text_contents()[1:] == ["240p", "360p", "480p", "720p"]


def _settled_rendition(page, server: ServerProcess, name: str) -> int:
    """The rendition hls.js plays last when the video has played to its end, at its own pace (faster would
    ask more of a throttled network than the video's own bitrate)."""
    _watch(page, server, name)
    expect(page.locator("#quality")).to_have_attribute("data-playing", re.compile("[0-9]"))
    _play_to_end(page, rate=1.0, timeout_ms=3 * BROWSER_WAIT_MS)
    return int(page.locator("#quality").get_attribute("data-playing"))


def test_a_throttled_player_settles_on_a_lower_rendition(chromium, server, described):
    name = described[LADDER]["name"]
    fast = chromium.new_page()
    slow_context = chromium.new_context()
    slow = slow_context.new_page()
    network = slow_context.new_cdp_session(slow)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", {"offline": False, "latency": 40,
                                                      "downloadThroughput": THROTTLED_BYTES_PER_SECOND,
                                                      "uploadThroughput": THROTTLED_BYTES_PER_SECOND})
    try:
        assert _settled_rendition(slow, server, name) < _settled_rendition(fast, server, name)
    finally:
        fast.close()
        slow_context.close()
