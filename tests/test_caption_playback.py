"""Caption tracks where people watch: in the HLS stream (a SUBTITLES group read by the ``m3u8`` package, hls.js
and Chromium's own HLS player) and on the watch page (a ``<track>`` per language, and the form that adds one).

One real server with a one-rung ladder, so that renditions are quick to make.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import m3u8
import pytest
from playwright.sync_api import expect

from tests.helpers import upload
from tests.media import make_video
from tests.servers import ServerProcess

WAIT = 60
SECONDS = 6.0
GERMAN = "1\n00:00:01,000 --> 00:00:02,000\nGrüße, <b>Welt</b>\n\n2\n00:00:03,000 --> 00:00:05,000\nZweiter Satz\n"
FRENCH = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nBonjour <script>document.title='owned'</script>\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess({"VIDEO_STORAGE_DIR": str(tmp_path_factory.mktemp("caption-store")),
                            "VIDEO_RENDITION_LADDER": "240:400"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        yield client


@pytest.fixture(scope="module")
def video(http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A video with its renditions made and two caption tracks, German the default."""
    clip = make_video(tmp_path_factory.mktemp("caption-clip") / "talk.mp4", seconds=SECONDS)
    name = upload(http, clip, filename="talk.mp4").json()["name"]
    with http.stream("GET", f"/video/{name}/events") as events:
        for _ in events.iter_lines():
            pass
    for language, text, params in (("de", GERMAN, {"label": "Deutsch", "default": "true"}),
                                   ("fr", FRENCH, {"label": "Français"})):
        answer = http.put(f"/video/{name}/captions/{language}", content=text.encode(), params=params)
        assert answer.status_code == 201, answer.text
    described = http.get(f"/video/{name}").json()
    assert described["hls_url"], described
    return described


def _master(http: httpx.Client, video: dict) -> m3u8.M3U8:
    answer = http.get(video["hls_url"])
    assert answer.status_code == 200
    return m3u8.loads(answer.text, uri=video["hls_url"])


def test_the_master_playlist_offers_each_track_as_a_subtitles_rendition(http, video):
    subtitles = [media for media in _master(http, video).media if media.type == "SUBTITLES"]
    assert [(m.language, m.name, m.default, m.autoselect) for m in subtitles] == [
        ("de", "Deutsch", "YES", "YES"), ("fr", "Français", "NO", "YES")]


def test_every_variant_names_the_subtitles_group(http, video):
    master = _master(http, video)
    group = {media.group_id for media in master.media if media.type == "SUBTITLES"}
    assert [playlist.stream_info.subtitles for playlist in master.playlists] == [group.pop()] * len(master.playlists)


def test_a_subtitles_playlist_is_the_whole_track_as_one_segment(http, video):
    media = next(media for media in _master(http, video).media if media.language == "de")
    answer = http.get(media.absolute_uri)
    playlist = m3u8.loads(answer.text, uri=media.absolute_uri)
    assert answer.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert (playlist.playlist_type, playlist.is_endlist) == ("vod", True)
    assert [segment.absolute_uri for segment in playlist.segments] == [video["captions"][0]["url"]]
    assert playlist.segments[0].duration == pytest.approx(SECONDS, abs=0.1)
    assert playlist.target_duration >= playlist.segments[0].duration


def test_the_master_playlist_changes_its_etag_with_the_tracks(http, video):
    before = http.get(video["hls_url"]).headers["etag"]
    assert http.get(video["hls_url"], headers={"if-none-match": before}).status_code == 304
    http.put(f"/video/{video['name']}/captions/es", content=GERMAN.encode())
    try:
        assert http.get(video["hls_url"], headers={"if-none-match": before}).status_code == 200
    finally:
        http.delete(f"/video/{video['name']}/captions/es")
    assert http.get(video["hls_url"]).headers["etag"] == before


def test_a_subtitles_playlist_of_a_language_without_a_track_is_404(http, video):
    assert http.get(f"/video/{video['name']}/hls/subtitles/es.m3u8").status_code == 404


def _watch(page, server: ServerProcess, video: dict) -> None:
    page.goto(f"{server.url}/watch/{video['name']}")


def _watch_progressive(page, server: ServerProcess, video: dict) -> None:
    """The watch page with the HLS stream out of reach: it plays the progressive source, with its tracks."""
    page.route("**/hls/**", lambda route: route.abort())
    _watch(page, server, video)
    expect(page.locator("#player")).to_have_attribute("data-playback", "progressive")


def _text_tracks(page) -> list[list[str]]:
    return page.evaluate("() => Array.from(document.getElementById('player').textTracks,"
                         " (t) => [t.kind, t.language, t.label])")


def test_the_watch_page_has_a_track_element_per_language_the_default_marked(page, server, video):
    _watch_progressive(page, server, video)
    tracks = page.locator("#player track")
    expect(tracks).to_have_count(2)
    assert [(t.get_attribute("srclang"), t.get_attribute("label"), t.get_attribute("default"))
            for t in tracks.all()] == [("de", "Deutsch", ""), ("fr", "Français", None)]


