"""Storyboards (seek previews): every video with pictures gets JPEG sprite sheets and a WebVTT thumbnails track,
served like the video itself, and the watch page shows the preview over its seek bar.

One server for the module, with renditions off (``VIDEO_RENDITION_LADDER=``): the storyboard is all these
tests look at, and the module stays quick. Durations come from ``GET /video/{name}`` (the probe's).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.helpers import jpeg_size, processed, put, upload
from tests.thumbnails import VERSIONED, Cue, parse_track
from tests.media import make_audio, make_rotated, make_video
from tests.servers import ServerProcess

WAIT = 120
IMMUTABLE = "public, max-age=31536000, immutable"
CLIP = "clip.mp4"  # 12 s: a tile a second
SHORT = "one-second.mp4"
PORTRAIT = "portrait.mp4"
LONG = "long.mp4"  # 200 s: about 150 tiles, 1.334 s apart
SOUND = "song.m4a"
PICTURES = (CLIP, SHORT, PORTRAIT, LONG)
def _sources(folder: Path) -> dict[str, Path]:
    landscape = make_video(folder / "landscape.mp4", seconds=2.0, width=640, height=360)
    return {
        CLIP: make_video(folder / CLIP, seconds=12.0),
        SHORT: make_video(folder / SHORT, seconds=1.0),
        PORTRAIT: make_rotated(landscape, folder / PORTRAIT, 90),
        LONG: make_video(folder / LONG, seconds=200.0, width=96, height=64, rate=5, audio_codec=None),
        SOUND: make_audio(folder / SOUND, seconds=2.0),
    }


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _sources(tmp_path_factory.mktemp("storyboard-sources"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storyboard-store")


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[ServerProcess]:
    """The service with its default storyboards, and renditions off."""
    server = ServerProcess({"VIDEO_STORAGE_DIR": str(store), "VIDEO_RENDITION_LADDER": ""})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        yield client


@pytest.fixture(scope="module")
def described(http: httpx.Client, sources: dict[str, Path]) -> dict[str, dict]:
    """Each source uploaded, and its description once its work has ended."""
    names = {name: upload(http, path, filename=name).json()["name"] for name, path in sources.items()}
    return {name: processed(http, stored) for name, stored in names.items()}


def _version(sprite: str) -> str:
    """The storyboard version a sprite's URL names."""
    return re.search(r"/storyboard/([0-9a-f]{16})/[0-9]+\.jpg$", sprite).group(1)


