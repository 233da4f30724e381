"""The web interface in real headless Chromium: uploads, the library grid, playback, seeking,
resuming after a dropped connection, refusals, the token prompt and cross-origin players."""

from __future__ import annotations

import base64
import os
import re
import shutil
from datetime import datetime, timezone

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import OriginServer, screenshot
from tests.helpers import WAIT, processed, put_file, upload, visible, wait_for
from tests.proxy import CuttingProxy


@pytest.fixture
def server(start_server):
    return start_server()


def row(page, filename: str):
    return page.locator(".upload-item", has=page.locator(".upload-name", has_text=filename))


def wait_done(page, filename: str) -> None:
    page.wait_for_selector(f'.upload-item[data-state="done"] >> text="{filename}"', timeout=120_000)


def test_uploading_two_videos_shows_progress_then_cards_with_posters(page, server, store_dir, sample_mp4,
                                                                      sample_webm):
    page.goto(server.url + "/")
    page.set_input_files("#file-input", [str(sample_mp4), str(sample_webm)])
    for path in (sample_mp4, sample_webm):
        wait_done(page, path.name)
        assert row(page, path.name).locator("progress").evaluate("bar => bar.value") == 100
        assert row(page, path.name).locator(".upload-percent").inner_text() == "100%"
        card = page.locator(f'.card[data-name="{path.name}"]')
        card.wait_for()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=card.locator("img.poster").element_handle())
        assert (store_dir / path.name).read_bytes() == path.read_bytes()
    assert page.locator("#empty-library").is_hidden()
    assert page.locator("#library-count").inner_text() == "2 videos"
    screenshot(page, "library-after-upload")


RECORD_PROGRESS = """() => {
  window.progressShown = [];
  new MutationObserver(() => {
    const bar = document.querySelector(".upload-item progress");
    if (bar && bar.value !== window.progressShown.at(-1)?.value) {
      window.progressShown.push({ value: bar.value, at: performance.now() });
    }
  }).observe(document.getElementById("upload-list"), { subtree: true, childList: true, attributes: true });
}"""

LAST_UPLOAD_ANSWER = """() => performance.getEntriesByType("resource")
  .filter((entry) => entry.name.includes("/uploads/") && !entry.name.endsWith("/uploads/"))
  .at(-1).responseStart"""


def test_progress_grows_as_the_bytes_go_up_and_shows_100_once_the_server_has_them(page, server, store_dir,
                                                                                   large_mp4):
    page.goto(server.url + "/")
    page.evaluate(RECORD_PROGRESS)
    page.set_input_files("#file-input", str(large_mp4))
    wait_done(page, large_mp4.name)
    shown = page.evaluate("() => window.progressShown")
    values = [entry["value"] for entry in shown]
    assert len({value for value in values if 0 < value < 100}) >= 3, values
    assert values == sorted(values) and values[-1] == 100, values
    first_100_at = next(entry["at"] for entry in shown if entry["value"] == 100)
    assert first_100_at >= page.evaluate(LAST_UPLOAD_ANSWER), "100% was shown before the server had every byte"
    assert (store_dir / large_mp4.name).read_bytes() == large_mp4.read_bytes()


def test_library_lists_videos_newest_first_with_their_details(page, start_server, store_dir, sample_mp4,
                                                               sample_webm):
    added = {"city.webm": (sample_webm, "2022-05-06 07:08"), "aunt.mp4": (sample_mp4, "2021-03-04 05:06"),
             "beach.mp4": (sample_mp4, "2023-07-08 09:10")}  # neither by name nor as copied
    for name, (source, when) in added.items():
        shutil.copyfile(source, store_dir / name)
        moment = datetime.strptime(when, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).timestamp()
        os.utime(store_dir / name, (moment, moment))
    server = start_server()  # its start-up scan catalogues the videos copied in
    page.goto(server.url + "/")
    assert page.locator(".card").evaluate_all("cards => cards.map((card) => card.dataset.name)") == [
        "beach.mp4", "city.webm", "aunt.mp4"]
    for name, (_, when) in added.items():  # described in the background: the cards follow without a reload
        details = page.locator(f'.card[data-name="{name}"] .card-meta')
        for detail in ("0:02", "320×240", when):
            expect(details).to_contain_text(detail)


