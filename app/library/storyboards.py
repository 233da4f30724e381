"""A video's storyboard (seek previews): the job that makes it, how it is published beside the video, what is
known of it.

The ``storyboard`` job (``app.jobs``) of a described version that has pictures has a media worker make the
sprite sheets and the WebVTT thumbnails track in a local folder (``app/media/storyboard.py``), then publishes
them into the store, beside the video, under a *storyboard version* drawn from the source's ETag and the
settings: every sprite, then the track that names them; then a JSON sidecar that says what was made (so the
catalog can be rebuilt without making it again); then the catalog; and last the storyboard files of other
versions go (only under ``storyboard/``: renditions and the rest live beside them). A version replaced
meanwhile is not published at all.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from app.catalog.catalog import Catalog
from app.core.errors import NotFound
from app.jobs.queue import Job
from app.jobs.runner import Report
from app.library.derived import is_current, kept, made_version, publish_folder, remove_others
from app.media.info import STORYBOARD_TRACK as TRACK, StoryboardMade, StoryboardSettings
from app.media.workers import MediaWorkers
from app.storage.base import Store, StoredFile

SIDECAR = "storyboard"
FOLDERS = ("storyboard/",)
"""The storyboards' part of the folder of files made from a video."""


@dataclass(frozen=True)
class Storyboard:
    """The storyboard made of one version of a video: the storyboard version its files are under, and what
    ``storyboard.make`` says it made."""

    source_etag: str
    version: str
    made: StoryboardMade

    @property
    def named_by(self) -> str:
        """The track, which names the sprites."""
        return f"storyboard/{self.version}/{TRACK}"

    def owns(self, path: str) -> bool:
        return path.startswith(f"storyboard/{self.version}/")

    def to_dict(self) -> dict[str, Any]:
        return {"source_etag": self.source_etag, "version": self.version, **asdict(self.made)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Storyboard:
        fields = dict(raw)
        return cls(fields.pop("source_etag"), fields.pop("version"), StoryboardMade(**fields))


def storyboard_of(row_storyboard: dict[str, Any] | None, etag: str | None) -> Storyboard | None:
    """The storyboard a catalog row records, if it is of the row's version ``etag``."""
    if not row_storyboard or etag is None or row_storyboard.get("source_etag") != etag:
        return None
    return Storyboard.from_dict(row_storyboard)


def _publishing_order(path: str) -> tuple[bool, str]:
    """The sprites first, the track that names them last."""
    return path.endswith(TRACK), path


class Storyboards:
    """Makes, publishes and finds the storyboards of the videos of one store."""

    def __init__(self, store: Store, media: MediaWorkers, catalog: Catalog, settings: StoryboardSettings) -> None:
        self._store = store
        self._media = media
        self._catalog = catalog
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return self.settings.tiles > 0

    async def run(self, job: Job, report: Report) -> None:
        """The ``storyboard`` job: make the storyboard of the version stored now, unless its sidecar says it was
        made already; record it in the catalog, and remove those of other versions. Nothing when storyboards
        are turned off (``VIDEO_STORYBOARD_TILES=0``) or the video has no pictures."""
        if not self.enabled:
            return
        try:
            source = await self._store.open(job.video)
        except NotFound:
            return
        try:
            version = made_version(source.etag, self.settings)
            made = (await kept(self._store, job.video, SIDECAR, Storyboard.from_dict, source.etag, version)
                    or await self._make(job.video, source, version))
        finally:
            source.close()
        if made is None:
            return
        report(1.0)
        await self._catalog.set_storyboard(job.video, made.source_etag, made.to_dict())
        await remove_others(self._store, job.video, FOLDERS, made.owns)

    async def _make(self, name: str, source: StoredFile, version: str) -> Storyboard | None:
        """Make and publish the storyboard of the opened ``source``; None if it has no pictures, or a newer
        version is stored by then."""
        async with self._store.staged_folder() as folder:
            made = await self._media.make_storyboard(await source.media_location(), name, str(folder), version,
                                                     self.settings)
            if made is None or not await is_current(self._store, name, source.etag):
                return None
            await publish_folder(self._store, name, folder, _publishing_order)
        storyboard = Storyboard(source.etag, version, made)
        await self._store.write_sidecar(name, SIDECAR, json.dumps(storyboard.to_dict()).encode())
        return storyboard
