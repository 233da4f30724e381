"""The one pipeline every upload goes through before it becomes a visible video.

Whatever way the bytes arrived (a form, a raw PUT, a resumable upload), they
sit in a staged file on local disk. Here they are proven to be a whole video
(NotAVideo otherwise), rewritten with the MP4 index first when a browser would
otherwise have to fetch the end of the file before playing, and published.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import NotAVideo
from app.media.info import MediaInfo
from app.media.workers import MediaWorkers
from app.storage.base import Publish, StagedFile, Store


@dataclass(frozen=True)
class Ingested:
    """A published upload: the name it got, and the media its check found (None: stored as any file)."""

    name: str
    media: MediaInfo | None


class IngestPipeline:
    """Validate, faststart and publish uploads into one store."""

    def __init__(self, store: Store, media: MediaWorkers, accept_any_file: bool) -> None:
        self._store = store
        self._media = media
        self._accept_any_file = accept_any_file

    async def run(self, staged: StagedFile, name: str, mode: Publish) -> Ingested:
        """Validate, faststart and publish ``staged`` as ``name``; what was published.

        ``accept_any_file`` stores what is not a video unchanged instead of refusing
        it; a video is still probed and gets its index first like any other.
        """
        try:
            check = await self._media.validate_upload(str(staged.path), name)
        except NotAVideo:
            if not self._accept_any_file:
                raise
            return Ingested(await self._store.publish(staged, name, mode), None)
        if check.needs_faststart:
            async with self._store.staged() as remuxed:
                if await self._media.remux_faststart(str(staged.path), str(remuxed.path), name, check.info.container):
                    return Ingested(await self._store.publish(remuxed, name, mode), check.info)
        return Ingested(await self._store.publish(staged, name, mode), check.info)
