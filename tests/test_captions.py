"""A video's caption tracks through the API: PUT, GET and DELETE ``/video/{name}/captions/...``.

In-process over a local store. How files are converted is ``tests/test_caption_files.py``; tracks in
HLS and in the browser are ``tests/test_caption_playback.py``.
"""

from __future__ import annotations

import httpx
import pytest

from app.core.settings import Settings
from tests.helpers import MiB, put, put_file, processed, upload

TOKEN = "caption-token"
SRT = "1\n00:00:01,000 --> 00:00:02,000\nGrüße, <script>alert(1)</script>\n".encode()
OTHER_SRT = b"1\n00:00:05,000 --> 00:00:06,000\nSomething else\n"


def put_captions(client, name: str, language: str, data: bytes, **params: str) -> httpx.Response:
    return client.put(f"/video/{name}/captions/{language}", content=data, params=params)


def tracks(client, name: str) -> list[dict]:
    answer = client.get(f"/video/{name}/captions")
    assert answer.status_code == 200, answer.text
    return answer.json()["captions"]


def stored_files(store_dir, name: str) -> list[str]:
    folder = store_dir / ".library" / "renditions" / name / "captions"
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.vtt")) if folder.exists() else []


@pytest.fixture
def stored(store_dir) -> str:
    put_file(store_dir, "talk.mp4", b"copied in by hand")
    return "talk.mp4"


def test_put_stores_a_track_and_answers_201_with_where_it_is(client, stored):
    answer = put_captions(client, stored, "de", SRT, label="Deutsch")
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"language": "de", "label": "Deutsch", "default": False,
                             "url": "http://testserver/video/talk.mp4/captions/de.vtt"}
    assert answer.headers["location"] == answer.json()["url"]


def test_the_track_is_served_as_webvtt_with_its_text_kept_and_nothing_executable(client, stored):
    put_captions(client, stored, "de", SRT)
    served = client.get(f"/video/{stored}/captions/de.vtt")
    assert (served.status_code, served.headers["content-type"]) == (200, "text/vtt; charset=utf-8")
    assert served.text == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nGrüße, &lt;script&gt;alert(1)&lt;/script&gt;\n"


def test_the_track_file_answers_ranges_and_revalidation(client, stored):
    put_captions(client, stored, "de", SRT)
    whole = client.get(f"/video/{stored}/captions/de.vtt")
    assert client.get(f"/video/{stored}/captions/de.vtt", headers={"range": "bytes=0-5"}).content == b"WEBVTT"
    assert client.get(f"/video/{stored}/captions/de.vtt",
                      headers={"if-none-match": whole.headers["etag"]}).status_code == 304


def test_tracks_are_listed_and_shown_in_the_video_s_description(client, stored):
    put_captions(client, stored, "en", SRT, label="English")
    put_captions(client, stored, "pt-br", SRT)
    assert [(track["language"], track["label"]) for track in tracks(client, stored)] == [
        ("en", "English"), ("pt-BR", "pt-BR")]
    assert client.get(f"/video/{stored}").json()["captions"] == tracks(client, stored)


def test_head_answers_for_the_list_and_the_track_as_get_does(client, stored):
    put_captions(client, stored, "en", SRT)
    for url in (f"/video/{stored}/captions", f"/video/{stored}/captions/en.vtt"):
        got, head = client.get(url), client.head(url)
        assert (head.status_code, head.headers["content-type"], head.content) == (
            200, got.headers["content-type"], b"")


def test_a_language_in_any_case_names_one_track(client, stored):
    put_captions(client, stored, "EN-gb", SRT)
    assert put_captions(client, stored, "en-GB", OTHER_SRT).status_code == 200
    assert [track["language"] for track in tracks(client, stored)] == ["en-GB"]
    assert "Something else" in client.get(f"/video/{stored}/captions/en-gb.vtt").text


def test_a_second_put_replaces_the_track_and_answers_200(client, stored, store_dir):
    put_captions(client, stored, "fr", SRT, label="Français")
    answer = put_captions(client, stored, "fr", OTHER_SRT, label="Français (CC)")
    assert (answer.status_code, answer.json()["label"]) == (200, "Français (CC)")
    assert "Something else" in client.get(f"/video/{stored}/captions/fr.vtt").text
    assert len(stored_files(store_dir, stored)) == 1


def test_one_track_at_most_is_the_default(client, stored):
    put_captions(client, stored, "en", SRT, default="true")
    put_captions(client, stored, "fr", SRT, default="true")
    assert [(track["language"], track["default"]) for track in tracks(client, stored)] == [
        ("en", False), ("fr", True)]


def test_delete_removes_the_track_and_its_file(client, stored, store_dir):
    put_captions(client, stored, "en", SRT)
    assert client.delete(f"/video/{stored}/captions/en").status_code == 204
    assert tracks(client, stored) == []
    assert client.get(f"/video/{stored}/captions/en.vtt").status_code == 404
    assert stored_files(store_dir, stored) == []


