"""The video library: ingest (validation, faststart), metadata, posters, and the JSON API."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import av
import pytest

from app.media.probe import moov_after_mdat
from tests.helpers import jpeg_size, processed, put, put_file, refused, store_snapshot, upload, uploaded
from tests.media import make_audio, make_video


def packets(path: Path) -> list[tuple[str, int | None, int | None, str]]:
    """Every packet's stream type, timestamps and bytes digest, in file order per stream."""
    with av.open(str(path)) as container:
        found = [(p.stream.type, p.pts, p.dts, hashlib.sha1(bytes(p)).hexdigest())
                 for p in container.demux() if p.size]
    return sorted(found, key=lambda item: (item[0], item[2] if item[2] is not None else -1, item[3]))


def ffprobe(path: Path) -> dict:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True, check=True, timeout=60,
    )
    return json.loads(result.stdout)


# --- ingest: what is accepted and how it is stored ------------------------------------

def test_h264_aac_mp4_is_accepted(client, sample_mp4):
    assert upload(client, sample_mp4).status_code == 201


def test_vp9_opus_webm_is_accepted(client, sample_webm):
    response = upload(client, sample_webm)
    assert response.status_code == 201
    assert response.json()["content_type"] == "video/webm"


def test_mp4_with_index_at_the_end_is_stored_with_index_first(client, store_dir, sample_mp4_moov_last):
    assert moov_after_mdat(sample_mp4_moov_last)
    name = upload(client, sample_mp4_moov_last).json()["name"]
    assert not moov_after_mdat(store_dir / name)


def test_a_large_upload_is_stored_as_sent_while_a_job_moves_its_index_first(make_client, store_dir,
                                                                               sample_mp4_moov_last):
    client = make_client(inline_faststart_bytes=0, embedded_workers=0)  # every upload is large; no worker yet
    answer = upload(client, sample_mp4_moov_last).json()
    assert (answer["status"], answer["width"]) == ("processing", 320)
    assert (store_dir / answer["name"]).read_bytes() == sample_mp4_moov_last.read_bytes()


def test_a_large_upload_gets_its_index_first_and_its_poster_from_jobs(make_client, store_dir, sample_mp4_moov_last):
    client = make_client(inline_faststart_bytes=0)
    described = processed(client, upload(client, sample_mp4_moov_last).json()["name"])
    assert not moov_after_mdat(store_dir / described["name"])
    assert packets(store_dir / described["name"]) == packets(sample_mp4_moov_last)
    assert (described["status"], client.get(described["poster_url"]).status_code) == ("ready", 200)


def test_faststart_remux_keeps_every_packet(client, store_dir, sample_mp4_moov_last):
    name = upload(client, sample_mp4_moov_last).json()["name"]
    assert packets(store_dir / name) == packets(sample_mp4_moov_last)


def test_mp4_with_index_first_is_stored_unchanged(client, store_dir, sample_mp4):
    name = upload(client, sample_mp4).json()["name"]
    assert (store_dir / name).read_bytes() == sample_mp4.read_bytes()


def test_faststart_keeps_the_recording_time(client, tmp_path):
    phone = make_video(tmp_path / "phone.mp4", seconds=0.5, metadata={"creation_time": "2021-06-01T12:34:56Z"})
    assert moov_after_mdat(phone)
    info = client.get(f"/video/{upload(client, phone).json()['name']}").json()
    assert info["created"] == "2021-06-01T12:34:56+00:00"


@pytest.mark.parametrize("suffix", ["mp4", "mov"])
def test_faststart_keeps_the_timecode_track(client, store_dir, tmp_path, suffix):
    camera = make_video(tmp_path / f"camera.{suffix}", seconds=0.5, audio_codec=None,
                        metadata={"timecode": "01:00:00:00"})
    stored = store_dir / upload(client, camera).json()["name"]
    assert not moov_after_mdat(stored)
    with av.open(str(stored)) as container:
        assert [stream.metadata.get("timecode") for stream in container.streams.data] == ["01:00:00:00"]


