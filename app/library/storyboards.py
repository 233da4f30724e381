"""A video's storyboard (seek previews): the job that makes it, how it is published beside the video, what is
known of it.

The ``storyboard`` job (``app.jobs``) of a described version that has pictures has a media worker make the
sprite sheets and the WebVTT thumbnails track in a local folder (``app/media/storyboard.py``), then publishes
them into the store, beside the video, as renditions are (``derived.py``): under a *storyboard version* drawn
from the source's ETag and the settings, every sprite, then the track that names them; then a JSON sidecar
that says what was made (so the catalog can be rebuilt without making it again); then the catalog; and last
the storyboard files of other versions go (only under ``storyboard/``: renditions and the rest live beside
them). A version replaced meanwhile is not published at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.jobs.runner import Report
from app.library.derived import MadeFromVideos
from app.media.info import STORYBOARD_TRACK as TRACK, StoryboardMade
from app.storage.base import StoredFile

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


class Storyboards(MadeFromVideos[Storyboard]):
    """Makes and publishes the storyboards of the videos of one store (the ``storyboard`` job): nothing when
    storyboards are turned off (``VIDEO_STORYBOARD_TILES=0``) or a video has no pictures."""

    sidecar = SIDECAR
    folders = FOLDERS

    @property
    def enabled(self) -> bool:
        return self.settings.tiles > 0

    async def _make(self, name: str, source: StoredFile, folder: Path, version: str,
                    report: Report) -> Storyboard | None:
        made = await self._media.make_storyboard(await source.media_location(), name, str(folder), version,
                                                 self.settings, self._timeout)
        return Storyboard(source.etag, version, made) if made is not None else None

    def _parse(self, raw: dict[str, Any]) -> Storyboard:
        return Storyboard.from_dict(raw)

    async def _record(self, name: str, made: Storyboard) -> None:
        await self._catalog.set_storyboard(name, made.source_etag, made.to_dict())

    @staticmethod
    def _publishing_order(path: str) -> tuple[bool, str]:
        """The sprites first, the track that names them last."""
        return path.endswith(TRACK), path
