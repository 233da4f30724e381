"""The video library: what each stored video holds, its poster, and listings from the catalog.

Metadata and posters are derived data, kept as sidecars of the store and keyed
by the ETag of the version they were computed from, so nothing stale is ever
served and the catalog can be rebuilt from the store. Working them out (a
probe and a poster) is a durable job (``app.jobs``, kind ``describe``) that
the workers run beside the service: an upload is answered once it is stored
and checked, with the media the check found, and its poster follows; a file
copied in by hand is listed at once and described in the background.

The catalog (``app.catalog``) mirrors the store so that a page of the library
is one indexed query: every version described here is recorded in it, every
delete through the library removes it, and scans (at start-up and every
``VIDEO_CATALOG_SCAN_SECONDS``) add files copied in by hand and drop files
deleted by hand. A video's ``status`` and ``progress`` are those of its jobs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone

from app.catalog.catalog import DEFAULT_SORT, SORTS, Catalog, Identity, Version, identity_of, title_for
from app.catalog.tables import VideoRow
from app.core.errors import NotFound, StorageFull
from app.core.media_types import content_type_for
from app.jobs.kinds import DESCRIBE, FASTSTART, RENDITIONS, STORYBOARD
from app.jobs.queue import BACKGROUND, READY, Job, JobQueue, WorkState
from app.jobs.runner import Report
from app.library.captions import Captions, Track, tracks_of
from app.library.renditions import RenditionSet, renditions_of
from app.library.storyboards import Storyboard, storyboard_of
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
    work: WorkState
    renditions: RenditionSet | None = None
    captions: tuple[Track, ...] = ()
    storyboard: Storyboard | None = None


@dataclass(frozen=True)
class LibraryPage:
    """One page of the library, how many videos it holds in all, and the cursor of the next page."""

    records: list[VideoRecord]
    total: int
    next_cursor: str | None


NO_ROOM_TO_QUEUE = WorkState("failed", 0.0, "the server has no room on its disk to queue this video's processing; "
                                            "it is queued again when the video is next asked for")

SORT_NAMES = tuple(SORTS)
"""The orders a page of the library can be in (``DEFAULT_SORT`` unless asked)."""

PROBE_VERSION = 2
"""Raised when probing learns to say more, or to say it right (2: codecs named as codecs, not decoders).

