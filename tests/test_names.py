"""Names: what may be stored and served, and how client filenames are cleaned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.errors import InvalidName
from app.core.names import check_stored_name, name_from_filename, numbered
from tests.helpers import put_file, store_snapshot


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("clip.mp4", "clip.mp4"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Videos\\holiday.mp4", "holiday.mp4"),
        ("/abs/path/clip.mp4", "clip.mp4"),
        ("vidéo été 東京.mp4", "vidéo été 東京.mp4"),
        ("bad\x00na\x1bme\u202e.mp4", "badname.mp4"),
        ("  spaced.mp4  ", "spaced.mp4"),
        (".hidden.mp4", "hidden.mp4"),
        ("e\u0301.mp4", "é.mp4"),
    ],
)
def test_client_filename_becomes_a_safe_name(filename, expected):
    assert name_from_filename(filename) == expected


@pytest.mark.parametrize("filename", ["", ".", "..", "...", "dir/", "a/..", "\x00", "  "])
def test_filename_with_nothing_usable_is_refused(filename):
    with pytest.raises(InvalidName):
        name_from_filename(filename)


def test_long_filename_is_shortened_keeping_the_extension():
    name = name_from_filename("é" * 300 + ".mp4")
    assert name.endswith(".mp4")
    assert len(name.encode()) <= 240


def test_numbered_names_keep_extension_and_fit():
    assert numbered("clip.mp4", 2) == "clip-2.mp4"
    assert numbered("noext", 3) == "noext-3"
    assert len(numbered("x" * 236 + ".mp4", 12).encode()) <= 240


@pytest.mark.parametrize("name", ["..", ".", "a/b", "a\\b", ".staging", "a\x00b", "x\ny", ""])
def test_stored_name_check_refuses_escapes_and_hidden_names(name):
    with pytest.raises(InvalidName):
        check_stored_name(name)


@pytest.mark.parametrize(
    "path",
    [
        "/get_video_by_name/..%2F..%2Fetc%2Fpasswd",
        "/get_video_by_name/%2e%2e",
        "/get_video_by_name/..%5C..%5Cwin.ini",
        "/get_video_by_name/%2Fetc%2Fpasswd",
        "/get_video_by_name/clip.mp4%00.txt",
        "/get_video_by_name/sub/clip.mp4",
        "/get_video_by_name/.staging",
        "/assets/video/..%2Fsecret.txt",
    ],
)
def test_names_that_could_leave_the_store_are_refused(client, store_dir, path):
    put_file(store_dir.parent, "secret.txt", b"outside")
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert b"outside" not in response.content


def test_symlink_pointing_outside_the_store_is_not_followed(client, store_dir):
    put_file(store_dir.parent, "secret.txt", b"outside")
    os.symlink(store_dir.parent / "secret.txt", store_dir / "link.mp4")
    response = client.get("/get_video_by_name/link.mp4")
    assert response.status_code == 404
    assert b"outside" not in response.content


def test_symlink_inside_the_store_is_served(client, store_dir):
    put_file(store_dir, "real.mp4", b"inside")
    os.symlink("real.mp4", store_dir / "alias.mp4")
    assert client.get("/get_video_by_name/alias.mp4").content == b"inside"


def test_symlink_to_a_hidden_file_is_not_followed(client, store_dir):
    put_file(store_dir, ".secret", b"hidden")
    os.symlink(".secret", store_dir / "alias.mp4")
    assert client.get("/get_video_by_name/alias.mp4").status_code == 404


def test_directory_is_not_a_video(client, store_dir):
    (store_dir / "folder.mp4").mkdir()
    assert client.get("/get_video_by_name/folder.mp4").status_code == 404


def test_refused_names_leave_the_store_unchanged(client, store_dir: Path):
    put_file(store_dir, "keep.mp4", b"keep")
    before = store_snapshot(store_dir)
    client.get("/get_video_by_name/..%2Fkeep.mp4")
    client.head("/get_video_by_name/%2e%2e")
    assert store_snapshot(store_dir) == before


@pytest.mark.parametrize("copied_name", ["zero\u200dwidth.mp4", "x" * 250 + ".mp4", os.fsdecode(b"latin-\xe9.mp4")])
def test_files_copied_in_under_unservable_names_stay_out_of_the_library(client, store_dir, sample_mp4, copied_name):
    put_file(store_dir, "good.mp4", sample_mp4.read_bytes())
    (store_dir / copied_name).write_bytes(sample_mp4.read_bytes())
    response = client.get("/video")
    assert response.status_code == 200
    assert [video["name"] for video in response.json()["videos"]] == ["good.mp4"]
