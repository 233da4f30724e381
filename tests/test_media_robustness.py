"""Odd but real files, and failures on the way: never a 500, never a broken library."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest

from app import media_probe
from app.media import NotAVideo
from tests.media import make_webm_with_undecodable_title
from tests.test_library import put, upload


@pytest.fixture(scope="module")
def undecodable_title(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_webm_with_undecodable_title(tmp_path_factory.mktemp("odd") / "bad-title.webm")


# --- tags that are not valid UTF-8 ----------------------------------------------------

@pytest.mark.parametrize("send", [upload, lambda client, path: put(client, path.name, path)], ids=["post", "put"])
def test_an_upload_whose_tags_are_not_utf8_is_accepted(client, undecodable_title, send):
    assert send(client, undecodable_title).status_code == 201


def test_a_video_whose_tags_are_not_utf8_copied_in_by_hand_is_described(client, store_dir, undecodable_title):
    shutil.copyfile(undecodable_title, store_dir / "by-hand.webm")
    info = client.get("/video/by-hand.webm").json()
    assert (info["video_codec"], info["width"]) == ("vp9", 320)


def test_the_listing_shows_a_video_whose_tags_are_not_utf8(client, store_dir, undecodable_title):
    shutil.copyfile(undecodable_title, store_dir / "by-hand.webm")
    assert [video["name"] for video in client.get("/video").json()["videos"]] == ["by-hand.webm"]


# --- what fails while describing or probing ---------------------------------------------

def test_a_video_that_cannot_be_described_is_still_listed_with_a_note(client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "fine.mp4")
    shutil.copyfile(sample_mp4, store_dir / "broken.mp4")
    (store_dir / ".library" / "broken.mp4.json").mkdir()  # its sidecar cannot be read
    videos = {video["name"]: video for video in client.get("/video").json()["videos"]}
    assert videos["fine.mp4"]["width"] == 320
    assert videos["broken.mp4"]["playback_note"] == "its metadata could not be read"


def _pyav_fails_unexpectedly(*args: object, **kwargs: object) -> None:
    raise IndexError("an error no check foresaw")


def test_an_unexpected_error_from_pyav_refuses_the_upload(monkeypatch, sample_mp4):
    monkeypatch.setattr(av, "open", _pyav_fails_unexpectedly)
    with pytest.raises(NotAVideo, match="not a video file FFmpeg can read"):
        media_probe.validate_upload(str(sample_mp4), "clip.mp4")


def test_an_unexpected_error_from_pyav_is_the_stored_videos_problem(monkeypatch, sample_mp4):
    monkeypatch.setattr(av, "open", _pyav_fails_unexpectedly)
    media, problem, poster = media_probe.describe_with_poster(str(sample_mp4), "clip.mp4")
    assert (media, poster) == (None, None)
    assert "not a video file FFmpeg can read" in problem