A sidecar of an older probe is probed again when the catalog does not hold the version's description (a
new catalog, a reindex). The catalog's descriptions are trusted as they are, so raising this also needs a
migration that forgets them (sets ``etag`` to NULL), and a scan's jobs describe every video again.
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
    """Metadata, posters and listings over a store, with the catalog that mirrors it and the jobs that describe it."""

    def __init__(self, store: Store, media: MediaWorkers, catalog: Catalog, jobs: JobQueue,
                 make_renditions: bool, captions: Captions, make_storyboards: bool = False) -> None:
        self._store = store
        self._captions = captions
        self._media = media
        self._catalog = catalog
        self._jobs = jobs
        self._make_renditions = make_renditions
        self._make_storyboards = make_storyboards
        self._ready = False
        # Held while a version's poster and JSON are written, so that two versions of a
        # name described at once cannot leave one's JSON beside the other's poster.
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
        """Make the catalog follow the store: files copied in by hand appear (to be described in the
        background), files deleted by hand go."""
        listed_at = time.time()
        undescribed = await self._catalog.mirror(await self._store.entries(), listed_at)
        await self._jobs.enqueue_many(undescribed, DESCRIBE, priority=BACKGROUND)
        await self._jobs.forget_missing()

    async def reindex(self) -> None:
        """Rebuild the catalog from the store alone (its jobs too: every video is described again)."""
        await self._catalog.migrate()
        await self._catalog.clear()
        await self._jobs.forget_all()
        await self.scan()

    async def describe(self, name: str) -> VideoRecord:
        """The record of the version stored under ``name`` now (NotFound if none), recorded in the catalog.

        Asks the store, not the catalog: a file copied in by hand since the last scan is found and catalogued,
        one deleted by hand is dropped from the catalog. A version that is not described yet is described
        from its sidecar if it has one, else a job is asked to (the record says it is processing).
        """
        await self.ready()
        source = await self._validators(name)
        row = await self._catalog.get(name)
        if row is not None and row.etag == source.etag:
            return _row_record(row, await self._state(name))
        derived = await self._cached(name, source.etag)
        return await self._catalogued(source, name, derived, DESCRIBE if derived is None else None)

    async def added(self, name: str, media: MediaInfo | None, needs_faststart: bool = False) -> VideoRecord:
        """Catalog the version an upload just stored under ``name``, with the ``media`` its check found, and
        have it described (its poster made) by a job, after a job has moved its index first if it
        ``needs_faststart``; its record."""
        await self.ready()
        source = await self._validators(name)
        checked = _Derived(source.etag, media, None, False) if media else None
        return await self._catalogued(source, name, checked, FASTSTART if needs_faststart else DESCRIBE)

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

    async def page(self, limit: int, cursor: str | None = None, offset: int = 0, sort: str = DEFAULT_SORT,
                   query: str | None = None) -> LibraryPage:
        """A page of the library from the catalog in order ``sort``: after ``cursor``, or ``offset`` rows in;
        of the videos whose titles or names hold the words of ``query``, when there is one.

        Answered from the catalog alone: a row not described yet is listed with what the catalog knows
        and the state of its description's job.
        """
        await self.ready()
        found = await self._catalog.page(limit, cursor, offset, sort, query)
        states = await self._jobs.states(row.name for row in found.videos)
        records = [_row_record(row, states.get(row.name, READY)) for row in found.videos]
        return LibraryPage(records, await self._catalog.count(query), found.next_cursor)

    async def delete(self, name: str) -> None:
        """Remove a video and its sidecars from the store, and it and its jobs from the catalog."""
        await self.ready()
        try:
            await self._store.delete(name)
        except NotFound:
            await self._forget(name)
            raise
        await self._forget(name)

    async def work_updates(self, name: str, now: WorkState, poll_seconds: float) -> AsyncIterator[WorkState]:
        """The state of ``name``'s media work, ``now`` first, then each time it changes, until it is no longer
        processing.

        Woken at once by changes this process makes, and every ``poll_seconds`` to see other processes' work.
        """
        yield now
        state = now
        while state.status == "processing":
            await self._jobs.changed(poll_seconds)
            latest = await self._state(name)
            if latest != state:
                yield latest
            state = latest

    async def poster(self, name: str) -> StoredFile:
        """The poster JPEG of the current version, opened for streaming."""
        if not (await self.describe(name)).has_poster:
            raise NotFound(name)
        return await self._store.open_sidecar(name, "jpg")

    async def run_describe(self, job: Job, report: Report) -> None:
        """The ``describe`` job: probe the version stored now and make its poster, unless its sidecars
        already say; keep them, and record the version in the catalog unless a newer one is stored by then.

        A newer version is recorded by its writer and described by its own job (asking for it took this
        job from its worker), so the catalog ends with the newest even if this one's record came last.
        A video deleted meanwhile has nothing to describe. A worker that dies on the file (NotAVideo)
        fails the try: the job is tried again, and fails for good after its last try. A version described
        as media is given its storyboard (when it has pictures) and renditions next, by jobs asked for before
        this one ends (so the video never looks ready in between).
        """
        try:
            source = await self._open(job.video)
            try:
                derived = await self._cached(job.video, source.etag) or await self._probe_and_store(job.video, source)
            finally:
                source.close()
            report(1.0)
            if await self._is_current(job.video, source.etag):
                await self._catalog.redescribe(_version(job.video, source, derived))
                await self._captions.restore(job.video)
                if derived.media is not None:
                    await self._want_made(job, source.etag, derived.media)
        except NotFound:
            return

    async def _want_made(self, job: Job, etag: str, media: MediaInfo) -> None:
        """Ask for what is made of version ``etag``: its storyboard (when it has pictures; quick, so first) and
        its renditions, each unless the catalog has it already or it is turned off."""
        row = await self._catalog.get(job.video)
        wanted = ((STORYBOARD, self._make_storyboards and media.width is not None, storyboard_of),
                  (RENDITIONS, self._make_renditions, renditions_of))
        for kind, wanted_here, made_of in wanted:
            if wanted_here and (row is None or made_of(getattr(row, kind), etag) is None):
                await self._jobs.enqueue(job.video, kind, etag, priority=job.priority)

    async def check_catalog(self) -> None:
        """Return once the catalog's database has answered; raise if it cannot be reached."""
        await self._catalog.check()

    async def close(self) -> None:
        await self._catalog.close()

    async def _open(self, name: str) -> StoredFile:
        """The version stored under ``name`` now, opened; a name no longer stored is forgotten (NotFound)."""
        try:
            return await self._store.open(name)
        except NotFound:
            await self._forget(name)
            raise

    async def _validators(self, name: str) -> StoredFile:
        """The version stored under ``name`` now, for its validators only (closed at once)."""
        source = await self._open(name)
        source.close()
        return source

    async def _forget(self, name: str) -> None:
        await self._catalog.remove(name)
        await self._jobs.forget(name)

    async def _state(self, name: str) -> WorkState:
        return await self._jobs.state(name) or READY

    async def _catalogued(self, source: StoredFile, name: str, derived: _Derived | None,
                          work: str | None) -> VideoRecord:
        """Record ``source``'s version (described by ``derived``, or not yet) in the catalog, and ask a job of
        kind ``work`` (if any) to work on it; its record.

        The row comes before the job: a scan drops the jobs of videos it does not find in the catalog.
        """
        version = _version(name, source, derived)
        identity = await self._catalogue(version)
        captions = await self._tracks(name)
        if work is not None:
            try:
                await self._jobs.enqueue(name, work, source.etag)
            except StorageFull:
                log.warning("no room to queue the description of %r", name)
                return _record(version, identity, derived, NO_ROOM_TO_QUEUE, captions=captions)
        return _record(version, identity, derived, await self._state(name), captions=captions)

    async def _tracks(self, name: str) -> tuple[Track, ...]:
        """The caption tracks of ``name``: they stay with the name across its versions."""
        row = await self._catalog.get(name)
        return tracks_of(row.captions) if row is not None else ()

    async def _catalogue(self, version: Version) -> Identity:
        """Record a version and give the video's identity.

        With no room to record it, the description stands (a later one records it) and the video keeps the
        identity the catalog holds; one it does not hold yet has none, which the empty id says.
        """
        try:
            return await self._catalog.record(version)
        except StorageFull:
            log.warning("no room to record %r in the catalog", version.name)
            known = await self._catalog.identity(version.name)
            return known or Identity("", title_for(version.name), "")

    async def _cached(self, name: str, etag: str) -> _Derived | None:
        """What the JSON sidecar says of version ``etag``; None if it says nothing of it, or cannot be read
        (the describe job then says why in the video's status)."""
        try:
            data = await self._store.read_sidecar(name, "json")
        except OSError:
            log.exception("the metadata sidecar of %r cannot be read", name)
            return None
        if data is None:
            return None
        try:
            derived = _Derived.from_json(data)
        except (ValueError, KeyError, TypeError):
            return None
        return derived if derived.source_etag == etag else None

    async def _probe_and_store(self, name: str, source: StoredFile) -> _Derived:
        """Probe the very bytes of ``source`` and keep the result as sidecars keyed by its ETag."""
        media, problem, poster = await self._media.describe_with_poster(await source.media_location(), name)
        derived = _Derived(source.etag, media, problem, poster is not None)
        try:
            await self._keep(name, derived, poster)
        except StorageFull:
            # Sidecars are a cache: the video is stored all the same, and is probed again on next need.
            log.warning("no room to keep the metadata and poster of %r", name)
            return replace(derived, has_poster=False)
        return derived

    async def _is_current(self, name: str, etag: str) -> bool:
        return (await self._validators(name)).etag == etag

    async def _keep(self, name: str, derived: _Derived, poster: bytes | None) -> None:
        """Write the sidecars of one version, its poster then the JSON that says it has one, unless a newer
        version is stored by then (its own job writes its sidecars)."""
        async with self._sidecar_writes:
            if not await self._is_current(name, derived.source_etag):
                return
            if poster is not None:
                await self._store.write_sidecar(name, "jpg", poster)
            await self._store.write_sidecar(name, "json", derived.to_json())


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def _version(name: str, source: StoredFile, derived: _Derived | None) -> Version:
    """The catalog's view of the opened version ``source``, described by ``derived`` (None: not yet)."""
    if derived is None:
        return Version(name, source.size, source.last_modified, None, None, None, False)
    return Version(name, source.size, source.last_modified, derived.source_etag,
                   asdict(derived.media) if derived.media else None, derived.problem, derived.has_poster)