def test_a_track_that_is_not_there_is_404(client, stored):
    assert client.get(f"/video/{stored}/captions/en.vtt").json() == {
        "detail": "the video has no caption track in this language"}
    assert client.delete(f"/video/{stored}/captions/en").status_code == 404


def test_a_video_that_is_not_there_has_no_tracks_to_add(client):
    assert put_captions(client, "missing.mp4", "en", SRT).status_code == 404
    assert client.get("/video/missing.mp4/captions").status_code == 404


@pytest.mark.parametrize("data, status", [
    (b"\x00\x01 not text at all" * 10, 422),
    (b"just a letter, no cues\n", 422),
    ("Grüße".encode("latin-1") + b"\n00:00:01,000 --> 00:00:02,000\nx\n", 422),
    (b"1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n99:99 --> garbage\nnot a cue\n", 422),
    (b"", 422),
])
def test_a_file_that_is_not_captions_is_refused_and_the_tracks_stay(client, stored, store_dir, data, status):
    put_captions(client, stored, "en", SRT)
    answer = put_captions(client, stored, "en", data)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"].startswith("not captions: ")
    assert "Grüße" in client.get(f"/video/{stored}/captions/en.vtt").text
    assert len(stored_files(store_dir, stored)) == 1


def test_a_file_over_the_size_limit_is_413_and_the_tracks_stay(make_client, stored):
    client = make_client(caption_max_bytes=1024)
    put_captions(client, stored, "en", SRT)
    huge = b"".join(b"%d\n00:00:01,000 --> 00:00:02,000\nline\n\n" % n for n in range(100))
    assert put_captions(client, stored, "en", huge).status_code == 413
    assert "Grüße" in client.get(f"/video/{stored}/captions/en.vtt").text


def test_a_language_past_the_track_limit_is_409_but_a_replacement_is_not(make_client, stored):
    client = make_client(caption_max_tracks=1)
    put_captions(client, stored, "en", SRT)
    assert put_captions(client, stored, "fr", SRT).status_code == 409
    assert put_captions(client, stored, "en", OTHER_SRT).status_code == 200
    assert [track["language"] for track in tracks(client, stored)] == ["en"]


@pytest.mark.parametrize("language", ["english", "en_US", "i-klingon"])
def test_a_language_that_is_not_bcp_47_is_400(client, stored, language):
    answer = put_captions(client, stored, language, SRT)
    assert answer.status_code == 400 and "BCP 47" in answer.json()["detail"]


def test_a_label_on_two_lines_is_400(client, stored):
    assert put_captions(client, stored, "en", SRT, label="one\ntwo").status_code == 400


def test_a_write_to_a_track_s_file_url_is_405(client, stored):
    assert put_captions(client, stored, "en.vtt", SRT).status_code == 405


def test_writes_need_the_token_when_the_server_has_one(make_client, stored):
    guarded = make_client(api_token=TOKEN)
    assert put_captions(guarded, stored, "en", SRT).status_code == 401
    assert guarded.put(f"/video/{stored}/captions/en", content=SRT,
                       headers={"authorization": f"Bearer {TOKEN}"}).status_code == 201
    assert guarded.delete(f"/video/{stored}/captions/en").status_code == 401
    assert guarded.get(f"/video/{stored}/captions/en.vtt").status_code == 200


def test_tracks_stay_when_the_video_is_replaced(client, stored, sample_mp4):
    put_captions(client, stored, "en", SRT)
    replaced = put(client, stored, sample_mp4)
    assert replaced.status_code == 200
    assert [track["language"] for track in replaced.json()["captions"]] == ["en"]
    assert [track["language"] for track in tracks(client, stored)] == ["en"]


def test_tracks_go_with_the_video(client, stored, store_dir):
    put_captions(client, stored, "en", SRT)
    client.delete(f"/video/{stored}")
    put_file(store_dir, stored, b"another video under the old name")
    assert tracks(client, stored) == []
    assert stored_files(store_dir, stored) == []


def test_a_new_catalog_learns_the_tracks_from_the_store(make_client, store_dir, tmp_path, sample_mp4):
    first = make_client(rendition_ladder="")
    name = upload(first, sample_mp4).json()["name"]
    put_captions(first, name, "en", SRT, label="English", default="true")
    fresh = make_client(rendition_ladder="", database_url=f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    processed(fresh, name)
    assert [(t["language"], t["label"], t["default"]) for t in tracks(fresh, name)] == [("en", "English", True)]


def test_tracks_survive_the_renditions_and_storyboard_of_a_new_version(make_client, sample_mp4, sample_webm):
    client = make_client(rendition_ladder="240:400")
    name = upload(client, sample_mp4).json()["name"]
    processed(client, name)
    put_captions(client, name, "en", SRT)
    put(client, name, sample_webm)
    assert processed(client, name)["hls_url"]  # the new version's files made, the older ones removed
    assert "Grüße" in client.get(f"/video/{name}/captions/en.vtt").text
