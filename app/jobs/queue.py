"""The queue of durable jobs, kept in the catalog's database so that it needs no other server.

Every change is one statement that checks what it relies on in the database
itself, so that any number of workers in any number of processes share one
queue. A claim is one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING``:
on PostgreSQL the inner select takes ``FOR UPDATE SKIP LOCKED``, so two
workers never take one job and neither waits for the other; on SQLite a write
statement holds the database's one write lock from its start, which does the
same. A job is held by a lease that its worker renews (the heartbeat, which
also writes its progress); a worker that dies stops renewing, and once the
lease has run out another worker claims the job again. Every write of a worker
names the token it claimed with, so a worker that lost its lease can no longer
change the job.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog.database import answered, upsert_insert, write
from app.catalog.tables import JobRow, VideoRow

URGENT = 0
"""The priority of work someone waits for (an upload's, a request's)."""
BACKGROUND = 1
"""The priority of work a scan found (files copied in by hand): done when nothing urgent waits."""

_BATCH = 500  # rows per statement when a scan enqueues many: well under SQLite's limit of bound parameters


@dataclass(frozen=True)
class Job:
    """A claimed job, as its worker sees it."""

    id: int
    video: str
    kind: str
    etag: str | None
    attempts: int
    priority: int
    token: str


@dataclass(frozen=True)
class WorkState:
    """Where a video's media work stands: ``processing`` (with progress from 0 to 1), ``ready`` or ``failed``."""

    status: str
    progress: float
    reason: str | None = None


