"""Odd but real files, and failures on the way: never a 500, never a broken library."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import av
import httpx
import pytest

from app.catalog.catalog import Catalog
from app.catalog.database import make_engine
from app.core.settings import Settings
from app.media import probe as media_probe
from app.library.captions import Captions
from app.library.videos import Library
from app.media.info import Description
from app.core.errors import NotAVideo
from app.jobs.queue import Job, JobQueue, RetryPolicy
from app.storage.local import LocalStore
from tests.helpers import jpeg_size, processed, put, put_file, refused, upload, wait_for
from tests.media import make_video, make_webm_with_undecodable_title


@pytest.fixture(scope="module")
def undecodable_title(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_webm_with_undecodable_title(tmp_path_factory.mktemp("odd") / "bad-title.webm")


# --- tags that are not valid UTF-8 ----------------------------------------------------

@pytest.mark.parametrize("send", [upload, lambda client, path: put(client, path.name, path)], ids=["post", "put"])
def test_an_upload_whose_tags_are_not_utf8_is_accepted(client, undecodable_title, send):
    assert send(client, undecodable_title).status_code == 201


def test_a_video_whose_tags_are_not_utf8_copied_in_by_hand_is_described(client, store_dir, undecodable_title):
    shutil.copyfile(undecodable_title, store_dir / "by-hand.webm")
    info = processed(client, "by-hand.webm")
    assert (info["video_codec"], info["width"]) == ("vp9", 320)


def test_the_listing_shows_a_video_whose_tags_are_not_utf8(client, store_dir, undecodable_title):
    shutil.copyfile(undecodable_title, store_dir / "by-hand.webm")
    assert [video["name"] for video in client.get("/video").json()["videos"]] == ["by-hand.webm"]


# --- what fails while describing or probing ---------------------------------------------

def test_a_video_that_cannot_be_described_is_still_listed_and_says_it_failed(make_client, store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "fine.mp4")
    shutil.copyfile(sample_mp4, store_dir / "broken.mp4")
    (store_dir / ".library" / "broken.mp4.json").mkdir(parents=True)  # its sidecar can be neither read nor written
    client = make_client(job_attempts=1)
    assert processed(client, "fine.mp4")["width"] == 320
    assert processed(client, "broken.mp4")["status"] == "failed"
    videos = {video["name"]: video for video in client.get("/video").json()["videos"]}
    assert (videos["broken.mp4"]["status"], videos["broken.mp4"]["playback_note"]) == (
        "failed", "the server failed to process it (its log says why)")


def library_of(store: LocalStore, workers: object, store_dir: Path) -> Library:
    """A library over ``store`` with the catalog (and queue) a service over ``store_dir`` would keep."""
    engine = make_engine(Settings(storage_dir=store_dir).catalog_url)
    catalog = Catalog(engine)
    return Library(store, workers, catalog, JobQueue(engine, RetryPolicy(3, 0, 30)), False,
                   Captions(store, catalog, 1024, 1))


def describe_job(name: str) -> Job:
    """A ``describe`` job of ``name`` as a worker holds it."""
    return Job(id=1, video=name, kind="describe", etag=None, attempts=1, priority=0, token="worker")


async def run_describe(library: Library, name: str) -> None:
    await library.ready()
    await library.run_describe(describe_job(name), lambda fraction: None)


class StoppingWorkers:
    """Media workers that die on every file, as when FFmpeg crashes on one."""

    async def describe_with_poster(self, location: str, name: str) -> Description:
        raise NotAVideo("the file could not be read (the media worker stopped)")


def test_a_worker_that_dies_on_a_video_fails_the_try_and_keeps_no_sidecar(store_dir, sample_mp4):
    shutil.copyfile(sample_mp4, store_dir / "crashes.mp4")
    library = library_of(LocalStore(store_dir, 65536, 0), StoppingWorkers(), store_dir)
    with pytest.raises(NotAVideo, match="the media worker stopped"):
        asyncio.run(run_describe(library, "crashes.mp4"))
    assert not (store_dir / ".library" / "crashes.mp4.json").exists()


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


# --- Matroska layouts FFmpeg reads ------------------------------------------------------

EBML_HEADER, SEGMENT, VOID, CRC32 = b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67", b"\xec", b"\xbf"
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def ebml_element(ident: bytes, payload: bytes) -> bytes:
    """An EBML element with an 8-byte size, as muxers write them."""
    return ident + (1 << 56 | len(payload)).to_bytes(8, "big") + payload


def split_ebml_header(data: bytes) -> tuple[bytes, bytes]:
    """A Matroska file as its EBML header's payload and everything after that header."""
    assert data.startswith(EBML_HEADER)
    length = 9 - data[4].bit_length()
    size = int.from_bytes(data[4 : 4 + length], "big") - (1 << 7 * length)
    start = 4 + length
    return data[start : start + size], data[start + size :]


def with_element_before_segment(webm: Path, element: bytes) -> bytes:
    header, rest = split_ebml_header(webm.read_bytes())
    return ebml_element(EBML_HEADER, header) + element + rest


