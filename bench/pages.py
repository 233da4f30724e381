"""The libraries the page rows list: one small video hard-linked under many names in the service's store.

Hard links cost no disk and no copying, so a library of 20,000 videos takes
seconds to lay out. The one video is described by the service first, and its
sidecars (metadata and poster, in the store's hidden folder) are linked for
every other name too, as copying a store with its hidden folder would bring
them: a link's inode, size and mtime are its source's, so it has the same ETag
and its description is found rather than probed again. The service learns of
the new files from ``python -m app reindex`` run beside it with its settings,
as an operator would after copying files in; the library counts as ready once
the listing's ``total`` holds every video. Their descriptions trail behind in
the service's worker (a job per video, about 36 a second on an idle 2-core
machine, far fewer under load), so the pages are measured with that backlog
queued, as they are right after someone copies a library in; waiting for it
would take over 9 minutes for 20,000 videos.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.storage.base import SIDECAR_DIR, SIDECAR_KINDS
from bench.load import BenchError
from tests.media import make_video
from tests.servers import REPO

PAGE_LIMIT = 20
"""The page size the rows measure, as the web pages ask for."""
PREFIX = "bench-page-"
POLL_S = 1.0
REINDEX_TIME_LIMIT_S = 300.0
LISTING_TIME_LIMIT_S = 60.0
DESCRIBE_TIME_LIMIT_S = 60.0


class PageLibrary:
    """The page videos in the service's store, grown on demand, and the URLs of the pages measured."""

    def __init__(self, store: Path, service_url: str, settings: dict[str, str]) -> None:
        self._store = store
        self._url = service_url
        self._settings = settings
        self._size = 0
        self._others: int | None = None  # the videos that are not page videos, counted before adding any

    def page_url(self, size: int, deep: bool) -> str:
        """The URL of the first page of a library of ``size`` videos, or of the page half way through it."""
        self.grow_to(size)
        if not deep:
            return f"{self._url}/video?limit={PAGE_LIMIT}"
        half = self._listing(limit=1, offset=self._expected_total() // 2 - 1)
        return f"{self._url}/video?limit={PAGE_LIMIT}&cursor={half['next_cursor']}"

    def grow_to(self, size: int) -> None:
        """Make the store hold ``size`` page videos and the service's listing all of them."""
        if size == self._size:
            return
        if size < self._size:
            raise BenchError(f"the page library only grows: it holds {self._size} videos, {size} were asked for")
        print(f"laying out a library of {size} videos ...", file=sys.stderr, flush=True)
        if self._others is None:
            self._others = self._listing(limit=1)["total"]
            self._describe_source()
        for index in range(max(self._size, 1), size):
            self._link(index)
        self._size = size
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "app", "reindex"], cwd=REPO, env={**os.environ, **self._settings},
                       capture_output=True, check=True, timeout=REINDEX_TIME_LIMIT_S)
        _wait(lambda: self._listing(limit=1)["total"] == self._expected_total(),
              time.monotonic() + LISTING_TIME_LIMIT_S, f"the listing to hold {self._expected_total()} videos")
        print(f"  listed in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    def remove(self) -> None:
        """Take the page videos and their sidecars out of the store, so a kept data directory is as it was."""
        for name in _names(self._store):
            (self._store / name).unlink()
            for kind in SIDECAR_KINDS:
                (self._store / SIDECAR_DIR / f"{name}.{kind}").unlink(missing_ok=True)
        self._size = 0

    def _describe_source(self) -> None:
        """Store the one real video and have the service describe it (a request by name asks for that)."""
        self.remove()  # what an interrupted run left
        make_video(self._store / _name(0), seconds=0.2, width=64, height=48, audio_codec=None)
        url = f"{self._url}/video/{_name(0)}"
        _wait(lambda: httpx.get(url, timeout=10).json()["status"] != "processing",
              time.monotonic() + DESCRIBE_TIME_LIMIT_S, f"{_name(0)} to be described")

    def _link(self, index: int) -> None:
        """One more name for the source video, with the sidecars it was given."""
        os.link(self._store / _name(0), self._store / _name(index))
        for kind in SIDECAR_KINDS:
            sidecar = self._store / SIDECAR_DIR / f"{_name(0)}.{kind}"
            if sidecar.exists():
                os.link(sidecar, sidecar.with_name(f"{_name(index)}.{kind}"))

    def _expected_total(self) -> int:
        return (self._others or 0) + self._size

    def _listing(self, **params: object) -> dict:
        answer = httpx.get(f"{self._url}/video", params=params, timeout=60)
        if answer.status_code != 200:
            raise BenchError(f"GET /video answered {answer.status_code}: {answer.text[:200]}")
        return answer.json()


def _wait(condition: Callable[[], bool], deadline: float, what: str) -> None:
    """Poll ``condition`` until it holds; BenchError once ``deadline`` (monotonic) has passed."""
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"gave up waiting for {what}")
        time.sleep(POLL_S)


def _name(index: int) -> str:
    return f"{PREFIX}{index:05d}.mp4"


def _names(store: Path) -> list[str]:
    return [path.name for path in store.glob(f"{PREFIX}*.mp4")]