def test_a_card_link_is_announced_once_by_the_video_title_with_a_decorative_poster(page, start_server, store_dir,
                                                                                   sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "beach.mp4")
    server = start_server()
    page.goto(server.url + "/")
    link = page.locator('.card[data-name="beach.mp4"] a')
    expect(link).to_have_accessible_name("beach")  # the title a video has until it is given one
    assert link.locator("img.poster").get_attribute("alt") == ""


def test_a_video_plays_to_its_end(page, server, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "play.mp4")
    page.goto(server.url + "/watch/play.mp4")
    ended_at = page.evaluate("""async () => {
        const video = document.getElementById("player");
        video.muted = true;
        await video.play();
        await new Promise((resolve) => video.addEventListener("ended", resolve, { once: true }));
        return video.currentTime;
    }""")
    assert ended_at == pytest.approx(2.0, abs=0.1)
    screenshot(page, "watch-page")


def test_seeking_the_original_fetches_a_range_answered_206_while_playback_goes_on(page, start_server, store_dir,
                                                                                    large_mp4):
    server = start_server(VIDEO_RENDITION_LADDER="")  # no HLS stream: the page plays the original
    shutil.copyfile(large_mp4, store_dir / "large.mp4")
    with httpx.Client(base_url=server.url, timeout=WAIT) as http:
        processed(http, "large.mp4")  # described first, so that no probe competes with the playback
    ranged = []
    page.on("response", lambda response: ranged.append((response.request.headers.get("range"), response.status))
            if "/get_video_by_name/large.mp4" in response.url else None)
    page.goto(server.url + "/watch/large.mp4")
    resumed_at = page.evaluate("""async () => {
        const video = document.getElementById("player");
        video.muted = true;
        await video.play();
        const middle = video.duration / 2;
        video.currentTime = middle;
        await new Promise((resolve) => video.addEventListener("seeked", resolve, { once: true }));
        await new Promise((resolve) => {
            const check = () => (video.currentTime > middle + 0.5 ? resolve() : setTimeout(check, 50));
            check();
        });
        return video.currentTime;
    }""")
    assert resumed_at > 5.5
    later_ranges = [(header, status) for header, status in ranged
                    if header and header.startswith("bytes=") and not header.startswith("bytes=0-")]
    assert later_ranges, ranged
    assert all(status == 206 for _, status in later_ranges)


def test_an_upload_cut_by_a_dropped_connection_resumes_and_completes(page, server, store_dir, large_mp4):
    proxy = CuttingProxy(server.port)
    page.goto(proxy.url + "/")
    proxy.cut_after(3 * 1024 * 1024, once=True)
    page.set_input_files("#file-input", str(large_mp4))
    row(page, large_mp4.name).locator(".upload-status", has_text="resuming").wait_for()
    wait_done(page, large_mp4.name)
    assert proxy.cuts == 1
    assert (store_dir / large_mp4.name).read_bytes() == large_mp4.read_bytes()
    proxy.close()