@pytest.mark.parametrize("element", [ebml_element(VOID, bytes(16)), ebml_element(CRC32, bytes(4))],
                         ids=["void", "crc-32"])
def test_a_webm_with_a_void_or_crc_element_before_its_segment_is_accepted(client, sample_webm, tmp_path, element):
    webm = put_file(tmp_path, "spaced.webm", with_element_before_segment(sample_webm, element))
    assert upload(client, webm).status_code == 201


def test_a_webm_whose_ebml_header_is_larger_than_4_kib_is_accepted(client, sample_webm, tmp_path):
    header, rest = split_ebml_header(sample_webm.read_bytes())
    padded = ebml_element(EBML_HEADER, header + ebml_element(VOID, bytes(5000))) + rest
    assert upload(client, put_file(tmp_path, "padded.webm", padded)).status_code == 201


def test_a_webm_whose_segment_size_is_unknown_is_accepted(client, sample_webm, tmp_path):
    header, rest = split_ebml_header(sample_webm.read_bytes())
    assert rest.startswith(SEGMENT)
    live = ebml_element(EBML_HEADER, header) + SEGMENT + UNKNOWN_SIZE + rest[len(SEGMENT) + len(UNKNOWN_SIZE):]
    assert upload(client, put_file(tmp_path, "live.webm", live)).status_code == 201


def test_a_truncated_webm_with_a_void_element_before_its_segment_is_refused(client, store_dir, sample_webm,
                                                                            tmp_path):
    data = with_element_before_segment(sample_webm, ebml_element(VOID, bytes(16)))
    truncated = put_file(tmp_path, "cut.webm", data[: len(data) // 2])
    assert "truncated" in refused(upload(client, truncated), store_dir, {})


# --- two versions of a name probed at once ---------------------------------------------

class HoldFirst:
    """An awaitable gate that holds its first caller until released and lets every other one by."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._released = asyncio.Event()

    async def __call__(self) -> bool:
        """Wait until released if this is the first call; whether it was."""
        if self.entered.is_set():
            return False
        self.entered.set()
        await self._released.wait()
        return True

    def release(self) -> None:
        self._released.set()


class HeldWorkers:
    """The media operations, run in-process; the first probe is held, and says when it has finished."""

    def __init__(self) -> None:
        self.hold = HoldFirst()
        self.held_probe_finished = asyncio.Event()

    async def describe_with_poster(self, location: str, name: str) -> Description:
        held = await self.hold()
        description = media_probe.describe_with_poster(location, name)
        if held:
            self.held_probe_finished.set()
        return description


class SlowJsonStore(LocalStore):
    """A store whose first JSON sidecar write is held, as a write over the network can take a while."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, 65536, 0)
        self.hold = HoldFirst()

    async def write_sidecar(self, name: str, kind: str, data: bytes) -> None:
        if kind == "json":
            await self.hold()
        await super().write_sidecar(name, kind, data)


async def probe_two_versions_at_once(store_dir: Path, tmp_path: Path) -> bytes:
    """The old version's probe finishes while the new one's JSON is being written (two describe jobs of one
    video at once, as when a lease runs out under a slow worker); the poster served after."""
    store, workers = SlowJsonStore(store_dir), HeldWorkers()
    library = library_of(store, workers, store_dir)
    make_video(store_dir / "clip.mp4", seconds=0.5)
    older = asyncio.ensure_future(run_describe(library, "clip.mp4"))
    await workers.hold.entered.wait()
    make_video(tmp_path / "wide.mp4", seconds=0.5, width=640, height=360).replace(store_dir / "clip.mp4")
    newer = asyncio.ensure_future(run_describe(library, "clip.mp4"))
    await store.hold.entered.wait()
    workers.hold.release()
    # The event wakes this task only when the old version's task next waits. The store writes without
    # waiting (but for the new version's JSON), so by then the old version's sidecars are written,
    # unless something keeps them back until the new version's are.
    await workers.held_probe_finished.wait()
    store.hold.release()
    await asyncio.gather(older, newer)
    poster = await library.poster("clip.mp4")
    try:
        return await poster.read(0, poster.size)
    finally:
        poster.close()


def test_two_versions_probed_at_once_never_leave_the_old_poster_beside_the_new_metadata(store_dir, tmp_path):
    assert jpeg_size(asyncio.run(probe_two_versions_at_once(store_dir, tmp_path))) == (640, 360)


# --- shutting down -------------------------------------------------------------------------

def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, found through /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in map(int, (task / "children").read_text().split()):
            found |= {child} | descendants(child)
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_stopping_the_server_leaves_no_media_process_running(start_server, sample_mp4):
    server = start_server()
    response = httpx.post(f"{server.url}/video", files={"file": ("clip.mp4", sample_mp4.read_bytes())}, timeout=60)
    assert response.status_code == 201
    media_processes = descendants(server.process.pid)
    assert media_processes
    server.stop()
    wait_for(lambda: not any(map(running, media_processes)))
    assert not [pid for pid in media_processes if running(pid)]
