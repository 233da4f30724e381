"""The video library: what each stored video holds, its poster, and listings.

Metadata and posters are derived data, kept as sidecars of the store and keyed
by the ETag of the version they were computed from. A replaced video (new
ETag) is probed again on first need, a video copied in by hand gets them on
first need, and a deleted one takes its sidecars along; so nothing stale is
ever served. The probing runs in the media worker processes, a few at a
time, so that streams on the event loop never wait for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone

from app.core.errors import NotAVideo, NotFound, StorageFull
from app.core.media_types import content_type_for
from app.media.info import MediaInfo, browser_playback
from app.media.workers import MediaWorkers
from app.storage.base import Entry, Store, StoredFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRecord:
    """Everything the library knows about one stored version of a video."""

    name: str
    size: int
    content_type: str
    uploaded: str
    media: MediaInfo | None
    problem: str | None
    browser_playable: bool
    playback_note: str | None
    has_poster: bool


PROBE_VERSION = 2
"""Raised when probing learns to say more, or to say it right (2: codecs named as codecs, not decoders).

A sidecar of an older probe is probed again on first need, like one of another version of the video.
"""


@dataclass(frozen=True)
class _Derived:
    """What probing a version yields; stored as the JSON sidecar."""

    source_etag: str
    media: MediaInfo | None
    problem: str | None
    has_poster: bool

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "probe_version": PROBE_VERSION}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> _Derived:
        raw = json.loads(data)
        if raw.get("probe_version") != PROBE_VERSION:
            raise ValueError("the sidecar of an older probe")
        media = MediaInfo(**raw["media"]) if raw["media"] else None
        return cls(raw["source_etag"], media, raw["problem"], raw["has_poster"])


class Library:
    """Metadata, posters and listings over a store."""

    def __init__(self, store: Store, media: MediaWorkers) -> None:
        self._store = store
        self._media = media
        self._pending: dict[tuple[str, str], asyncio.Future[_Derived]] = {}
        # Held while a version's poster and JSON are written, so that two versions of a
        # name probed at once cannot leave one's JSON beside the other's poster.
        self._sidecar_writes = asyncio.Lock()

    async def describe(self, name: str) -> VideoRecord:
        """The record of the version stored under ``name`` now (NotFound if none)."""
        source = await self._store.open(name)
        derived = await self._derived(name, source)
        return _record(name, source.size, _timestamp(source.last_modified), derived)

    async def page(self, limit: int, offset: int) -> tuple[list[VideoRecord], int]:
        """A page of the library, newest first, and how many videos there are in all.

        Each entry is described on its own, so one that fails cannot take the page down.
        """
        entries = await self._store.entries()
        wanted = entries[offset : offset + limit]
        records = await asyncio.gather(*(self._listed(entry) for entry in wanted))
        return [record for record in records if record is not None], len(entries)

    async def poster(self, name: str) -> StoredFile:
        """The poster JPEG of the current version, opened for streaming."""
        if not (await self.describe(name)).has_poster:
            raise NotFound(name)
        return await self._store.open_sidecar(name, "jpg")

    async def _listed(self, entry: Entry) -> VideoRecord | None:
        """The entry's record; None if it was deleted since the listing.

        One that cannot be described (say its sidecar is unreadable) is still
        listed, with what the listing knows and a note: it is stored and can be
        downloaded, and a user looking for it would rather see it than not.
        """
        try:
            return await self.describe(entry.name)
        except NotFound:
            return None
        except Exception:
            log.exception("could not describe %r for the library listing", entry.name)
            unknown = _Derived("", None, "its metadata could not be read", False)
            return _record(entry.name, entry.size, _timestamp(entry.modified), unknown)

    async def _cached(self, name: str, etag: str) -> _Derived | None:
        data = await self._store.read_sidecar(name, "json")
        if data is None:
            return None
        try:
            derived = _Derived.from_json(data)
        except (ValueError, KeyError, TypeError):
            return None
        return derived if derived.source_etag == etag else None

    async def _derived(self, name: str, source: StoredFile) -> _Derived:
        """What is known of the opened version ``source``: its sidecar, or a probe of exactly it.

        One lookup per version even when many requests ask at the same time.
        Takes ``source`` over: the lookup closes it, because it may outlive the
        request that opened it, which must not close the file under a worker.
        """
        key = (name, source.etag)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._cached_or_probed(name, source))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        else:
            source.close()
        return await asyncio.shield(pending)

    async def _cached_or_probed(self, name: str, source: StoredFile) -> _Derived:
        """The sidecar of ``source``'s version if it has one, else a probe; closes ``source`` either way."""
        try:
            return await self._cached(name, source.etag) or await self._probe_and_store(name, source)
        finally:
            source.close()

    async def _probe_and_store(self, name: str, source: StoredFile) -> _Derived:
        """Probe the very bytes of ``source`` and keep the result as sidecars keyed by its ETag."""
        try:
            media, problem, poster = await self._media.describe_with_poster(await source.media_location(), name)
        except NotAVideo as exc:  # the worker died on it: say so now, probe again next time
            return _Derived(source.etag, None, str(exc), False)
        derived = _Derived(source.etag, media, problem, poster is not None)
        try:
            await self._keep(name, derived, poster)
        except StorageFull:
            # Sidecars are a cache: the video is stored all the same, and is probed again on next need.
            log.warning("no room to keep the metadata and poster of %r", name)
            return replace(derived, has_poster=False)
        return derived

    async def _keep(self, name: str, derived: _Derived, poster: bytes | None) -> None:
        """Write the sidecars of one version: its poster, then the JSON that says it has one."""
        async with self._sidecar_writes:
            if poster is not None:
                await self._store.write_sidecar(name, "jpg", poster)
            await self._store.write_sidecar(name, "json", derived.to_json())


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def _record(name: str, size: int, uploaded: str, derived: _Derived) -> VideoRecord:
    playable, note = browser_playback(derived.media) if derived.media else (False, derived.problem)
    return VideoRecord(
        name=name,
        size=size,
        content_type=content_type_for(name),
        uploaded=uploaded,
        media=derived.media,
        problem=derived.problem,
        browser_playable=playable,
        playback_note=note,
        has_poster=derived.has_poster,
    )
