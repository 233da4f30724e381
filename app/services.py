"""The long-lived parts of one running service, built once from its settings and shared by every route.

This is the one place that knows which store the settings name; everything
above it sees a ``Store`` and ``UploadSessions`` and nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.requests import Request

from app.catalog.catalog import Catalog
from app.catalog.claims import WriteClaims
from app.catalog.database import make_engine
from app.core.errors import StorageFull, Unavailable
from app.core.settings import Settings
from app.jobs.kinds import DESCRIBE, FASTSTART, RENDITIONS, STORYBOARD
from app.jobs.queue import Job, JobQueue, RetryPolicy
from app.jobs.runner import JobRunner, Report
from app.library.captions import Captions
from app.library.renditions import Renditions
from app.library.storyboards import Storyboards
from app.library.videos import Library, VideoRecord
from app.media.info import RenditionSettings, StoryboardSettings
from app.media.workers import MediaWorkers
from app.storage.base import Publish, StagedFile, Store
from app.storage.local import LocalStore
from app.uploads.ingest import IngestPipeline, Ingested
from app.uploads.local_sessions import LocalUploadSessions
from app.uploads.sessions import UploadSessions


log = logging.getLogger(__name__)

JOB_NICENESS = 10
"""How much lower the CPU priority of the jobs' media workers is than the server's."""


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    library: Library
    uploads: UploadSessions
    media: MediaWorkers  # what requests wait for (checking an upload)
    job_media: MediaWorkers  # what jobs run in the background, niced
    ingest: IngestPipeline
    jobs: JobQueue
    claims: WriteClaims  # who writes which name now, across the instances sharing the catalog
    renditions: Renditions
    captions: Captions
    storyboards: Storyboards

    @classmethod
    def build(cls, settings: Settings) -> Services:
        media = MediaWorkers(settings.media_workers, settings.media_timeout_seconds)
        job_media = MediaWorkers(settings.media_workers, settings.media_timeout_seconds, JOB_NICENESS)
        store, uploads = _s3_parts(settings) if settings.uses_s3 else _local_parts(settings)
        engine = make_engine(settings.catalog_url, settings.database_timeout_seconds)
        jobs = JobQueue(engine, RetryPolicy(settings.job_attempts, settings.job_retry_seconds,
                                            settings.job_lease_seconds))
        catalog = Catalog(engine)
        renditions = Renditions(store, job_media, catalog, RenditionSettings(
            settings.ladder, settings.segment_seconds, settings.rendition_threads, settings.rendition_preset),
            settings.rendition_timeout_seconds)
        storyboards = Storyboards(store, job_media, catalog, StoryboardSettings(
            settings.storyboard_tiles, settings.storyboard_tile_width, settings.storyboard_min_interval_ms),
            settings.rendition_timeout_seconds)
        captions = Captions(store, catalog, settings.caption_max_bytes, settings.caption_max_tracks)
        library = Library(store, job_media, catalog, jobs, renditions.enabled, captions, storyboards.enabled)
        claims = WriteClaims(engine, settings.write_claim_seconds, settings.write_wait_seconds)
        ingest = IngestPipeline(store, media, job_media, claims, settings.accept_any_file,
                                settings.inline_faststart_bytes)
        return cls(settings, store, library, uploads, media, job_media, ingest, jobs, claims, renditions, captions,
                   storyboards)

    def worker(self, concurrency: int) -> JobRunner:
        """A worker that runs this service's jobs, ``concurrency`` at a time."""
        handlers = {DESCRIBE: self.library.run_describe, FASTSTART: self._faststart, RENDITIONS: self.renditions.run,
                    STORYBOARD: self.storyboards.run}
        return JobRunner(self.jobs, handlers, concurrency, self.settings.job_poll_seconds)

    async def catalogue(self, ingested: Ingested) -> VideoRecord:
        """Catalog what an ingest published, and ask for the work it still needs; its record."""
        return await self.library.added(ingested.name, ingested.media, ingested.needs_faststart)

    async def add_upload(self, staged: StagedFile, name: str) -> VideoRecord:
        """Ingest a new upload under a new name (``name`` or a numbered one) and catalog it, all or nothing.

        The catalog's database is asked first, so that one that is down refuses the upload before it is
        published; one that fails (or fills up) between the publish and the record takes the published video
        back, so that an upload answered 503 (or 507) left nothing stored and may simply be sent again.
        """
        await self.library.check_catalog()
        ingested = await self.ingest.run(staged, name, Publish.UNIQUE)
        try:
            return await self.catalogue(ingested)
        except (Unavailable, StorageFull):
            await self._take_back(ingested.name)
            raise

    async def _take_back(self, name: str) -> None:
        try:
            await self.store.delete(name)
        except Exception:
            log.exception("could not take back %r, published but not catalogued: a scan catalogues it", name)

    @asynccontextmanager
    async def writing(self, name: str) -> AsyncIterator[None]:
        """Hold the write claim of ``name`` for the block, the catalog brought up to date first (the claims
        live in it): a write checks its preconditions and acts inside, so no other instance's write to the
        name comes between."""
        await self.library.ready()
        async with self.claims.held(name):
            yield

    async def _faststart(self, job: Job, report: Report) -> None:
        """The ``faststart`` job: the upload with its index first, then (as for any upload) its description."""
        ingested = await self.ingest.faststart_stored(job.video, job.etag, report)
        if ingested is not None:
            await self.catalogue(ingested)

    async def unready(self) -> str | None:
        """Why this instance cannot serve now, in words (None: it can): its store or its database does not
        answer within ``VIDEO_READY_TIMEOUT_SECONDS``, or answers with an error."""
        limit = self.settings.ready_timeout_seconds
        for part, check in (("the store", self.store.check), ("the database", self.library.check_catalog)):
            try:
                async with asyncio.timeout(limit):
                    await check()
            except TimeoutError:
                return f"{part} did not answer within {limit} s"
            except Exception as exc:
                log.warning("readiness: %s cannot be reached: %s", part, exc)
                return f"{part} cannot be reached"
        return None

    async def close(self) -> None:
        """Stop the media workers and let go of the catalog's connections."""
        self.media.close()
        self.job_media.close()
        await self.library.close()


def _local_parts(settings: Settings) -> tuple[Store, UploadSessions]:
    local = LocalStore(settings.local_store_dir, settings.chunk_bytes, settings.min_free_bytes)
    return local, LocalUploadSessions(local.resumable_dir, settings.upload_expiry_seconds, local.space)


def _s3_parts(settings: Settings) -> tuple[Store, UploadSessions]:
    # Imported here so that a local store never loads obstore (about 4 MiB per process).
    from app.storage.s3 import S3VideoStore
    from app.uploads.s3_sessions import S3UploadSessions

    s3 = S3VideoStore.from_settings(settings)
    return s3, S3UploadSessions(s3, settings.staging_path, settings.upload_expiry_seconds)


async def get_services(request: Request) -> Services:
    """FastAPI dependency: the services of the app serving this request."""
    return request.app.state.services
