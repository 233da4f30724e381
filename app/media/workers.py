"""The worker processes that look inside media files, and the typed calls the server makes to them.

PyAV runs only in worker processes (``app/media/probe.py``): the server
process keeps its memory small and its interpreter free for streaming while a
video is probed, remuxed or turned into a poster, and a crash inside FFmpeg
costs one worker, not the server.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable
from typing import TypeVar

from app.core.errors import NotAVideo
from app.media.info import Description, Made, RenditionSettings, StoryboardMade, StoryboardSettings, UploadCheck

PROBE_MODULE = "app.media.probe"
PROGRESS_SECONDS = 1.0
"""How often the progress of long work (renditions) is read from its worker."""
Result = TypeVar("Result")

# What runs in a worker. Each imports the probe there (the forkserver has it
# loaded already): importing it here would load PyAV into the server.


def _validate_upload(path: str, name: str) -> UploadCheck:
    from app.media import probe
    return probe.validate_upload(path, name)


def _remux_faststart(source: str, target: str, name: str, container: str) -> bool:
    from app.media import probe
    return probe.remux_faststart(source, target, name, container)


def _describe_with_poster(location: str, name: str) -> Description:
    from app.media import probe
    return probe.describe_with_poster(location, name)


def _make_renditions(location: str, name: str, target: str, version: str, settings: RenditionSettings,
                     progress: str) -> Made:
    from app.media import renditions
    return renditions.make(location, name, target, version, settings, _ProgressFile(progress))


def _make_storyboard(location: str, name: str, target: str, version: str,
                     settings: StoryboardSettings) -> StoryboardMade | None:
    from app.media import storyboard
    return storyboard.make(location, name, target, version, settings)


class _ProgressFile:
    """Progress written to a small file, for the server to read: a worker's result comes only at its end."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._written = -1

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent != self._written:
            with open(self._path + ".new", "w") as file:
                file.write(str(fraction))
            os.replace(self._path + ".new", self._path)
            self._written = percent


def _read_progress(path: str) -> float:
    try:
        with open(path) as file:
            return float(file.read())
    except (OSError, ValueError):
        return 0.0


def _lower_priority(niceness: int) -> None:
    os.nice(niceness)


class MediaWorkers:
    """A few worker processes for media operations, started on first use.

    ``niceness`` lowers their CPU priority: the background jobs' workers are niced, so that on a
    machine they share with the server, streams and uploads come first.
    """

    def __init__(self, workers: int, timeout_seconds: float, niceness: int = 0) -> None:
        self._workers = workers
        self._timeout = timeout_seconds
        self._niceness = niceness
        self._pool: ProcessPoolExecutor | None = None
        self._stopped_for_time: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers fork from a clean process that has PyAV loaded already,
            # not from this one with its event loop and threads.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([PROBE_MODULE])
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context,
                                             initializer=_lower_priority, initargs=(self._niceness,))
        return self._pool

    async def validate_upload(self, path: str, name: str) -> UploadCheck:
        """Prove an upload is a whole video (NotAVideo otherwise) and say whether it needs faststart."""
        return await self._run(_validate_upload, path, name)

    async def remux_faststart(self, source: str, target: str, name: str, container: str) -> bool:
        """Write ``source`` to ``target`` with its index first; False: keep the original as it is."""
        return await self._run(_remux_faststart, source, target, name, container)

    async def describe_with_poster(self, location: str, name: str) -> Description:
        """The library's view of a stored video: its media (or why there is none) and a poster.

        NotAVideo only when the worker died on the file.
        """
        return await self._run(_describe_with_poster, location, name)

    async def make_renditions(self, location: str, name: str, target: str, version: str,
                              settings: RenditionSettings, report: Callable[[float], None],
                              timeout_seconds: float) -> Made:
        """Make the renditions of the video ``name`` at ``location`` in the local folder ``target`` (``renditions.py``),
        telling their progress to ``report`` as they are made; within ``timeout_seconds``, not the usual limit."""
        progress = os.path.join(target, ".progress")
        work = asyncio.ensure_future(self._run(_make_renditions, location, name, target, version, settings, progress,
                                               timeout=timeout_seconds))
        while not (await asyncio.wait({work}, timeout=PROGRESS_SECONDS))[0]:
            report(_read_progress(progress))
        return work.result()

    async def make_storyboard(self, location: str, name: str, target: str, version: str,
                              settings: StoryboardSettings, timeout_seconds: float) -> StoryboardMade | None:
        """Make the storyboard of the video ``name`` at ``location`` in the local folder ``target``
        (``storyboard.py``); None when it has no pictures to make one of. Within ``timeout_seconds``: a long
        video's tiles take longer than the usual limit allows a probe."""
        return await self._run(_make_storyboard, location, name, target, version, settings, timeout=timeout_seconds)

    async def _run(self, operation: Callable[..., Result], *args: object, timeout: float | None = None) -> Result:
        """Run ``operation(*args)`` in a worker, within the time limit (``timeout``, else the usual one).

        A worker that dies on the file, or is still at it when the limit is
        reached, means NotAVideo: the file is hostile or broken, and the workers
        are replaced. Work of other requests that stopped with them is not
        theirs to answer for: it runs again on the new workers.
        """
        while True:
            pool = self._executor()
            try:
                work = asyncio.get_running_loop().run_in_executor(pool, operation, *args)
                return await asyncio.wait_for(work, timeout or self._timeout)
            except TimeoutError:
                self._stopped_for_time.add(pool)
                self._stop(pool)
                raise NotAVideo(f"reading the file took longer than {timeout or self._timeout:g} s") from None
            except BrokenProcessPool:
                if pool in self._stopped_for_time:
                    continue
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
