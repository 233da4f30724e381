"""A worker: claims jobs from the queue and runs them, a bounded number at a time, until stopped.

The server runs one itself (``VIDEO_EMBEDDED_WORKERS`` jobs at a time, 0 for
none) and ``python -m app worker`` runs one on its own; any number share a
queue. Each job runs beside a heartbeat that renews its lease and writes its
progress; when the heartbeat finds the job no longer held (its lease ran out
and another worker took it, or its video was deleted), the work is abandoned.
The work itself is a handler per kind of job; a handler must leave nothing
half-done visible, so that a job that is tried again starts clean.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from app.core.errors import ServiceError
from app.jobs.queue import Job, JobQueue

log = logging.getLogger(__name__)

Report = Callable[[float], None]
"""How a handler tells its progress, from 0 to 1 (written at the next heartbeat)."""
Handler = Callable[[Job, Report], Awaitable[None]]


class JobRunner:
    """Run the queue's jobs with ``handlers`` (one per kind), at most ``concurrency`` at a time."""

    def __init__(self, queue: JobQueue, handlers: Mapping[str, Handler], concurrency: int,
                 poll_seconds: float) -> None:
        self._queue = queue
        self._handlers = handlers
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._beat = min(queue.policy.lease / 3, 2.0)

    async def run(self) -> None:
        """Claim and run jobs until cancelled; work still running then goes back to the queue."""
        slots = asyncio.Semaphore(self._concurrency)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                await slots.acquire()
                job = await self._next()
                if job is None:
                    slots.release()
                    await self._queue.changed(self._poll)
                    continue
                task = asyncio.create_task(self._run(job))
                running.add(task)
                task.add_done_callback(lambda done: (running.discard(done), slots.release()))
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _next(self) -> Job | None:
        """The next job to run; None when there is none, or the database cannot be reached (try again later)."""
        try:
            await self._queue.give_up_abandoned()
            return await self._queue.claim()
        except Exception:
            log.exception("could not claim a job; trying again in %s s", self._poll)
            return None

    async def _run(self, job: Job) -> None:
        """Run one job beside its heartbeat, and record how it ended."""
        handler = self._handlers.get(job.kind)
        if handler is None:
            await self._queue.fail(job, f"no worker here knows {job.kind!r} jobs")
            return
        progress = _Progress()
        work = asyncio.ensure_future(handler(job, progress.report))
        try:
            while not (await asyncio.wait({work}, timeout=self._beat))[0]:
                if not await self._queue.heartbeat(job, progress.fraction):
                    log.info("job %s (%s of %r) was taken from this worker; abandoning it", job.id, job.kind,
                             job.video)
                    work.cancel()
                    return
            work.result()
        except asyncio.CancelledError:
            work.cancel()
            await asyncio.shield(self._queue.release(job))
            raise
        except Exception as exc:
            await self._queue.fail(job, _reason(job, exc))
        else:
            await self._queue.finish(job)


class _Progress:
    """The latest progress a handler reported, for the next heartbeat to write."""

    def __init__(self) -> None:
        self.fraction = 0.0

    def report(self, fraction: float) -> None:
        self.fraction = min(1.0, max(0.0, fraction))


def _reason(job: Job, exc: Exception) -> str:
    """What to tell users about a failed try: a refusal's own words; anything else is logged, not shown."""
    if isinstance(exc, ServiceError):
        return str(exc)
    log.error("job %s (%s of %r) failed", job.id, job.kind, job.video, exc_info=exc)
    return "the server failed to process it (its log says why)"