def test_faststart_keeps_a_telemetry_stream(client, store_dir, tmp_path):
    action_camera = make_video(tmp_path / "ride.mp4", seconds=0.5, audio_codec=None, telemetry=True)
    stored = store_dir / upload(client, action_camera).json()["name"]
    assert not moov_after_mdat(stored)
    assert packets(stored) == packets(action_camera)


def test_faststart_leaves_out_a_data_stream_the_container_cannot_hold(client, store_dir, tmp_path):
    action_camera = make_video(tmp_path / "ride.mp4", seconds=0.5, audio_codec=None, telemetry=True)
    unknown_kind = put_file(tmp_path, "odd.mp4", action_camera.read_bytes().replace(b"gpmd", b"xyzw"))
    stored = store_dir / upload(client, unknown_kind).json()["name"]
    assert not moov_after_mdat(stored)


def test_truncated_mp4_is_refused(client, store_dir, before, sample_mp4, tmp_path):
    data = sample_mp4.read_bytes()
    truncated = put_file(tmp_path, "cut.mp4", data[: len(data) * 2 // 3])
    assert "truncated" in refused(upload(client, truncated), store_dir, before)


def test_truncated_webm_is_refused(client, store_dir, before, sample_webm, tmp_path):
    data = sample_webm.read_bytes()
    truncated = put_file(tmp_path, "cut.webm", data[: len(data) // 2])
    assert "truncated" in refused(upload(client, truncated), store_dir, before)


def test_codecs_are_named_as_codecs_not_as_the_decoders_that_read_them(client, tmp_path):
    av1 = make_video(tmp_path / "av1.webm", video_codec="libsvtav1", audio_codec="libopus", seconds=0.5)
    avi = make_video(tmp_path / "old.avi", audio_codec="libmp3lame", seconds=0.5)
    described = [upload(client, path).json() for path in (av1, avi)]
    assert [(video["video_codec"], video["audio_codec"]) for video in described] == [("av1", "opus"), ("h264", "mp3")]
    assert described[0]["browser_playable"] is True


def test_metadata_from_an_older_probe_is_probed_again_when_the_catalog_is_rebuilt(make_client, client, store_dir,
                                                                                  sample_mp4, tmp_path):
    name = uploaded(client, sample_mp4)["name"]
    sidecar = store_dir / ".library" / f"{name}.json"
    older = json.loads(sidecar.read_text())
    del older["probe_version"]
    older["media"]["video_codec"] = "a decoder's name"
    sidecar.write_text(json.dumps(older))
    rebuilt = make_client(database_url=f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}")
    assert processed(rebuilt, name)["video_codec"] == "h264"


@pytest.mark.parametrize("path", ["/healthz", "/video", "/video/clip.mp4"])
def test_head_of_a_json_route_answers_the_gets_headers_without_its_body(client, sample_mp4, path):
    put(client, "clip.mp4", sample_mp4)
    get, head = client.get(path), client.head(path)
    assert (head.status_code, head.headers["content-type"], head.content) == (200, get.headers["content-type"], b"")


def test_html_renamed_to_mp4_is_refused(client, store_dir, before, tmp_path):
    page = put_file(tmp_path, "page.mp4", b"<!doctype html><html><script>alert(1)</script></html>" * 50)
    assert "not a video" in refused(upload(client, page), store_dir, before)


def test_still_image_is_refused(client, store_dir, before, tmp_path, sample_mp4):
    poster = client.get(uploaded(client, sample_mp4)["poster_url"]).content
    before = store_snapshot(store_dir)
    image = put_file(tmp_path, "photo.mp4", poster)
    assert "image" in refused(upload(client, image), store_dir, before)


def test_a_sound_recording_is_stored_and_described_without_a_picture(client, tmp_path):
    described = uploaded(client, make_audio(tmp_path / "song.m4a"), "song.m4a")
    assert (described["audio_codec"], described["video_codec"], described["width"]) == ("aac", None, None)
    assert (described["content_type"], described["poster_url"], described["browser_playable"]) == (
        "audio/mp4", None, True)


def test_a_file_with_neither_pictures_nor_sound_is_refused(client, store_dir, before, tmp_path):
    data_only = put_file(tmp_path, "data.mp4", b"")
    with av.open(str(data_only), "w") as container:
        stream = container.add_data_stream("bin_data")
        packet = av.Packet(b"reading")
        packet.stream, packet.pts, packet.dts = stream, 0, 0
        container.mux(packet)
    assert "no video or audio stream" in refused(upload(client, data_only), store_dir, before)


def test_accept_any_file_stores_non_video_served_as_octet_stream(make_client, store_dir, tmp_path):
    client = make_client(accept_any_file=True)
    page = put_file(tmp_path, "page.html", b"<html><script>alert(1)</script></html>")
    body = upload(client, page).json()
    assert body["video_codec"] is None and body["poster_url"] is None
    response = client.get(body["video_url"])
    assert response.content == page.read_bytes()
    assert response.headers["content-type"] == "application/octet-stream"


def test_accept_any_file_still_moves_a_videos_index_first(make_client, store_dir, sample_mp4_moov_last):
    client = make_client(accept_any_file=True)
    name = upload(client, sample_mp4_moov_last).json()["name"]
    assert not moov_after_mdat(store_dir / name)


# --- metadata ------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["sample_mp4", "sample_webm"])
def test_metadata_agrees_with_ffprobe(client, request, fixture):
    path = request.getfixturevalue(fixture)
    info = client.get(f"/video/{upload(client, path).json()['name']}").json()
    probe = ffprobe(path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert info["duration"] == pytest.approx(float(probe["format"]["duration"]), abs=0.05)
    assert (info["width"], info["height"]) == (video["width"], video["height"])
    assert (info["video_codec"], info["audio_codec"]) == (video["codec_name"], audio["codec_name"])
    numerator, denominator = map(int, video["avg_frame_rate"].split("/"))
    assert info["frame_rate"] == pytest.approx(numerator / denominator, rel=0.01)
    assert info["container"] == path.suffix.lstrip(".")
    assert info["size"] == path.stat().st_size
    assert info["bitrate"] > 0
    assert info["browser_playable"] is True


def test_hevc_is_flagged_as_unlikely_to_play_in_browsers(client, tmp_path):
    hevc = make_video(tmp_path / "hevc.mp4", seconds=0.5, video_codec="libx265",
                      container_options={"movflags": "faststart"})
    info = client.get(f"/video/{upload(client, hevc).json()['name']}").json()
    assert info["video_codec"] == "hevc"
    assert info["browser_playable"] is False
    assert "sound only" in info["playback_note"]


def test_metadata_is_kept_beside_the_video_in_the_store(client, store_dir, sample_mp4):
    name = uploaded(client, sample_mp4)["name"]
    sidecar = json.loads((store_dir / ".library" / f"{name}.json").read_bytes())
    assert sidecar["media"]["width"] == 320


def test_video_copied_in_by_hand_gets_metadata_and_poster_from_a_job(client, store_dir, sample_webm):
    shutil.copyfile(sample_webm, store_dir / "by-hand.webm")
    info = processed(client, "by-hand.webm")
    assert (info["width"], info["video_codec"]) == (320, "vp9")
    assert client.get(info["poster_url"]).status_code == 200


def test_replaced_file_never_serves_stale_metadata_or_poster(client, store_dir, tmp_path):
    make_video(store_dir / "changing.mp4", seconds=0.5)
    first = processed(client, "changing.mp4")
    first_poster = client.get(first["poster_url"]).content
    make_video(tmp_path / "wide.mp4", seconds=0.5, width=640, height=360).replace(store_dir / "changing.mp4")
    assert client.get("/video/changing.mp4").json()["width"] is None  # the new version, not yet described
    second = processed(client, "changing.mp4")
    assert (first["width"], second["width"]) == (320, 640)
    second_poster = client.get(second["poster_url"]).content
    assert second_poster != first_poster
    assert jpeg_size(second_poster) == (640, 360)


def test_a_video_replaced_while_described_is_described_as_the_version_stored(client, store_dir, tmp_path,
                                                                             monkeypatch):
    make_video(store_dir / "changing.mp4", seconds=0.5)
    second = make_video(tmp_path / "wide.mp4", seconds=0.5, width=640, height=360)
    second_size = second.stat().st_size
    store = client.app.state.services.store
    open_version = store.open

    async def open_then_replace(name: str):
        source = await open_version(name)
        if second.exists():  # a new version lands just after the first was opened
            second.replace(store_dir / name)
        return source

    monkeypatch.setattr(store, "open", open_then_replace)
    info = processed(client, "changing.mp4")
    assert (info["size"], info["width"]) == (second_size, 640)


def test_deleted_by_hand_file_has_no_metadata_or_poster(client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "gone.mp4")
    assert client.get("/video/gone.mp4").status_code == 200
    (store_dir / "gone.mp4").unlink()
    assert client.get("/video/gone.mp4").status_code == 404
    assert client.get("/video/gone.mp4/poster.jpg").status_code == 404


# --- posters -------------------------------------------------------------------------

def test_poster_is_a_jpeg_of_the_video_size(client, sample_mp4):
    body = uploaded(client, sample_mp4)
    poster = client.get(body["poster_url"])
    assert poster.headers["content-type"] == "image/jpeg"
    assert jpeg_size(poster.content) == (320, 240)


def test_poster_of_a_wide_video_is_scaled_down(client, tmp_path):
    wide = make_video(tmp_path / "wide.mp4", seconds=0.3, width=1920, height=1080,
                      container_options={"movflags": "faststart"})
    poster = client.get(uploaded(client, wide)["poster_url"]).content
    assert jpeg_size(poster) == (1280, 720)


def test_poster_has_validators_and_answers_304(client, sample_mp4):
    url = uploaded(client, sample_mp4)["poster_url"]
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"if-none-match": etag}).status_code == 304
    assert client.get(url, headers={"range": "bytes=0-1"}).content == b"\xff\xd8"


def test_poster_of_unknown_video_is_404(client):
    assert client.get("/video/none.mp4/poster.jpg").status_code == 404


# --- the library API ------------------------------------------------------------------

def test_listing_is_newest_first(client, store_dir, sample_mp4):
    names = [upload(client, sample_mp4, f"v{index}.mp4").json()["name"] for index in range(3)]
    for index, name in enumerate(names):
        os.utime(store_dir / name, (1_700_000_000 + index, 1_700_000_000 + index))
    listed = [video["name"] for video in client.get("/video").json()["videos"]]
    assert listed == ["v2.mp4", "v1.mp4", "v0.mp4"]


def test_listing_is_paginated(client, sample_mp4):
    for index in range(5):
        upload(client, sample_mp4, f"p{index}.mp4")
    first = client.get("/video", params={"limit": 2}).json()
    assert (len(first["videos"]), first["total"], first["next_offset"]) == (2, 5, 2)
    last = client.get("/video", params={"limit": 2, "offset": 4}).json()
    assert (len(last["videos"]), last["next_offset"]) == (1, None)
    everything = [v["name"] for v in client.get("/video").json()["videos"]]
    assert [v["name"] for v in first["videos"]] == everything[:2]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 100000}, {"offset": -1}, {"limit": "x"}])
