"""A video's renditions: the job that makes them, how they are published beside it, what is known of them.

The ``renditions`` job (``app.jobs``, ``derived.py``) of a described version has a media
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

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.jobs.runner import Report
from app.library.derived import MadeFromVideos
from app.media.info import Made, Variant
from app.storage.base import StoredFile

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


def renditions_of(row_renditions: dict[str, Any] | None, etag: str | None) -> RenditionSet | None:
    """The renditions a catalog row records, if they are of its version ``etag``."""
    if not row_renditions or etag is None or row_renditions.get("source_etag") != etag:
        return None
    return RenditionSet.from_dict(row_renditions)


class Renditions(MadeFromVideos[RenditionSet]):
    """Makes and publishes the renditions of the videos of one store (the ``renditions`` job)."""

    sidecar = SIDECAR
    folders = FOLDERS

    @property
    def enabled(self) -> bool:
        """Off with an empty ladder."""
        return bool(self.settings.ladder)

    async def _make(self, name: str, source: StoredFile, folder: Path, version: str,
                    report: Report) -> RenditionSet:
        made = await self._media.make_renditions(await source.media_location(), name, str(folder), version,
                                                 self.settings, report, self._timeout)
        return _set(source.etag, version, made)

    def _parse(self, raw: dict[str, Any]) -> RenditionSet:
        return RenditionSet.from_dict(raw)

    async def _record(self, name: str, made: RenditionSet) -> None:
        await self._catalog.set_renditions(name, made.source_etag, made.to_dict())

    @staticmethod
    def _publishing_order(path: str) -> tuple[int, str]:
        """Segments and the web MP4 first, then each rendition's playlist, the master playlist last."""
        if path == MASTER:
            return 2, path
        return (1 if path.endswith(".m3u8") else 0), path


def _set(etag: str, version: str, made: Made) -> RenditionSet:
    return RenditionSet(etag, version, made.variants, made.audio, made.web)