def test_an_upload_whose_last_answer_is_lost_asks_the_server_and_completes(page, server, store_dir, sample_mp4):
    lost = []

    def deliver_then_drop_the_answer(route):
        if route.request.method == "PATCH" and not lost:
            lost.append(route.fetch().status)  # the server gets the bytes and stores the video
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/uploads/**", deliver_then_drop_the_answer)
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(sample_mp4))
    wait_done(page, sample_mp4.name)
    assert lost == [204]
    assert visible(store_dir) == [sample_mp4.name]


def test_a_file_that_is_not_a_video_shows_why_it_was_refused(page, server, tmp_path, store_dir):
    page_file = put_file(tmp_path, "notes.mp4", b"<html>not a video</html>" * 100)
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(page_file))
    status = row(page, "notes.mp4").locator('.upload-status')
    page.wait_for_selector('.upload-item[data-state="error"]')
    assert "not a video" in status.inner_text()
    assert not (store_dir / "notes.mp4").exists()
    screenshot(page, "refused-upload")


def test_a_file_over_the_limit_is_refused_before_sending(page, start_server, sample_mp4):
    server = start_server(VIDEO_MAX_UPLOAD_BYTES="1000")
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(sample_mp4))
    page.wait_for_selector('.upload-item[data-state="error"]')
    assert "too large" in row(page, sample_mp4.name).locator(".upload-status").inner_text()


def test_cancel_stops_an_upload_and_frees_it(page, server, store_dir, large_mp4):
    proxy = CuttingProxy(server.port)
    page.goto(proxy.url + "/")
    proxy.cut_after(2 * 1024 * 1024)  # the connection stalls: every retry is cut too
    page.set_input_files("#file-input", str(large_mp4))
    row(page, large_mp4.name).locator(".upload-status", has_text="resuming").wait_for()
    proxy.cut_after(None)
    row(page, large_mp4.name).locator(".upload-cancel").click()
    row(page, large_mp4.name).locator(".upload-status", has_text="Cancelled").wait_for()
    assert wait_for(lambda: not any((store_dir / ".uploads").iterdir())), "the cancelled upload was not freed"
    assert not (store_dir / large_mp4.name).exists()
    proxy.close()


def test_the_token_is_asked_once_and_kept(page, start_server, store_dir, sample_mp4, sample_webm):
    server = start_server(VIDEO_API_TOKEN="letmein")
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(sample_mp4))
    page.locator("#token-dialog").wait_for()
    screenshot(page, "token-prompt")
    page.fill("#token-input", "letmein")
    page.click('#token-dialog button[value="ok"]')
    wait_done(page, sample_mp4.name)
    assert page.evaluate("() => localStorage.getItem('video-service-token')") == "letmein"
    page.set_input_files("#file-input", str(sample_webm))
    wait_done(page, sample_webm.name)
    assert page.locator("#token-dialog").is_hidden()


def test_a_wrong_token_is_asked_for_again(page, start_server, sample_mp4):
    server = start_server(VIDEO_API_TOKEN="letmein")
    page.goto(server.url + "/")
    page.evaluate("() => localStorage.setItem('video-service-token', 'stale')")
    page.set_input_files("#file-input", str(sample_mp4))
    page.locator("#token-dialog").wait_for()
    page.fill("#token-input", "letmein")
    page.click('#token-dialog button[value="ok"]')
    wait_done(page, sample_mp4.name)


def test_cancelling_the_token_prompt_says_next_to_the_file_that_a_token_is_needed(page, start_server, store_dir,
                                                                                 sample_mp4):
    server = start_server(VIDEO_API_TOKEN="letmein")
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(sample_mp4))
    page.click('#token-dialog button[value="cancel"]')
    page.wait_for_selector('.upload-item[data-state="error"]')
    status = row(page, sample_mp4.name).locator(".upload-status").inner_text()
    assert status == "Refused: an access token is needed to change the library"
    assert not (store_dir / sample_mp4.name).exists()


def test_a_token_refused_again_says_next_to_the_file_that_it_was_not_accepted(page, start_server, store_dir,
                                                                               sample_mp4):
    server = start_server(VIDEO_API_TOKEN="letmein")
    page.goto(server.url + "/")
    page.evaluate("() => localStorage.setItem('video-service-token', 'stale')")
    page.set_input_files("#file-input", str(sample_mp4))
    page.fill("#token-input", "wrong")
    page.click('#token-dialog button[value="ok"]')
    page.wait_for_selector('.upload-item[data-state="error"]')
    status = row(page, sample_mp4.name).locator(".upload-status").inner_text()
    assert status == "Refused: the access token was not accepted"
    assert not (store_dir / sample_mp4.name).exists()
    screenshot(page, "token-refused")


def test_delete_from_the_watch_page_after_confirming(page, server, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "doomed.mp4")
    page.goto(server.url + "/watch/doomed.mp4")
    page.click("#delete-button")
    page.click('#delete-dialog button[value="delete"]')
    page.wait_for_url(server.url + "/")
    assert not (store_dir / "doomed.mp4").exists()
    assert page.locator('.card[data-name="doomed.mp4"]').count() == 0


def test_the_link_to_share_opens_the_watch_page_and_the_file_has_its_own_link(page, server, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "my clip.mp4")
    page.goto(server.url + "/watch/my%20clip.mp4")
    share = page.get_by_label("Link to share").input_value()
    assert share == f"{server.url}/watch/my%20clip.mp4"
    file_url = f"{server.url}/get_video_by_name/my%20clip.mp4"
    assert page.locator("#file-link").get_attribute("href") == file_url
    assert page.get_by_role("link", name="Download").get_attribute("href") == file_url
    page.goto(share)
    assert page.locator("h1").inner_text() == "my clip"


FOCUS_RING = "rgb(255, 191, 71)"  # the --focus outline of app.css


def tab_to(page, selector: str, presses: int = 25) -> None:
    """Press Tab until the element matching ``selector`` has the focus; fail if it never gets it."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("selector => document.activeElement.matches(selector)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def focus_ring_on(page, selector: str) -> bool:
    return FOCUS_RING in page.eval_on_selector(selector, "element => getComputedStyle(element).boxShadow")


def test_the_file_picker_is_reached_with_tab_shows_its_focus_and_opens_with_space(page, server, store_dir,
                                                                                  sample_mp4):
    page.goto(server.url + "/")
    assert not focus_ring_on(page, 'label[for="file-input"]')
    tab_to(page, "#file-input")
    assert focus_ring_on(page, 'label[for="file-input"]')
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(sample_mp4))
    wait_done(page, sample_mp4.name)
    assert (store_dir / sample_mp4.name).exists()


def test_delete_is_reached_with_tab_and_confirmed_with_the_keyboard(page, server, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "keyed.mp4")
    page.goto(server.url + "/watch/keyed.mp4")
    tab_to(page, "#delete-button")
    assert focus_ring_on(page, "#delete-button")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.textContent") == "Keep it"
    page.keyboard.press("Tab")
    assert focus_ring_on(page, '#delete-dialog button[value="delete"]')
    page.keyboard.press("Space")
    page.wait_for_url(server.url + "/")
    assert not (store_dir / "keyed.mp4").exists()


def test_escape_closes_the_delete_dialog_and_keeps_the_video(page, server, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "kept.mp4")
    methods = []
    page.on("request", lambda request: methods.append(request.method))
    page.goto(server.url + "/watch/kept.mp4")
    tab_to(page, "#delete-button")
    page.keyboard.press("Enter")
    page.locator("#delete-dialog").wait_for()
    screenshot(page, "delete-dialog")
    page.evaluate("""() => { window.deleteDialogClosed = new Promise((resolve) =>
        document.getElementById("delete-dialog").addEventListener("close", resolve, { once: true })); }""")
    page.keyboard.press("Escape")
    page.evaluate("async () => { await window.deleteDialogClosed; await fetch(location.href); }")  # after any DELETE
    assert page.locator("#delete-dialog").is_hidden()
    assert page.evaluate("() => document.activeElement.id") == "delete-button"
    assert "DELETE" not in methods and (store_dir / "kept.mp4").exists()


@pytest.fixture
def page_without_scripts(chromium):
    context = chromium.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_watching_works_without_javascript(page_without_scripts, server, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "plain.mp4")
    page = page_without_scripts
    page.goto(server.url + "/watch/plain.mp4")
    player = page.locator("#player").element_handle()  # read through Playwright's own world, not page scripts
    page.wait_for_function("video => video.readyState >= HTMLMediaElement.HAVE_METADATA", arg=player)
    assert player.evaluate("video => video.duration") == pytest.approx(2.0, abs=0.1)


def test_without_javascript_the_buttons_that_need_it_stay_hidden(page_without_scripts, server, store_dir,
                                                                 sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "plain.mp4")
    page = page_without_scripts
    page.goto(server.url + "/watch/plain.mp4")
    assert page.locator("#delete-button").is_hidden() and page.locator("#copy-button").is_hidden()
    assert page.get_by_label("Link to share").is_visible()


def test_pages_fit_a_phone_screen(chromium, server, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "phone.mp4")
    context = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    for path, name in (("/", "library-phone"), ("/watch/phone.mp4", "watch-phone")):
        page.goto(server.url + path)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
        screenshot(page, name)
    context.close()


def test_missing_video_and_empty_library_have_friendly_pages(page, server):
    page.goto(server.url + "/")
    assert page.locator("#empty-library").is_visible()
    response = page.goto(server.url + "/watch/nothing-here.mp4")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Video not found"
    screenshot(page, "missing-video")


CROSS_ORIGIN_PAGE = """<!doctype html><meta charset="utf-8"><title>player</title>
<video id="v" crossorigin="anonymous" muted preload="metadata"></video>
<script>
async function probe(url) {
  const result = {};
  try {
    const response = await fetch(url, { headers: { Range: "bytes=0-99" } });
    result.status = response.status;
    result.contentRange = response.headers.get("content-range");
    result.bytes = (await response.arrayBuffer()).byteLength;
  } catch (error) {
    result.fetchError = String(error);
  }
  const video = document.getElementById("v");
  result.video = await new Promise((resolve) => {
    video.addEventListener("loadedmetadata", () => resolve("loaded"), { once: true });
    video.addEventListener("error", () => resolve("error"), { once: true });
    video.src = url;
  });
  return result;
}

async function listLibrary(url) {
  try {
    const response = await fetch(url);
    return { status: response.status, names: (await response.json()).videos.map((video) => video.name) };
  } catch (error) {
    return { fetchError: String(error) };
  }
}

// A tus upload in two requests, each preflighted for its tus and Authorization headers.
async function tusUpload(endpoint, name, base64, token) {
  const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
  const headers = { "Tus-Resumable": "1.0.0", Authorization: `Bearer ${token}` };
  try {
    const created = await fetch(endpoint, { method: "POST", headers: {
      ...headers, "Upload-Length": String(bytes.length), "Upload-Metadata": `filename ${btoa(name)}` } });
    const location = created.headers.get("Location");
    const patched = await fetch(new URL(location, endpoint), { method: "PATCH", body: bytes, headers: {
      ...headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream" } });
    return { created: created.status, patched: patched.status, offset: Number(patched.headers.get("Upload-Offset")) };
  } catch (error) {
    return { fetchError: String(error) };
  }
}
</script>"""


@pytest.fixture
def origins():
    allowed, other = OriginServer(CROSS_ORIGIN_PAGE), OriginServer(CROSS_ORIGIN_PAGE)
    yield allowed, other
    allowed.close()
    other.close()


@pytest.fixture
def shared_server(start_server, store_dir, sample_mp4, origins):
    """A server with a video that lets only the first of ``origins`` use it from its pages."""
    shutil.copyfile(sample_mp4, store_dir / "shared.mp4")
    return start_server(VIDEO_CORS_ORIGINS=origins[0].url, VIDEO_API_TOKEN="letmein")


@pytest.fixture
def shared_video_url(shared_server) -> str:
    return f"{shared_server.url}/get_video_by_name/shared.mp4"


def test_players_on_an_allowed_origin_can_fetch_ranges_and_play(page, origins, shared_video_url, sample_mp4):
    page.goto(origins[0].url + "/")
    result = page.evaluate("url => probe(url)", shared_video_url)
    assert result == {"status": 206, "contentRange": f"bytes 0-99/{sample_mp4.stat().st_size}", "bytes": 100,
                      "video": "loaded"}


def test_players_on_other_origins_are_refused(page, origins, shared_video_url):
    page.goto(origins[1].url + "/")
    result = page.evaluate("url => probe(url)", shared_video_url)
    assert "fetchError" in result and result["video"] == "error"


def test_pages_on_an_allowed_origin_can_list_the_library(page, origins, shared_server):
    page.goto(origins[0].url + "/")
    assert page.evaluate("url => listLibrary(url)", shared_server.url + "/video") == {"status": 200,
                                                                                      "names": ["shared.mp4"]}


def test_pages_on_other_origins_cannot_read_the_library(page, origins, shared_server):
    page.goto(origins[1].url + "/")
    assert "fetchError" in page.evaluate("url => listLibrary(url)", shared_server.url + "/video")


def cross_origin_upload(page, server, video) -> dict:
    return page.evaluate("([endpoint, name, data]) => tusUpload(endpoint, name, data, 'letmein')",
                         [server.url + "/uploads/", "crossed.mp4", base64.b64encode(video.read_bytes()).decode()])


def test_pages_on_an_allowed_origin_can_upload_with_tus(page, origins, shared_server, store_dir, sample_mp4):
    page.goto(origins[0].url + "/")
    result = cross_origin_upload(page, shared_server, sample_mp4)
    assert result == {"created": 201, "patched": 204, "offset": sample_mp4.stat().st_size}
    assert wait_for(lambda: (store_dir / "crossed.mp4").exists())
    assert (store_dir / "crossed.mp4").read_bytes() == sample_mp4.read_bytes()


def test_pages_on_other_origins_cannot_upload(page, origins, shared_server, store_dir, sample_mp4):
    page.goto(origins[1].url + "/")
    assert "fetchError" in cross_origin_upload(page, shared_server, sample_mp4)
    assert not (store_dir / "crossed.mp4").exists()
    assert not any((store_dir / ".uploads").glob("*")), "the refused preflight still created an upload"


RECORD_POLICY_VIOLATIONS = """
window.policyViolations = [];
document.addEventListener("securitypolicyviolation", event => window.policyViolations.push(event.violatedDirective));
"""


def test_the_pages_keep_to_their_content_security_policy(page, start_server, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "clip.mp4")
    server = start_server()
    page.add_init_script(RECORD_POLICY_VIOLATIONS)
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    page.goto(server.url + "/")
    expect(page.locator('.card[data-name="clip.mp4"] img')).to_be_visible()
    assert page.evaluate("window.policyViolations") == []
    page.goto(server.url + "/watch/clip.mp4")
    page.wait_for_function("() => document.querySelector('video').readyState >= 1")
    assert page.evaluate("window.policyViolations") == []
    assert refused == []


def test_the_watch_page_shows_processing_then_the_poster_without_a_reload(page, start_server, start_worker,
                                                                          sample_mp4):
    server = start_server(VIDEO_EMBEDDED_WORKERS="0")  # nothing processes the upload until a worker starts
    with httpx.Client(base_url=server.url, timeout=WAIT) as http:
        name = upload(http, sample_mp4).json()["name"]
    page.goto(f"{server.url}/watch/{name}")
    status = page.locator(".watch-work")
    expect(status).to_contain_text("Processing… 0%")
    start_worker()
    expect(status).to_have_text("Ready")
    expect(page.locator("#player")).to_have_attribute("poster", re.compile(r"/poster\.jpg$"))
