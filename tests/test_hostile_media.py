"""Uploads that try to make FFmpeg open something else, or never finish: refused, and the workers carry on."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from pathlib import Path

import pytest

from app.core.errors import NotAVideo
from app.media import probe
from app.media.workers import MediaWorkers
from tests.helpers import put_file

LIMIT = 60.0
"""How long a test waits for an answer before it fails rather than hangs (the limits tested are far shorter)."""


def read_all(path: str) -> bytes:
    """A media operation stand-in that runs in a worker: it waits on a FIFO until a writer sends."""
    return Path(path).read_bytes()


def test_a_concat_list_naming_a_video_beside_it_is_not_taken_for_that_video(tmp_path, sample_mp4):
    shutil.copyfile(sample_mp4, tmp_path / "beside.mp4")
    listing = put_file(tmp_path, "upload.part", b"ffconcat version 1.0\nfile beside.mp4\n")
    with pytest.raises(NotAVideo):
        probe.validate_upload(str(listing), "clip.mp4")


def test_a_video_in_an_accepted_container_still_opens(sample_mp4, sample_webm):
    assert [probe.validate_upload(str(path), path.name).info.container for path in (sample_mp4, sample_webm)] \
        == ["mp4", "webm"]


async def _validate_twice(workers: MediaWorkers, stuck: Path, video: Path) -> str:
    with pytest.raises(NotAVideo, match="longer than 1 s"):
        await workers.validate_upload(str(stuck), "clip.mp4")
    return (await workers.validate_upload(str(video), video.name)).info.container


def test_a_probe_past_the_time_limit_is_refused_and_the_next_one_runs_on_new_workers(tmp_path, sample_mp4):
    stuck = tmp_path / "never-written.mp4"
    os.mkfifo(stuck)  # opening it waits for a writer that never comes, as a stalled read would
    workers = MediaWorkers(1, timeout_seconds=1)
    try:
        assert asyncio.run(asyncio.wait_for(_validate_twice(workers, stuck, sample_mp4), LIMIT)) == "mp4"
    finally:
        workers.close()


def _open_for_writing(fifo: Path) -> int | None:
    """The FIFO's write end once something reads it, else None (opening it does not wait)."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise
        return None


async def _send_once_read(fifo: Path, data: bytes, reader: asyncio.Future) -> None:
    """Write ``data`` when a reader opens ``fifo``; give up if ``reader`` ends first (it then tells why)."""
    while not reader.done():
        fd = _open_for_writing(fifo)
        if fd is not None:
            os.write(fd, data)
            os.close(fd)
            return
        await asyncio.sleep(0.01)


async def _innocent_survives(workers: MediaWorkers, stuck: Path, innocent: Path) -> bytes:
    over_time = asyncio.ensure_future(workers._run(read_all, str(stuck)))
    # Opening the write end returns once the stuck operation opened the read end: it is running.
    holder = await asyncio.to_thread(open, stuck, "wb")
    try:
        other = asyncio.ensure_future(workers._run(read_all, str(innocent)))
        with pytest.raises(NotAVideo, match="longer than"):
            await over_time
        await _send_once_read(innocent, b"finished", other)
        return await other
    finally:
        holder.close()


def test_work_stopped_with_the_workers_of_an_operation_over_time_runs_again(tmp_path):
    stuck, innocent = tmp_path / "stuck", tmp_path / "innocent"
    os.mkfifo(stuck)
    os.mkfifo(innocent)
    workers = MediaWorkers(2, timeout_seconds=3)
    try:
        assert asyncio.run(asyncio.wait_for(_innocent_survives(workers, stuck, innocent), LIMIT)) == b"finished"
    finally:
        workers.close()