def test_chromium_shows_the_active_cue_of_the_default_track_at_a_given_time(page, server, video):
    _watch_progressive(page, server, video)
    page.evaluate("() => { document.getElementById('player').currentTime = 3.5; }")
    page.wait_for_function("() => { const cues = document.getElementById('player').textTracks[0].activeCues;"
                           " return cues && cues.length === 1 && cues[0].text === 'Zweiter Satz'; }")


def test_markup_in_a_cue_stays_text_in_chromium(page, server, video):
    _watch_progressive(page, server, video)
    page.evaluate("() => { const v = document.getElementById('player'); v.textTracks[1].mode = 'hidden';"
                  " v.currentTime = 2; }")
    page.wait_for_function("() => { const cues = document.getElementById('player').textTracks[1].activeCues;"
                           " return cues && cues.length === 1; }")
    fragment = page.evaluate("() => { const cue = document.getElementById('player').textTracks[1].activeCues[0];"
                             " const f = cue.getCueAsHTML(); return [f.textContent, f.querySelectorAll('*').length]; }")
    assert fragment == ["Bonjour <script>document.title='owned'</script>", 0]
    assert page.title() != "owned"


def test_hls_js_lists_the_subtitle_tracks_of_the_stream_once_and_shows_the_default(page, server, video):
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    _watch(page, server, video)
    expect(page.locator("#player")).to_have_attribute("data-playback", "hls.js")
    expect(page.locator("#player track[src*='/captions/']")).to_have_count(0)  # the page's own: hls.js has them
    page.wait_for_function("() => document.getElementById('player').textTracks.length >= 2")
    assert _text_tracks(page) == [["subtitles", "de", "Deutsch"], ["subtitles", "fr", "Français"]]
    page.evaluate("() => { document.getElementById('player').currentTime = 3.5; }")
    page.wait_for_function("() => { const cues = document.getElementById('player').textTracks[0].activeCues;"
                           " return cues && cues.length === 1 && cues[0].text === 'Zweiter Satz'; }")
    assert refused == []  # the tracks hls.js makes are within the page's policy


def test_with_native_hls_the_page_s_tracks_are_listed_and_shown(page, server, video):
    page.route("**/static/vendor/hls.js/**", lambda route: route.abort())  # no hls.js: Chromium plays HLS itself
    _watch(page, server, video)
    expect(page.locator("#player")).to_have_attribute("data-playback", "native")
    assert _text_tracks(page) == [["subtitles", "de", "Deutsch"], ["subtitles", "fr", "Français"]]
    page.evaluate("() => { document.getElementById('player').currentTime = 1.5; }")
    page.wait_for_function("() => { const cues = document.getElementById('player').textTracks[0].activeCues;"
                           " return cues && cues.length === 1 && cues[0].text === 'Grüße, <b>Welt</b>'; }")


def _watched_upload(page, server: ServerProcess, http: httpx.Client, folder: Path, filename: str) -> str:
    """A new one-second video's watch page, its captions panel open; the video's name."""
    answer = upload(http, make_video(folder / filename, seconds=1.0), filename=filename)
    assert answer.status_code == 201, answer.text
    name = answer.json()["name"]
    _watch(page, server, {"name": name})
    page.locator("#caption-upload summary").click()
    return name


def _send_caption_file(page, file: dict, language: str, label: str = "") -> None:
    page.locator("#caption-file").set_input_files(file)
    page.locator("#caption-language").fill(language)
    page.locator("#caption-label").fill(label)
    page.locator("#caption-form button[type=submit]").click()


def _languages(http: httpx.Client, name: str) -> list[str]:
    return [track["language"] for track in http.get(f"/video/{name}/captions").json()["captions"]]


def test_a_writer_adds_captions_from_the_watch_page(page, server, http, tmp_path):
    name = _watched_upload(page, server, http, tmp_path, "form.mp4")
    _send_caption_file(page, {"name": "talk.it.srt", "mimeType": "application/x-subrip", "buffer": GERMAN.encode()},
                       "it", "Italiano")
    expect(page.locator("#player track[srclang='it']")).to_have_attribute("label", "Italiano")
    assert _languages(http, name) == ["it"]


def test_a_refused_caption_file_is_explained_on_the_watch_page(page, server, http, tmp_path):
    _watched_upload(page, server, http, tmp_path, "refused.mp4")
    _send_caption_file(page, {"name": "notes.srt", "mimeType": "text/plain", "buffer": b"not captions at all\n"}, "en")
    expect(page.locator("#watch-status")).to_have_text(
        "Could not change the captions: not captions: line 1: expected a cue timing such as 00:00:01.000 --> 00:00:02.500")


def test_a_writer_removes_captions_from_the_watch_page(page, server, http, tmp_path):
    name = _watched_upload(page, server, http, tmp_path, "removed.mp4")
    for language in ("en", "fr"):
        http.put(f"/video/{name}/captions/{language}", content=GERMAN.encode())
    page.reload()
    page.locator("#caption-upload summary").click()
    page.locator("#caption-tracks button[data-language='en']").click()
    expect(page.locator("#caption-tracks li")).to_have_count(1)
    expect(page.locator("#caption-tracks li")).to_contain_text("(fr)")
    assert _languages(http, name) == ["fr"]


def test_without_javascript_the_caption_form_stays_hidden(http, video):
    page = http.get(f"/watch/{video['name']}").text
    assert '<details id="caption-upload" class="caption-upload" hidden>' in page