def test_bad_paging_parameters_are_422(client, params):
    assert client.get("/video", params=params).status_code == 422


def test_describe_has_video_and_poster_urls(client, sample_mp4):
    name = uploaded(client, sample_mp4)["name"]
    info = client.get(f"/video/{name}").json()
    assert info["video_url"] == f"http://testserver/get_video_by_name/{name}"
    assert info["poster_url"] == f"http://testserver/video/{name}/poster.jpg"


def test_describe_unknown_video_is_404(client):
    assert client.get("/video/nothing.mp4").status_code == 404


def test_put_creates_a_video(client, store_dir, sample_mp4):
    response = put(client, "new.mp4", sample_mp4)
    assert response.status_code == 201
    assert response.headers["location"].endswith("/get_video_by_name/new.mp4")
    assert (store_dir / "new.mp4").read_bytes() == sample_mp4.read_bytes()


def test_put_replaces_a_video(client, store_dir, sample_mp4, sample_webm):
    put(client, "clip.mp4", sample_webm)
    response = put(client, "clip.mp4", sample_mp4)
    assert response.status_code == 200
    assert (store_dir / "clip.mp4").read_bytes() == sample_mp4.read_bytes()
    assert response.json()["video_codec"] == "h264"


def test_put_goes_through_the_ingest_pipeline(client, store_dir, sample_mp4_moov_last):
    put(client, "late-index.mp4", sample_mp4_moov_last)
    assert not moov_after_mdat(store_dir / "late-index.mp4")


