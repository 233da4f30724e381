"""What the service knows about media files, and the worker processes that look inside them.

PyAV runs only in worker processes (``app/media_probe.py``): the server
process keeps its memory small and its interpreter free for streaming while a
video is probed, remuxed or turned into a poster, and a crash inside FFmpeg
costs one worker, not the server.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any


class NotAVideo(ValueError):
    """The file is not a whole, readable video; the message says why in a user's words."""


@dataclass(frozen=True)
class MediaInfo:
    """What a video holds, as the library reports it."""

    container: str
    duration: float | None
    width: int
    height: int
    frame_rate: float | None
    video_codec: str
    audio_codec: str | None
    bitrate: int | None
    created: str | None


_BROWSER_VIDEO = {"h264", "vp8", "vp9", "av1"}
_BROWSER_AUDIO = {None, "aac", "mp3", "opus", "vorbis", "flac"}
_BROWSER_CONTAINERS = {"mp4", "webm", "mov", "mkv", "ogg"}


def browser_playback(info: MediaInfo) -> tuple[bool, str | None]:
    """Whether Chromium, Firefox and Safari are all likely to play it, and a note when not."""
    if info.container not in _BROWSER_CONTAINERS:
        return False, f"browsers do not play the {info.container} container"
    if info.video_codec not in _BROWSER_VIDEO:
        audible = info.audio_codec in _BROWSER_AUDIO - {None}
        tail = "; some will play the sound only" if audible else ""
        return False, f"many browsers cannot decode {info.video_codec} video{tail}"
    if info.audio_codec not in _BROWSER_AUDIO:
        return False, f"many browsers cannot decode {info.audio_codec} audio"
    return True, None


def _in_worker(operation: str, *args: Any) -> Any:
    """Runs in a worker process: the only place that imports PyAV."""
    from app import media_probe

    return getattr(media_probe, operation)(*args)


class MediaWorkers:
    """A few worker processes for media operations, started on first use."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers fork from a clean process that has PyAV loaded already,
            # not from this one with its event loop and threads.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["app.media_probe"])
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
        return self._pool

    async def run(self, operation: str, *args: Any) -> Any:
        """Run ``app.media_probe.<operation>(*args)`` in a worker and return its result."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor(), _in_worker, operation, *args)
        except BrokenProcessPool:
            self.close()
            raise NotAVideo("the file could not be read (the media worker stopped)") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