def _track(http: httpx.Client, video: dict) -> list[Cue]:
    response = http.get(video["storyboard_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] in {"text/vtt", "text/vtt; charset=utf-8"}
    return parse_track(response.text, video["storyboard_url"])


@pytest.fixture(scope="module")
def tracks(http: httpx.Client, described: dict[str, dict]) -> dict[str, list[Cue]]:
    return {name: _track(http, described[name]) for name in PICTURES}


@pytest.mark.parametrize("source", PICTURES)
def test_a_video_with_pictures_lists_its_storyboard_once_ready(described, source):
    video = described[source]
    assert (video["status"], video["status_reason"]) == ("ready", None)
    assert video["storyboard_url"].endswith(f"/video/{video['name']}/storyboard.vtt")


def test_a_sound_recording_gets_no_storyboard(http, described):
    assert described[SOUND]["storyboard_url"] is None
    assert http.get(f"/video/{described[SOUND]['name']}/storyboard.vtt").status_code == 404


@pytest.mark.parametrize("source", PICTURES)
def test_the_cues_run_from_0_to_the_duration_end_to_end(described, tracks, source):
    cues = tracks[source]
    assert cues[0].start_ms == 0
    assert all(before.end_ms == after.start_ms for before, after in zip(cues, cues[1:]))
    assert all(cue.end_ms > cue.start_ms for cue in cues)
    assert cues[-1].end_ms == round(described[source]["duration"] * 1000)


@pytest.mark.parametrize(("source", "tiles", "interval_ms"), [(CLIP, 12, 1000), (SHORT, 1, 1000), (LONG, 150, 1334)])
def test_the_interval_aims_at_150_tiles_at_least_a_second_apart(tracks, source, tiles, interval_ms):
    cues = tracks[source]
    assert len(cues) == tiles
    assert {cue.end_ms - cue.start_ms for cue in cues[:-1]} <= {interval_ms}


def test_sprites_hold_at_most_10_by_10_tiles(tracks):
    sprites = {cue.sprite for cue in tracks[LONG]}
    assert len(sprites) == 2
    assert all(sum(cue.sprite == sprite for cue in tracks[LONG]) <= 100 for sprite in sprites)


@pytest.mark.parametrize("source", PICTURES)
def test_each_sprite_is_a_jpeg_of_the_size_its_tiles_imply(http, tracks, source):
    for sprite in {cue.sprite for cue in tracks[source]}:
        tiles = [cue for cue in tracks[source] if cue.sprite == sprite]
        response = http.get(sprite)
        assert (response.status_code, response.headers["content-type"]) == (200, "image/jpeg")
        assert jpeg_size(response.content) == (max(c.x + c.width for c in tiles), max(c.y + c.height for c in tiles))


@pytest.mark.parametrize("source", PICTURES)
def test_tiles_do_not_overlap_and_are_of_one_even_size(tracks, source):
    cues = tracks[source]
    assert len({(cue.sprite, cue.x, cue.y) for cue in cues}) == len(cues)
    assert len({(cue.width, cue.height) for cue in cues}) == 1
    assert cues[0].width % 2 == cues[0].height % 2 == 0


def test_tiles_are_160_pixels_wide_in_the_pictures_aspect(tracks):
    assert (tracks[CLIP][0].width, tracks[CLIP][0].height) == (160, 120)


def test_a_portrait_videos_tiles_are_upright(tracks):
    assert (tracks[PORTRAIT][0].width, tracks[PORTRAIT][0].height) == (160, 284)


def test_sprites_are_cached_for_good_and_the_track_is_revalidated(http, described, tracks):
    assert http.get(tracks[CLIP][0].sprite).headers["cache-control"] == IMMUTABLE
    assert http.get(described[CLIP]["storyboard_url"]).headers["cache-control"] == "public, no-cache"


def test_a_sprite_answers_ranges_and_not_modified(http, tracks):
    sprite = tracks[CLIP][0].sprite
    whole = http.get(sprite)
    part = http.get(sprite, headers={"Range": "bytes=0-99"})
    assert (part.status_code, part.content) == (206, whole.content[:100])
    assert http.get(sprite, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
    head = http.head(sprite)
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(whole.content)))


@pytest.mark.parametrize("path", ["storyboard/0123456789abcdef/0.png", "storyboard/0123456789abcdef/0.jpg",
                                  "storyboard/0123/0.jpg", "storyboard/{version}/storyboard.vtt",
                                  "storyboard/{version}/..%2F..%2Fclip.mp4.json", "storyboard.json"])
def test_a_path_that_is_not_a_storyboard_file_is_404(http, described, tracks, path):
    version = _version(tracks[CLIP][0].sprite)
    response = http.get(f"/video/{described[CLIP]['name']}/{path.format(version=version)}")
    assert response.status_code == 404


def test_a_replaced_video_gets_a_new_storyboard_and_its_old_sprites_go(http, sources, store):
    name = upload(http, sources[CLIP], filename="replaced.mp4").json()["name"]
    old = _track(http, processed(http, name))
    assert put(http, name, sources[SHORT]).status_code == 200
    new = _track(http, processed(http, name))
    assert len(new) == 1 and new[0].sprite != old[0].sprite
    assert http.get(old[0].sprite).status_code == 404
    assert http.get(new[0].sprite).status_code == 200
    folder = store / ".library" / "renditions" / name / "storyboard"
    assert [path.name for path in folder.iterdir()] == [_version(new[0].sprite)]


def test_a_deleted_video_takes_its_storyboard_along(http, sources, store):
    video = processed(http, upload(http, sources[SHORT], filename="deleted.mp4").json()["name"])
    sprite = _track(http, video)[0].sprite
    assert http.delete(f"/video/{video['name']}").status_code == 204
    assert http.get(video["storyboard_url"]).status_code == 404
    assert http.get(sprite).status_code == 404
    assert not (store / ".library" / "renditions" / video["name"]).exists()


# --- the watch page, in Chromium ---------------------------------------------------------------------------

RECORD_POLICY_VIOLATIONS = """
window.policyViolations = [];
document.addEventListener("securitypolicyviolation", event => window.policyViolations.push(event.violatedDirective));
"""


def _hover(page, fraction: float) -> None:
    """Move the pointer over the seek bar, ``fraction`` of the way along it."""
    bar = page.locator("#seek-bar")
    expect(bar).to_be_visible()
    box = bar.bounding_box()
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)