def test_put_with_current_etag_in_if_match_replaces(client, store_dir, sample_mp4, sample_webm):
    put(client, "clip.mp4", sample_webm)
    etag = client.head("/get_video_by_name/clip.mp4").headers["etag"]
    assert put(client, "clip.mp4", sample_mp4, if_match=etag).status_code == 200


def test_put_with_if_match_sent_on_several_lines_counts_every_tag(client, sample_mp4, sample_webm):
    put(client, "clip.mp4", sample_webm)
    etag = client.head("/get_video_by_name/clip.mp4").headers["etag"]
    response = client.put("/video/clip.mp4", content=sample_mp4.read_bytes(),
                          headers=[("if-match", '"stale"'), ("if-match", etag)])
    assert response.status_code == 200


def test_put_with_stale_if_match_is_412_and_changes_nothing(client, store_dir, sample_mp4, sample_webm):
    put(client, "clip.mp4", sample_webm)
    before = store_snapshot(store_dir)
    assert refused(put(client, "clip.mp4", sample_mp4, if_match='"stale"'), store_dir, before, 412)


def test_put_if_none_match_star_creates_only(client, store_dir, sample_mp4, sample_webm):
    assert put(client, "once.mp4", sample_mp4, if_none_match="*").status_code == 201
    before = store_snapshot(store_dir)
    refused(put(client, "once.mp4", sample_webm, if_none_match="*"), store_dir, before, 412)


