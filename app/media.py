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
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _in_worker, operation, *args)
        except BrokenProcessPool:
            self._stop(pool)
            raise NotAVideo("the file could not be read (the media worker stopped)") from None

    def close(self) -> None:
        """Stop the workers and wait until they have exited, so that none outlives the server.

        They are not left to exit on their own: an orphaned worker waits for work
        forever and keeps the forkserver alive too (it holds the pipe whose
        closing tells the forkserver to exit), about 80 MB each.
        """
        if self._pool is not None:
            self._stop(self._pool)

    def _stop(self, pool: ProcessPoolExecutor) -> None:
        """Terminate ``pool``'s workers and reap them; a pool already replaced is left alone.

        Work still running is abandoned rather than waited for: at shutdown no
        one waits for its result, and a long remux must not hold the exit up.
        """
        if pool is not self._pool:
            return
        self._pool = None
        # The executor offers no public way to stop running workers before Python 3.14.
        for process in list((pool._processes or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
