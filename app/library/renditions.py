"""A video's renditions: the job that makes them, how they are published beside it, what is known of them.

The ``renditions`` job (``app.jobs``) of a described version has a media
worker make the web MP4 and HLS ladder in a local folder (``app/media/
renditions.py``), then publishes them into the store, beside the video, under
a *rendition version* drawn from the source's ETag and the settings: every
segment, then each rendition's playlist, then the master playlist, so that
nothing names a file that is not there yet; then a JSON sidecar that says
what was made (so the catalog can be rebuilt without transcoding again); then
the catalog; and last the files of older versions go. A job that is killed
leaves at most files no playlist names, which the next try replaces or
removes; a version replaced meanwhile is not published at all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from app.catalog.catalog import Catalog
from app.core.errors import NotFound
from app.jobs.queue import Job
from app.jobs.runner import Report
from app.library.derived import is_current, kept, made_version, publish_folder, remove_others
from app.media.info import Made, RenditionSettings, Variant
from app.media.workers import MediaWorkers
from app.storage.base import Store, StoredFile

log = logging.getLogger(__name__)

MASTER = "hls/master.m3u8"
SIDECAR = "renditions"
FOLDERS = ("hls/", "web/")
"""The renditions' part of the folder of files made from a video: others (storyboards, captions) live beside them."""


@dataclass(frozen=True)
class RenditionSet:
    """What was made of one version of a video: the rendition version its files are under, and the files."""

    source_etag: str
    version: str
    variants: tuple[Variant, ...]
    audio: bool
    web: bool

    @property
    def web_path(self) -> str | None:
        return f"web/{self.version}.mp4" if self.web else None

    named_by = MASTER

    def owns(self, path: str) -> bool:
        """Whether ``path`` is one of this set's files (the master playlist is everyone's)."""
        return path == MASTER or path.startswith(f"hls/{self.version}/") or path == self.web_path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RenditionSet:
        variants = tuple(Variant(**variant) for variant in raw["variants"])
        return cls(raw["source_etag"], raw["version"], variants, raw["audio"], raw["web"])


def rendition_version(etag: str, settings: RenditionSettings) -> str:
    """The name of the renditions of version ``etag`` made with ``settings``: new settings make new files."""
    return made_version(etag, settings)


def renditions_of(row_renditions: dict[str, Any] | None, etag: str | None) -> RenditionSet | None:
    """The renditions a catalog row records, if they are of its version ``etag``."""
    if not row_renditions or etag is None or row_renditions.get("source_etag") != etag:
        return None
    return RenditionSet.from_dict(row_renditions)


class Renditions:
    """Makes, publishes and finds the renditions of the videos of one store."""

    def __init__(self, store: Store, media: MediaWorkers, catalog: Catalog, settings: RenditionSettings,
                 timeout_seconds: float) -> None:
        self._store = store
        self._media = media
        self._catalog = catalog
        self.settings = settings
        self._timeout = timeout_seconds

    @property
    def enabled(self) -> bool:
        return bool(self.settings.ladder)

    async def run(self, job: Job, report: Report) -> None:
        """The ``renditions`` job: make the renditions of the version stored now, unless its sidecar says they
        were made already; record them in the catalog, and remove those of older versions. With renditions
        turned off (an empty ladder) it does nothing."""
        if not self.enabled:
            return
        try:
            source = await self._store.open(job.video)
        except NotFound:
            return
        try:
            made = (await kept(self._store, job.video, SIDECAR, RenditionSet.from_dict, source.etag,
                               rendition_version(source.etag, self.settings))
                    or await self._make(job.video, source, report))
        finally:
            source.close()
        if made is None:
            return
        report(1.0)
        await self._catalog.set_renditions(job.video, made.source_etag, made.to_dict())
        await remove_others(self._store, job.video, FOLDERS, made.owns)

    async def _make(self, name: str, source: StoredFile, report: Report) -> RenditionSet | None:
        """Make and publish the renditions of the opened ``source``; None if a newer version is stored by then."""
        version = rendition_version(source.etag, self.settings)
        async with self._store.staged_folder() as folder:
            made = await self._media.make_renditions(await source.media_location(), name, str(folder), version,
                                                     self.settings, report, self._timeout)
            if not await is_current(self._store, name, source.etag):
                return None
            renditions = _set(source.etag, version, made)
            await publish_folder(self._store, name, folder, _publishing_order)
        await self._store.write_sidecar(name, SIDECAR, json.dumps(renditions.to_dict()).encode())
        return renditions


def _set(etag: str, version: str, made: Made) -> RenditionSet:
    return RenditionSet(etag, version, made.variants, made.audio, made.web)


def _publishing_order(path: str) -> tuple[int, str]:
    """Segments and the web MP4 first, then each rendition's playlist, the master playlist last."""
    if path == MASTER:
        return 2, path
    return (1 if path.endswith(".m3u8") else 0), path