def test_put_non_video_is_415_and_keeps_the_old_one(client, store_dir, before, tmp_path):
    page = put_file(tmp_path, "x.html", b"<html></html>" * 100)
    refused(put(client, "existing.mp4", page), store_dir, before)


def test_put_over_the_limit_is_413(make_client, store_dir, before, sample_mp4):
    client = make_client(max_upload_bytes=1000)
    refused(put(client, "big.mp4", sample_mp4), store_dir, before, 413)


@pytest.mark.parametrize("name", ["%2e%2e", ".hidden.mp4", "a%5Cb.mp4"])
def test_put_with_invalid_name_is_400(client, store_dir, before, sample_mp4, name):
    refused(put(client, name, sample_mp4), store_dir, before, 400)


def test_delete_removes_video_and_sidecars(client, store_dir, sample_mp4):
    name = upload(client, sample_mp4).json()["name"]
    assert client.delete(f"/video/{name}").status_code == 204
    assert client.get(f"/get_video_by_name/{name}").status_code == 404
    assert store_snapshot(store_dir) == {}


def test_delete_unknown_video_is_404(client):
    assert client.delete("/video/none.mp4").status_code == 404


def test_delete_with_stale_if_match_is_412(client, store_dir, sample_mp4):
    name = upload(client, sample_mp4).json()["name"]
    before = store_snapshot(store_dir)
    refused(client.delete(f"/video/{name}", headers={"if-match": '"stale"'}), store_dir, before, 412)


def test_library_routes_are_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "put", "delete"} <= set(paths["/video/{name}"])
    assert paths["/video"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