READY = WorkState("ready", 1.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a job is tried and how long a worker holds it between heartbeats."""

    attempts: int
    first_delay: float
    lease: float

    def delay(self, attempts: int) -> float:
        """The wait before the next try after ``attempts`` tries: doubling from ``first_delay``."""
        return self.first_delay * 2 ** max(0, attempts - 1)


class JobQueue:
    """Enqueue, claim, renew and settle jobs; and say how each video's work stands."""

    def __init__(self, engine: AsyncEngine, policy: RetryPolicy) -> None:
        self._engine = engine
        self.policy = policy
        self._insert = upsert_insert(engine)
        self._changed = asyncio.Event()

    async def enqueue(self, video: str, kind: str, etag: str | None = None, priority: int = URGENT) -> None:
        """Ask for ``kind`` of work on ``video`` (at version ``etag``; None: whatever is stored when it runs),
        starting afresh whatever was done before.

        Work for the same known version that is queued, running or failed for good is left as it is: asking
        twice does it once, and asking again does not retry without end what cannot be done.
        """
        await self.enqueue_many([video], kind, etag, priority)

    async def enqueue_many(self, videos: Iterable[str], kind: str, etag: str | None = None,
                           priority: int = URGENT) -> None:
        now = time.time()
        names = list(videos)
        for start in range(0, len(names), _BATCH):
            rows = [{"video": name, "kind": kind, "etag": etag, "status": "queued", "priority": priority,
                     "attempts": 0, "run_after": now, "lease_until": None, "worker": None, "progress": 0.0,
                     "error": None, "created": now, "updated": now} for name in names[start:start + _BATCH]]
            statement = self._insert(JobRow).values(rows)
            fresh = statement.excluded
            await self._write(statement.on_conflict_do_update(
                index_elements=[JobRow.video, JobRow.kind],
                set_={column: getattr(fresh, column) for column in (
                    "etag", "status", "priority", "attempts", "run_after", "lease_until", "worker", "progress",
                    "error", "updated")},
                where=or_(fresh.etag.is_(None), JobRow.etag.is_distinct_from(fresh.etag),
                          JobRow.status == "done")))

    async def claim(self) -> Job | None:
        """Take the most urgent job that is due, or one whose worker's lease ran out; None if there is none."""
        now = time.time()
        due = or_(and_(JobRow.status == "queued", JobRow.run_after <= now),
                  and_(JobRow.status == "running", JobRow.lease_until < now))
        chosen = (select(JobRow.id).where(due).order_by(JobRow.priority, JobRow.run_after, JobRow.id).limit(1)
                  .with_for_update(skip_locked=True).scalar_subquery())
        token = secrets.token_hex(8)
        row = await self._write(
            update(JobRow).where(JobRow.id == chosen)
            .values(status="running", worker=token, attempts=JobRow.attempts + 1,
                    lease_until=now + self.policy.lease, updated=now)
            .returning(JobRow.id, JobRow.video, JobRow.kind, JobRow.etag, JobRow.attempts, JobRow.priority))
        return None if row is None else Job(*row, token=token)

    async def heartbeat(self, job: Job, progress: float) -> bool:
        """Renew ``job``'s lease and record its progress; False if its worker no longer holds it."""
        now = time.time()
        return await self._write(self._held(job).values(
            lease_until=now + self.policy.lease, progress=progress, updated=now).returning(JobRow.id)) is not None

    async def finish(self, job: Job) -> None:
        """Record ``job`` as done (unless its worker lost it meanwhile)."""
        await self._write(self._held(job).values(status="done", progress=1.0, lease_until=None, error=None,
                                                 updated=time.time()))

    async def fail(self, job: Job, reason: str) -> None:
        """Record a failed try: the job waits and runs again, or, after its last try, has failed for good."""
        now = time.time()
        if job.attempts < self.policy.attempts:
            values: dict[str, Any] = {"status": "queued", "run_after": now + self.policy.delay(job.attempts)}
        else:
            values = {"status": "failed"}
        await self._write(self._held(job).values(**values, worker=None, lease_until=None, error=reason,
                                                 updated=now))

    async def release(self, job: Job) -> None:
        """Put back a job its worker is stopping before it ends (the server shuts down): not a failed try."""
        await self._write(self._held(job).values(status="queued", attempts=JobRow.attempts - 1, worker=None,
                                                 lease_until=None, run_after=time.time(), updated=time.time()))

    async def give_up_abandoned(self) -> None:
        """Fail for good the jobs whose worker died on their last try (their lease ran out)."""
        now = time.time()
        await self._write(update(JobRow).where(
            JobRow.status == "running", JobRow.lease_until < now, JobRow.attempts >= self.policy.attempts)
            .values(status="failed", worker=None, lease_until=None, updated=now,
                    error="its worker stopped before finishing, on every try"))

    def _held(self, job: Job) -> Any:
        """An update of ``job`` that changes it only while its worker still holds it."""
        return update(JobRow).where(JobRow.id == job.id, JobRow.worker == job.token, JobRow.status == "running")

    async def states(self, videos: Iterable[str]) -> dict[str, WorkState]:
        """How the work of each of ``videos`` stands; a video with no jobs is left out (nothing to do: ready)."""
        names = list(set(videos))
        if not names:
            return {}
        found: dict[str, list[Any]] = {}
        with answered():
            async with self._engine.connect() as connection:
                for start in range(0, len(names), _BATCH):
                    rows = await connection.execute(
                        select(JobRow.video, JobRow.status, JobRow.progress, JobRow.error)
                        .where(JobRow.video.in_(names[start:start + _BATCH])))
                    for row in rows:
                        found.setdefault(row.video, []).append(row)
        return {video: _state_of(rows) for video, rows in found.items()}

    async def state(self, video: str) -> WorkState | None:
        """How ``video``'s work stands; None when it has no jobs."""
        return (await self.states([video])).get(video)

    async def forget(self, video: str) -> None:
        """Drop the jobs of a video that is gone; a worker still at one finds it lost at its next heartbeat."""
        await self._write(delete(JobRow).where(JobRow.video == video))

    async def forget_missing(self) -> None:
        """Drop the jobs of videos the catalog no longer holds (deleted by hand, as a scan found)."""
        await self._write(delete(JobRow).where(JobRow.video.not_in(select(VideoRow.name))))

    async def forget_all(self) -> None:
        await self._write(delete(JobRow))

    async def changed(self, timeout: float) -> None:
        """Wait until this process changes a job, or ``timeout`` seconds (workers elsewhere change them too)."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    async def _write(self, statement: Any) -> Any:
        """Run one write (StorageFull when the database has no room) and give its first row; wake the waiters."""
        row = await write(self._engine, statement)
        self._changed.set()
        self._changed = asyncio.Event()
        return row


def _state_of(rows: list[Any]) -> WorkState:
    """One state from a video's jobs: processing while any is unfinished, else failed if any failed, else ready."""
    unfinished = [row for row in rows if row.status in ("queued", "running")]
    if unfinished:
        return WorkState("processing", sum(row.progress for row in unfinished) / len(unfinished))
    failed = [row for row in rows if row.status == "failed"]
    if failed:
        return WorkState("failed", 0.0, failed[0].error)
    return READY