def _described(row: VideoRow) -> _Derived | None:
    """What the catalog holds of a row's description; None if its version is not described yet."""
    if row.etag is None:
        return None
    return _Derived(row.etag, MediaInfo(**row.media) if row.media else None, row.problem, row.has_poster)


def _row_record(row: VideoRow, state: WorkState) -> VideoRecord:
    """The record of a catalog row's version, with what was made of it and its caption tracks, in the state
    ``state`` of its work."""
    return _record(row, identity_of(row), _described(row), state, renditions_of(row.renditions, row.etag),
                   storyboard_of(row.storyboard, row.etag), tracks_of(row.captions))


def _record(stored: VideoRow | Version, identity: Identity, derived: _Derived | None,
            state: WorkState, renditions: RenditionSet | None = None,
            storyboard: Storyboard | None = None, captions: tuple[Track, ...] = ()) -> VideoRecord:
    """The record of a stored version (a catalog row, or one just recorded), of its work and what was made."""
    media = derived.media if derived else None
    if media:
        playable, note = browser_playback(media)
    else:
        playable, note = False, state.reason or (derived.problem if derived else None)
    return VideoRecord(
        name=stored.name,
        identity=identity,
        size=stored.size,
        content_type=content_type_for(stored.name),
        uploaded=_timestamp(stored.modified),
        media=media,
        problem=derived.problem if derived else None,
        browser_playable=playable,
        playback_note=note,
        has_poster=derived.has_poster if derived else False,
        work=state,
        renditions=renditions,
        storyboard=storyboard,
        captions=captions,
    )


async def scan_forever(library: Library, interval: float) -> None:
    """Scan the store every ``interval`` seconds for files copied in or deleted by hand, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            await library.scan()
        except Exception:
            log.exception("the catalog scan failed; trying again in %s s", interval)
