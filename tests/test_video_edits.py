"""A video's id, title and description: shown by the API and the pages, edited with PATCH /video/{name}.

In-process over a local store, and against a real server for the periodic scan.
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.helpers import put, put_file, wait_for

TOKEN = "edit-token"
SCRIPT = "<script>alert(1)</script>"


def edit(client, name: str, body: dict, **headers: str) -> httpx.Response:
    return client.patch(f"/video/{name}", json=body, headers=headers)


def shown(client, name: str) -> dict:
    return client.get(f"/video/{name}").json()


@pytest.fixture
def stored(store_dir) -> str:
    """A file copied in by hand: the catalog learns of it on first request."""
    put_file(store_dir, "holiday.mp4", b"copied in by hand")
    return "holiday.mp4"


def test_a_video_has_an_id_a_title_from_its_file_name_and_an_empty_description(client, stored):
    video = shown(client, stored)
    assert (video["title"], video["description"]) == ("holiday", "")
    assert video["id"]
    assert client.get("/video").json()["videos"][0]["id"] == video["id"]


def test_patch_changes_the_title_and_description_and_get_shows_them(client, stored):
    answer = edit(client, stored, {"title": "  Summer 2024 ", "description": "At the sea.\nDay one."})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["title"], answer.json()["description"]) == ("Summer 2024", "At the sea.\nDay one.")
    assert (shown(client, stored)["title"], shown(client, stored)["description"]) == (
        "Summer 2024", "At the sea.\nDay one.")
    assert client.get("/video").json()["videos"][0]["title"] == "Summer 2024"


def test_patch_of_one_field_keeps_the_other(client, stored):
    edit(client, stored, {"title": "Summer", "description": "At the sea."})
    edit(client, stored, {"description": "Day two."})
    assert (shown(client, stored)["title"], shown(client, stored)["description"]) == ("Summer", "Day two.")


def test_patch_without_the_token_is_401_when_the_server_has_one(make_client, stored):
    guarded = make_client(api_token=TOKEN)
    assert edit(guarded, stored, {"title": "Taken"}).status_code == 401
    assert shown(guarded, stored)["title"] == "holiday"
    assert edit(guarded, stored, {"title": "Given"}, authorization=f"Bearer {TOKEN}").status_code == 200


def test_patch_of_an_unknown_name_is_404(client):
    answer = edit(client, "nothing.mp4", {"title": "Nothing"})
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no video with this name"


@pytest.mark.parametrize("body", [
    {}, {"title": ""}, {"title": "   "}, {"title": "x" * 201}, {"title": None}, {"title": 3},
    {"description": "x" * 5001}, {"description": None}, {"title": "ok", "name": "other.mp4"},
], ids=["empty", "no-title", "blank-title", "long-title", "null-title", "number-title", "long-description",
        "null-description", "unknown-field"])
def test_patch_with_a_bad_body_is_422_and_changes_nothing(client, stored, body):
    assert edit(client, stored, body).status_code == 422
    assert (shown(client, stored)["title"], shown(client, stored)["description"]) == ("holiday", "")


def test_patch_at_the_limits_is_accepted(client, stored):
    assert edit(client, stored, {"title": " " + "x" * 200 + " ", "description": "y" * 5000}).status_code == 200


def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(client, stored):
    assert edit(client, stored, {"title": "Stale"}, **{"if-match": '"stale"'}).status_code == 412
    assert shown(client, stored)["title"] == "holiday"


def test_patch_with_the_current_etag_in_if_match_edits(client, stored):
    etag = client.head(f"/get_video_by_name/{stored}").headers["etag"]
    assert edit(client, stored, {"title": "Current"}, **{"if-match": etag}).status_code == 200


def test_an_edit_survives_a_put_replacement_and_the_id_stays(client, sample_mp4, sample_webm):
    put(client, "clip.mp4", sample_mp4)
    before = edit(client, "clip.mp4", {"title": "Kept", "description": "Still here."}).json()
    replaced = put(client, "clip.mp4", sample_webm).json()
    assert replaced["size"] == sample_webm.stat().st_size
    assert (replaced["id"], replaced["title"], replaced["description"]) == (before["id"], "Kept", "Still here.")
    assert shown(client, "clip.mp4")["title"] == "Kept"


def test_an_edit_survives_a_periodic_scan_that_finds_the_file_changed(start_server, store_dir):
    path = put_file(store_dir, "scanned.mp4", b"copied in by hand")
    server = start_server(VIDEO_CATALOG_SCAN_SECONDS="1")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert edit(http, "scanned.mp4", {"title": "Kept", "description": "Still here."}).status_code == 200
        path.write_bytes(b"changed by hand, and longer than before")
        os.utime(path, (1_700_000_000, 1_700_000_000))

        def listed() -> dict:
            return http.get("/video").json()["videos"][0]

        # The listing answers from the catalog: only a scan tells it the file changed.
        assert wait_for(lambda: listed()["size"] == path.stat().st_size)
        assert (listed()["title"], listed()["description"]) == ("Kept", "Still here.")


def test_a_title_holding_markup_is_shown_escaped_in_the_library_grid(client, stored):
    edit(client, stored, {"title": SCRIPT})
    html = client.get("/").text
    assert '<span class="card-title">&lt;script&gt;alert(1)&lt;/script&gt;</span>' in html
    assert SCRIPT not in html


def test_a_title_and_description_holding_markup_are_shown_escaped_on_the_watch_page(client, stored):
    edit(client, stored, {"title": SCRIPT, "description": f"<b>bold</b>\n{SCRIPT}"})
    html = client.get(f"/watch/{stored}").text
    assert '<h1 class="watch-title">&lt;script&gt;alert(1)&lt;/script&gt;</h1>' in html
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; · Videos</title>" in html
    assert ('<p class="description">&lt;b&gt;bold&lt;/b&gt;\n&lt;script&gt;alert(1)&lt;/script&gt;</p>' in html)
    assert SCRIPT not in html and "<b>" not in html
