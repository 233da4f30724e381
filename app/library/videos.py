"""The video library: what each stored video holds, its poster, and listings from the catalog.

Metadata and posters are derived data, kept as sidecars of the store and keyed
by the ETag of the version they were computed from. A replaced video (new
ETag) is probed again on first need, a video copied in by hand gets them on
first need, and a deleted one takes its sidecars along; so nothing stale is
ever served. The probing runs in the media worker processes, a few at a
time, so that streams on the event loop never wait for it.

The catalog (``app.catalog``) mirrors the store so that a page of the library
is one indexed query: every version described here is recorded in it, every
delete through the library removes it, and scans (at start-up and every
``VIDEO_CATALOG_SCAN_SECONDS``) add files copied in by hand and drop files
deleted by hand. A row a scan added is described on its first listing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone

from app.catalog.catalog import DEFAULT_SORT, Catalog, Identity, Version, identity_of, title_for
from app.catalog.tables import VideoRow
from app.core.errors import NotAVideo, NotFound, StorageFull
from app.core.media_types import content_type_for
from app.media.info import MediaInfo, browser_playback
from app.media.workers import MediaWorkers
from app.storage.base import Store, StoredFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRecord:
    """Everything the library knows about one stored version of a video."""

    name: str
    identity: Identity
    size: int
    content_type: str
    uploaded: str
    media: MediaInfo | None
    problem: str | None
    browser_playable: bool
    playback_note: str | None
    has_poster: bool


@dataclass(frozen=True)
class LibraryPage:
    """One page of the library, how many videos it holds in all, and the cursor of the next page."""

    records: list[VideoRecord]
    total: int
    next_cursor: str | None


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
    """Metadata, posters and listings over a store, with the catalog that mirrors it."""

    def __init__(self, store: Store, media: MediaWorkers, catalog: Catalog) -> None:
        self._store = store
        self._media = media
        self._catalog = catalog
        self._ready = False
        self._pending: dict[tuple[str, str], asyncio.Future[_Derived]] = {}
        # Held while a version's poster and JSON are written, so that two versions of a
        # name probed at once cannot leave one's JSON beside the other's poster.
        self._sidecar_writes = asyncio.Lock()

    async def ready(self) -> None:
        """Migrate the catalog and bring it in step with the store, once.

        The app's lifespan does it at start-up; an app driven without its
        lifespan (in-process, through an ASGI transport) has it done by its first request.
        A store that cannot be listed yet (a bucket still being created) does not stop the
        service: what is written through it is catalogued at once, and the periodic scan
        catches up with the rest.
        """
        if self._ready:
            return
        await self._catalog.migrate()
        self._ready = True
        try:
            await self.scan()
        except Exception:
            log.exception("could not scan the store at start-up; the periodic scan will try again")

    async def scan(self) -> None:
        """Make the catalog follow the store: files copied in by hand appear, files deleted by hand go."""
        listed_at = time.time()
        await self._catalog.mirror(await self._store.entries(), listed_at)

    async def reindex(self) -> None:
        """Rebuild the catalog from the store alone."""
        await self._catalog.migrate()
        await self._catalog.clear()
        await self.scan()

    async def describe(self, name: str) -> VideoRecord:
        """The record of the version stored under ``name`` now (NotFound if none), recorded in the catalog.

        Asks the store, not the catalog: a file copied in by hand since the last scan is found and catalogued,
        one deleted by hand is dropped from the catalog.
        """
        await self.ready()
        try:
            source = await self._store.open(name)
        except NotFound:
            await self._catalog.remove(name)
            raise
        size, modified = source.size, source.last_modified
        derived = await self._derived(name, source)
        identity = await self._catalogue(Version(name, size, modified, derived.source_etag,
                                                 asdict(derived.media) if derived.media else None,
                                                 derived.problem, derived.has_poster))
        return _record(name, identity, size, _timestamp(modified), derived)

    async def edit(self, name: str, changes: Mapping[str, str]) -> VideoRecord:
        """Give the video under ``name`` a new title and/or description (``changes``); its record as edited.

        The video is described first, so that a file copied in by hand can be edited before any scan,
        and one deleted by hand is NotFound.
        """
        record = await self.describe(name)
        identity = await self._catalog.edit(name, changes)
        if identity is None:  # deleted between the two
            raise NotFound(name)
        return replace(record, identity=identity)

    async def _catalogue(self, version: Version) -> Identity:
        """Record a described version and give the video's identity.

        With no room to record it, the description stands (a later one records it) and the video keeps the
        identity the catalog holds; one it does not hold yet has none, which the empty id says.
        """
        try:
            return await self._catalog.record(version)
        except StorageFull:
            log.warning("no room to record %r in the catalog", version.name)
            known = await self._catalog.identity(version.name)
            return known or Identity("", title_for(version.name), "")

    async def page(self, limit: int, cursor: str | None = None, offset: int = 0,
                   sort: str = DEFAULT_SORT) -> LibraryPage:
        """A page of the library from the catalog in order ``sort``: after ``cursor``, or ``offset`` rows in.

        Rows whose version is not described yet are described now, each on its own, so one that fails
        cannot take the page down.
        """
        await self.ready()
        found = await self._catalog.page(limit, cursor, offset, sort)
        records = await asyncio.gather(*(self._listed(row) for row in found.videos))
        return LibraryPage([record for record in records if record is not None], await self._catalog.count(),
                           found.next_cursor)

    async def delete(self, name: str) -> None:
        """Remove a video and its sidecars from the store, and it from the catalog."""
        await self.ready()
        try:
            await self._store.delete(name)
        except NotFound:
            await self._catalog.remove(name)
            raise
        await self._catalog.remove(name)

    async def added(self, name: str) -> None:
        """Catalog a video just stored under ``name`` (by an upload that does not describe it itself)."""
        try:
            await self.describe(name)
        except NotFound:  # deleted again at once: nothing to catalog
            pass

    async def poster(self, name: str) -> StoredFile:
        """The poster JPEG of the current version, opened for streaming."""
        if not (await self.describe(name)).has_poster:
            raise NotFound(name)
        return await self._store.open_sidecar(name, "jpg")

    async def close(self) -> None:
        await self._catalog.close()

    async def _listed(self, row: VideoRow) -> VideoRecord | None:
        """The row's record; None if its file was deleted since it was catalogued.

        A described row answers from the catalog alone. One that cannot be
        described (say its sidecar is unreadable) is still listed, with what
        the catalog knows and a note: it is stored and can be downloaded, and
        a user looking for it would rather see it than not.
        """
        if row.etag is not None:
            media = MediaInfo(**row.media) if row.media else None
            return _record(row.name, identity_of(row), row.size, _timestamp(row.modified),
                           _Derived(row.etag, media, row.problem, row.has_poster))
        try:
            return await self.describe(row.name)
        except NotFound:
            return None
        except Exception:
            log.exception("could not describe %r for the library listing", row.name)
            unknown = _Derived("", None, "its metadata could not be read", False)
            return _record(row.name, identity_of(row), row.size, _timestamp(row.modified), unknown)

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


def _record(name: str, identity: Identity, size: int, uploaded: str, derived: _Derived) -> VideoRecord:
    playable, note = browser_playback(derived.media) if derived.media else (False, derived.problem)
    return VideoRecord(
        name=name,
        identity=identity,
        size=size,
        content_type=content_type_for(name),
        uploaded=uploaded,
        media=derived.media,
        problem=derived.problem,
        browser_playable=playable,
        playback_note=note,
        has_poster=derived.has_poster,
    )


async def scan_forever(library: Library, interval: float) -> None:
    """Scan the store every ``interval`` seconds for files copied in or deleted by hand, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            await library.scan()
        except Exception:
            log.exception("the catalog scan failed; trying again in %s s", interval)