def _expect_tile(preview, cue: Cue) -> None:
    expect(preview).to_have_css("background-image", f'url("{cue.sprite}")')
    expect(preview).to_have_css("background-position", f"{-cue.x}px {-cue.y}px")
    expect(preview).to_have_css("width", f"{cue.width}px")
    expect(preview).to_have_css("height", f"{cue.height}px")


def test_hovering_the_seek_bar_shows_the_tile_and_time_under_the_pointer(page, server, described, tracks):
    page.goto(f"{server.url}/watch/{described[CLIP]['name']}")
    _hover(page, 0.55)  # 6.6 s of 12: the tile of 6 s to 7 s
    preview = page.locator("#seek-preview")
    expect(preview).to_be_visible()
    expect(page.locator("#seek-time")).to_have_text("0:06")
    _expect_tile(preview, tracks[CLIP][6])


def test_leaving_the_seek_bar_hides_the_preview(page, server, described, tracks):
    page.goto(f"{server.url}/watch/{described[CLIP]['name']}")
    _hover(page, 0.3)
    expect(page.locator("#seek-preview")).to_be_visible()
    page.mouse.move(0, 0)
    expect(page.locator("#seek-preview")).to_be_hidden()


def test_dragging_along_the_seek_bar_shows_the_tile_and_time_under_the_pointer(page, server, described, tracks):
    page.goto(f"{server.url}/watch/{described[CLIP]['name']}")
    _hover(page, 0.2)
    page.mouse.down()
    _hover(page, 0.8)  # 9.6 s of 12: the tile of 9 s to 10 s
    expect(page.locator("#seek-time")).to_have_text("0:09")
    _expect_tile(page.locator("#seek-preview"), tracks[CLIP][9])
    page.mouse.up()


def test_moving_the_seek_bar_with_the_keyboard_seeks_and_shows_the_new_time(page, server, described, tracks):
    page.goto(f"{server.url}/watch/{described[CLIP]['name']}")
    bar = page.locator("#seek-bar")
    expect(bar).to_be_visible()
    bar.focus()
    page.keyboard.press("ArrowRight")  # 5 s on
    expect(page.locator("#seek-preview")).to_be_visible()
    expect(page.locator("#seek-time")).to_have_text("0:05")
    _expect_tile(page.locator("#seek-preview"), tracks[CLIP][5])
    expect(bar).to_have_value("5")


def test_a_portrait_videos_preview_is_upright(page, server, described, tracks):
    page.goto(f"{server.url}/watch/{described[PORTRAIT]['name']}")
    _hover(page, 0.1)
    _expect_tile(page.locator("#seek-preview"), tracks[PORTRAIT][0])


def test_the_previews_keep_to_the_pages_content_security_policy(page, server, described):
    page.add_init_script(RECORD_POLICY_VIOLATIONS)
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    page.goto(f"{server.url}/watch/{described[CLIP]['name']}")
    _hover(page, 0.5)
    expect(page.locator("#seek-preview")).to_be_visible()
    page.wait_for_function("() => performance.getEntriesByType('resource').some("
                           "entry => /\\/storyboard\\/[0-9a-f]{16}\\/0\\.jpg$/.test(entry.name))")
    assert page.evaluate("window.policyViolations") == []
    assert refused == []


@pytest.fixture
def page_without_scripts(chromium):
    context = chromium.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_without_javascript_the_seek_bar_stays_hidden_and_the_video_plays_as_before(page_without_scripts, server,
                                                                                   described):
    page = page_without_scripts
    page.goto(f"{server.url}/watch/{described[CLIP]['name']}")
    expect(page.locator("#player")).to_be_visible()
    expect(page.locator("#seek-bar")).to_be_hidden()
    expect(page.locator("#player source")).to_have_attribute("src", described[CLIP]["video_url"])


def test_a_storyboard_made_while_the_page_is_open_is_previewed_without_a_reload(page, start_server, start_worker,
                                                                                sources):
    quiet = {"VIDEO_RENDITION_LADDER": ""}
    server = start_server(VIDEO_EMBEDDED_WORKERS="0", **quiet)  # nothing makes it until a worker starts
    with httpx.Client(base_url=server.url, timeout=WAIT) as http:
        name = upload(http, sources[CLIP], filename="later.mp4").json()["name"]
        page.goto(f"{server.url}/watch/{name}")
        expect(page.locator(".watch-work")).to_contain_text("Processing")
        start_worker(**quiet)
        expect(page.locator(".watch-work")).to_have_text("Ready")
        cues = _track(http, http.get(f"/video/{name}").json())
    _hover(page, 0.55)
    _expect_tile(page.locator("#seek-preview"), cues[6])
