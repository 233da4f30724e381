"""The one pipeline every upload goes through before it becomes a visible video.

Whatever way the bytes arrived (a form, a raw PUT, a resumable upload), they
sit in a staged file on local disk. Here they are proven to be a whole video
(NotAVideo otherwise), rewritten with the MP4 index first when a browser would
otherwise have to fetch the end of the file before playing, and published.
Rewriting a large upload takes a while, so above ``VIDEO_INLINE_FASTSTART_BYTES``
the upload is published as sent (it plays, once a player has fetched its end)
and a ``faststart`` job rewrites it in the background (``faststart_stored``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from app.catalog.claims import WriteClaims
from app.core.errors import NotAVideo, NotFound
from app.jobs.runner import Report
from app.media.info import MediaInfo
from app.media.workers import MediaWorkers
from app.storage.base import Publish, StagedFile, Store, StoredFile, stored_now


@dataclass(frozen=True)
class Prepared:
    """An upload ready to publish: the staged file that holds its final bytes, the media its check found
    (None: stored as any file), and whether its index still has to be moved first (by a job)."""

    file: StagedFile
    media: MediaInfo | None
    needs_faststart: bool = False


@dataclass(frozen=True)
class Ingested:
    """A published upload: the name it got, the media its check found (None: stored as any file), and
    whether its index still has to be moved first (by a job)."""

    name: str
    media: MediaInfo | None
    needs_faststart: bool = False


class IngestPipeline:
    """Validate, faststart and publish uploads into one store."""

    def __init__(self, store: Store, media: MediaWorkers, background: MediaWorkers, claims: WriteClaims,
                 accept_any_file: bool, inline_faststart_bytes: int) -> None:
        self._store = store
        self._claims = claims
        self._media = media
        self._background = background
        self._accept_any_file = accept_any_file
        self._inline_faststart_bytes = inline_faststart_bytes

    async def run(self, staged: StagedFile, name: str, mode: Publish) -> Ingested:
        """Validate, faststart and publish ``staged`` as ``name``; what was published."""
        async with self.prepared(staged, name) as ready:
            return await self.publish(ready, name, mode)

    @asynccontextmanager
    async def prepared(self, staged: StagedFile, name: str) -> AsyncIterator[Prepared]:
        """``staged`` validated and, where it pays, remuxed with its index first: ready to publish in the block.

        Kept apart from ``publish`` so that a write that must hold its name's claim (``app.catalog.claims``)
        holds it only while it checks its preconditions and publishes, not while a worker probes or remuxes.
        ``accept_any_file`` stores what is not a video unchanged instead of refusing
        it; a video is still probed and gets its index first like any other.
        """
        try:
            check = await self._media.validate_upload(str(staged.path), name)
        except NotAVideo:
            if not self._accept_any_file:
                raise
            check = None
        if check is None or not check.needs_faststart:
            yield Prepared(staged, check.info if check else None)
            return
        if staged.measure() > self._inline_faststart_bytes:
            yield Prepared(staged, check.info, needs_faststart=True)
            return
        async with self._store.staged() as remuxed:
            if await self._media.remux_faststart(str(staged.path), str(remuxed.path), name, check.info.container):
                yield Prepared(remuxed, check.info)
                return
        yield Prepared(staged, check.info)

    async def publish(self, ready: Prepared, name: str, mode: Publish) -> Ingested:
        """Publish a prepared upload as ``name`` the way ``mode`` says; what was published."""
        published = await self._store.publish(ready.file, name, mode)
        return Ingested(published, ready.media, ready.needs_faststart)

    async def faststart_stored(self, name: str, etag: str | None, report: Report) -> Ingested | None:
        """The ``faststart`` job: rewrite the stored version ``etag`` of ``name`` with its index first.

        What is stored under ``name`` then (the rewrite, or the original when it cannot be rewritten);
        None when that version is no longer stored (replaced or deleted: its successor has work of its own).
        The rewrite is staged and published only if the version is still the one rewritten (checked and
        published under the name's write claim, so a request's write in between is never undone), so a job
        that dies or is tried again leaves nothing half-written. The media workers are the background
        ones (niced).
        """
        try:
            source = await self._store.open(name)
        except NotFound:
            return None
        async with AsyncExitStack() as cleanup:
            cleanup.callback(source.close)
            if etag is not None and source.etag != etag:
                return None
            location = await self._local_copy(source, cleanup)
            check = await self._background.validate_upload(location, name)
            report(0.2)
            remuxed = await cleanup.enter_async_context(self._store.staged())
            rewritten = check.needs_faststart and await self._background.remux_faststart(
                location, str(remuxed.path), name, check.info.container)
            report(0.8)
            async with self._claims.held(name):
                if not await self._still_stored(name, source.etag):
                    return None
                if rewritten:
                    return Ingested(await self._store.publish(remuxed, name, Publish.REPLACE), check.info)
            return Ingested(name, check.info)

    async def _local_copy(self, source: StoredFile, cleanup: AsyncExitStack) -> str:
        """A path of ``source``'s bytes on local disk: the file itself in a local store; for an object, a
        staged copy (FFmpeg rewrites an MP4 by seeking in it, which a URL does badly)."""
        location = await source.media_location()
        if not location.startswith(("http://", "https://")):
            return location
        copy = await cleanup.enter_async_context(self._store.staged())
        copy.require(source.size)
        async for chunk in source.chunks(0, source.size):
            copy.write(chunk)
        copy.sync()
        return str(copy.path)

    async def _still_stored(self, name: str, etag: str) -> bool:
        current = await stored_now(self._store, name)
        return current is not None and current.etag == etag
