"""The pages as HTML, error pages for people and for programs, and CORS, in-process."""

from __future__ import annotations

import shutil

import m3u8
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.core.settings import Settings
from tests.helpers import processed, put_file, upload
from tests.media import make_video

HTML = {"accept": "text/html,application/xhtml+xml"}


def test_library_page_has_a_labelled_upload_area(client):
    page = client.get("/", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<label class="button" for="file-input">' in page.text
    assert "No videos yet" in page.text
    assert 'id="empty-library" class="empty" hidden' not in page.text


def test_library_page_renders_a_card_per_video(client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "card.mp4")
    processed(client, "card.mp4")
    page = client.get("/").text
    assert 'data-name="card.mp4"' in page
    assert 'alt=""' in page  # decorative: the card's link text names the video
    assert 'id="empty-library" class="empty" hidden' in page


def test_card_fragment_matches_the_grid_card(client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "frag.mp4")
    fragment = client.get("/fragments/card/frag.mp4").text.strip()
    assert fragment in client.get("/").text


def test_card_fragment_of_unknown_video_is_404(client):
    assert client.get("/fragments/card/none.mp4").status_code == 404


def test_watch_page_notes_codecs_browsers_may_not_play_when_no_renditions_are_made(make_client, store_dir):
    client = make_client(rendition_ladder="")
    make_video(store_dir / "hevc.mp4", seconds=0.3, video_codec="libx265")
    processed(client, "hevc.mp4")
    page = client.get("/watch/hevc.mp4").text
    assert "may not play in your browser" in page


def test_watch_page_offers_the_hls_stream_and_the_web_mp4_of_what_browsers_do_not_play(client, store_dir):
    make_video(store_dir / "hevc.mp4", seconds=0.3, video_codec="libx265")
    described = processed(client, "hevc.mp4")
    page = client.get("/watch/hevc.mp4").text
    assert f'data-hls="{described["hls_url"]}"' in page
    assert f'<source src="{described["web_url"]}" type="video/mp4">' in page
    assert "may not play in your browser" not in page


def test_the_watch_page_says_in_words_why_processing_failed(make_client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "broken.mp4")
    (store_dir / ".library" / "broken.mp4.json").mkdir(parents=True)  # its sidecar can be neither read nor written
    client = make_client(job_attempts=1)
    assert processed(client, "broken.mp4")["status"] == "failed"
    assert "Processing failed: the server failed to process it" in client.get("/watch/broken.mp4").text


def test_the_library_page_shows_a_video_still_processing_with_its_progress(make_client, sample_mp4):
    client = make_client(embedded_workers=0)
    upload(client, sample_mp4)
    page = client.get("/").text
    assert 'data-status="processing"' in page and "Processing… 0%" in page


def test_the_library_page_lists_only_what_its_search_finds(client, store_dir):
    for name in ("beach-day.mp4", "mountain.mp4"):
        put_file(store_dir, name, b"x")
    page = client.get("/", params={"q": "beach"}).text
    assert ('data-name="beach-day.mp4"' in page, 'data-name="mountain.mp4"' in page) == (True, False)
    assert 'name="q" type="search" value="beach"' in page


def test_a_search_that_finds_nothing_says_so(client, store_dir):
    put_file(store_dir, "mountain.mp4", b"x")
    page = client.get("/", params={"q": "beach"}).text
    assert "No video’s title or file name holds these words." in page


def test_watch_page_shares_its_own_address_under_the_public_base_url(make_client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "my clip.mp4")
    page = make_client(public_base_url="https://videos.example/tv").get("/watch/my%20clip.mp4").text
    assert 'id="share-link" type="url" readonly value="https://videos.example/tv/watch/my%20clip.mp4"' in page


def test_unknown_page_is_a_friendly_html_404_for_browsers(client):
    response = client.get("/no/such/page", headers=HTML)
    assert response.status_code == 404
    assert "Page not found" in response.text


def test_unknown_route_stays_json_for_programs(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_server_errors_are_friendly_pages_without_a_trace(store_dir, monkeypatch):
    app = create_app(Settings(storage_dir=store_dir))

    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.state.services.library, "page", broken)
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/", headers=HTML)
    assert page.status_code == 500
    assert "Something went wrong" in page.text and "disk on fire" not in page.text
    api = client.get("/video")
    assert api.status_code == 500 and api.json() == {"detail": "internal error"}


ALLOWED = "http://127.0.0.1:5111"


@pytest.fixture
def cors_client(make_client):
    return make_client(cors_origins=(ALLOWED,))


def listed(header: str) -> set[str]:
    """The names in a comma-separated header, in lower case."""
    return {name.strip().lower() for name in header.split(",")}


def test_preflight_from_an_allowed_origin_allows_ranges_and_tus_headers(cors_client):
    response = cors_client.options("/uploads/", headers={
        "origin": ALLOWED, "access-control-request-method": "PATCH",
        "access-control-request-headers": "range, if-none-match, authorization, upload-offset, tus-resumable"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert {"get", "head", "post", "patch", "delete"} <= listed(response.headers["access-control-allow-methods"])
    assert {"range", "if-none-match", "if-match", "if-range", "authorization", "upload-offset", "upload-length",
            "upload-metadata", "tus-resumable"} <= listed(response.headers["access-control-allow-headers"])


def test_responses_expose_range_and_tus_headers_to_allowed_origins(cors_client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "x.mp4")
    response = cors_client.get("/get_video_by_name/x.mp4", headers={"origin": ALLOWED, "range": "bytes=0-1"})
    assert {"content-range", "accept-ranges", "content-length", "etag", "location", "upload-offset",
            "tus-resumable", "video-url"} <= listed(response.headers["access-control-expose-headers"])


def test_a_player_on_an_allowed_origin_may_fetch_the_hls_stream(cors_client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "x.mp4")
    described = processed(cors_client, "x.mp4")
    rendition = m3u8.loads(cors_client.get(described["renditions"][0]["url"]).text,
                           uri=described["renditions"][0]["url"])
    for url in (described["hls_url"], rendition.segment_map[0].absolute_uri, rendition.segments[0].absolute_uri):
        answer = cors_client.get(url, headers={"origin": ALLOWED, "range": "bytes=0-1"})
        assert (answer.status_code, answer.headers["access-control-allow-origin"]) in ((200, ALLOWED), (206, ALLOWED))


def test_other_origins_get_no_cors_grant(cors_client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "x.mp4")
    response = cors_client.get("/get_video_by_name/x.mp4", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default(client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "x.mp4")
    assert "access-control-allow-origin" not in client.get("/get_video_by_name/x.mp4",
                                                           headers={"origin": ALLOWED}).headers


@pytest.mark.parametrize("path", ["/", "/watch/clip.mp4", "/watch/missing.mp4"])
def test_pages_allow_scripts_from_this_origin_only_and_refuse_to_be_framed(client, store_dir, sample_mp4, path):
    shutil.copyfile(sample_mp4, store_dir / "clip.mp4")
    headers = client.get(path).headers
    policy = dict(directive.split(" ", 1) for directive in headers["content-security-policy"].split("; "))
    assert (policy["default-src"], policy["frame-ancestors"], policy["object-src"]) == ("'self'", "'none'", "'none'")
    assert headers["x-frame-options"] == "DENY"

