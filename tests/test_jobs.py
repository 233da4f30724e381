"""Durable jobs: the queue in the catalog's database (claims, leases, retries, progress) and the worker that runs it,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog.catalog import Catalog
from app.catalog.database import make_engine
from app.catalog.tables import JobRow
from app.core.errors import NotAVideo
from app.jobs.queue import BACKGROUND, Job, JobQueue, RetryPolicy, WorkState
from app.jobs.runner import JobRunner, Report
from tests.helpers import WAIT

pytestmark = pytest.mark.anyio

MakeQueue = Callable[..., JobQueue]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The engine of a migrated, empty catalog database (SQLite, and PostgreSQL)."""
    engine = make_engine(database_url)
    await Catalog(engine).migrate()
    yield engine
    await engine.dispose()


@pytest.fixture
def make_queue(engine: AsyncEngine) -> MakeQueue:
    """Queues over the one catalog database, each with its own retry policy."""
    def build(attempts: int = 3, first_delay: float = 0.0, lease: float = 30.0) -> JobQueue:
        return JobQueue(engine, RetryPolicy(attempts, first_delay, lease))

    return build


@pytest.fixture
def queue(make_queue: MakeQueue) -> JobQueue:
    return make_queue()


async def _claimed(queue: JobQueue) -> Job:
    job = await queue.claim()
    assert job is not None
    return job


async def test_a_queued_job_is_claimed_by_one_of_two_workers_claiming_at_once(queue):
    await queue.enqueue("clip.mp4", "describe", "e1")
    claims = await asyncio.gather(queue.claim(), queue.claim())
    assert sorted(job is None for job in claims) == [False, True]


async def test_asking_twice_for_the_same_version_queues_the_work_once(queue):
    await queue.enqueue("clip.mp4", "describe", "e1")
    await queue.enqueue("clip.mp4", "describe", "e1")
    await _claimed(queue)
    assert await queue.claim() is None


async def test_a_new_version_queues_the_work_again_after_it_was_done(queue):
    await queue.enqueue("clip.mp4", "describe", "e1")
    await queue.finish(await _claimed(queue))
    await queue.enqueue("clip.mp4", "describe", "e2")
    assert (await _claimed(queue)).etag == "e2"


async def test_a_video_whose_jobs_are_done_is_ready(queue):
    await queue.enqueue("clip.mp4", "describe")
    await queue.finish(await _claimed(queue))
    assert await queue.state("clip.mp4") == WorkState("ready", 1.0)


async def test_a_video_is_processing_with_the_progress_its_worker_last_wrote(queue):
    await queue.enqueue("clip.mp4", "describe")
    assert await queue.heartbeat(await _claimed(queue), 0.25)
    assert await queue.state("clip.mp4") == WorkState("processing", 0.25)


async def test_a_job_whose_lease_ran_out_is_claimed_again_and_counts_a_try(make_queue):
    queue = make_queue(lease=-1)  # every lease has run out as soon as it is taken
    await queue.enqueue("clip.mp4", "describe")
    first = await _claimed(queue)
    second = await _claimed(queue)
    assert (first.id, first.attempts, second.attempts) == (second.id, 1, 2)


async def test_a_worker_that_lost_its_lease_can_no_longer_change_the_job(make_queue):
    queue = make_queue(lease=-1)
    await queue.enqueue("clip.mp4", "describe")
    lost = await _claimed(queue)
    await _claimed(queue)
    assert not await queue.heartbeat(lost, 0.9)
    await queue.finish(lost)
    assert (await queue.state("clip.mp4")).status == "processing"


async def test_a_failed_try_waits_before_the_next_and_keeps_its_reason(make_queue):
    queue = make_queue(first_delay=3600)
    await queue.enqueue("clip.mp4", "describe")
    await queue.fail(await _claimed(queue), "the worker stopped")
    assert await queue.claim() is None
    assert await queue.state("clip.mp4") == WorkState("processing", 0.0)


async def test_a_failed_try_runs_again_once_its_wait_is_over(make_queue):
    queue = make_queue(first_delay=0)
    await queue.enqueue("clip.mp4", "describe")
    await queue.fail(await _claimed(queue), "the worker stopped")
    assert (await _claimed(queue)).attempts == 2


def test_the_wait_doubles_with_each_try():
    policy = RetryPolicy(attempts=5, first_delay=10, lease=30)
    assert [policy.delay(attempts) for attempts in (1, 2, 3, 4)] == [10, 20, 40, 80]


async def test_after_its_last_try_a_job_has_failed_for_good_with_the_reason(make_queue):
    queue = make_queue(attempts=2, first_delay=0)
    await queue.enqueue("clip.mp4", "describe")
    await queue.fail(await _claimed(queue), "first")
    await queue.fail(await _claimed(queue), "the file could not be read")
    assert await queue.claim() is None
    assert await queue.state("clip.mp4") == WorkState("failed", 0.0, "the file could not be read")


async def test_a_job_whose_worker_died_on_its_last_try_fails_for_good(make_queue):
    queue = make_queue(attempts=1, lease=-1)
    await queue.enqueue("clip.mp4", "describe")
    await _claimed(queue)
    await queue.give_up_abandoned()
    assert await queue.claim() is None
    assert (await queue.state("clip.mp4")).status == "failed"


async def test_asking_again_for_a_version_that_failed_for_good_does_not_retry_it(make_queue):
    queue = make_queue(attempts=1)
    await queue.enqueue("clip.mp4", "describe", "e1")
    await queue.fail(await _claimed(queue), "unreadable")
    await queue.enqueue("clip.mp4", "describe", "e1")
    assert await queue.claim() is None


async def test_a_released_job_is_claimed_again_without_counting_a_try(queue):
    await queue.enqueue("clip.mp4", "describe")
    await queue.release(await _claimed(queue))
    assert (await _claimed(queue)).attempts == 1


async def test_urgent_work_is_claimed_before_a_scans_backlog(queue):
    await queue.enqueue_many(["old-1.mp4", "old-2.mp4"], "describe", priority=BACKGROUND)
    await queue.enqueue("upload.mp4", "describe")
    assert (await _claimed(queue)).video == "upload.mp4"


async def test_a_forgotten_videos_job_is_lost_to_its_worker(queue):
    await queue.enqueue("clip.mp4", "describe")
    job = await _claimed(queue)
    await queue.forget("clip.mp4")
    assert not await queue.heartbeat(job, 0.5)
    assert await queue.state("clip.mp4") is None


async def _settled(queue: JobQueue, video: str) -> WorkState:
    """The video's state once no job of it is unfinished, woken by each change the queue makes."""
    async with asyncio.timeout(WAIT):
        while (state := await queue.state(video)) is None or state.status == "processing":
            await queue.changed(WAIT)
    return state


@asynccontextmanager
async def running(runner: JobRunner) -> AsyncIterator[asyncio.Task[None]]:
    """``runner`` at work for the block, then stopped (and waited for)."""
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_runner_runs_a_job_with_its_kinds_handler_and_records_it_done(queue):
    seen: list[tuple[str, str | None]] = []

    async def describe(job: Job, report: Report) -> None:
        seen.append((job.video, job.etag))

    await queue.enqueue("clip.mp4", "describe", "e1")
    async with running(JobRunner(queue, {"describe": describe}, concurrency=1, poll_seconds=WAIT)):
        assert await _settled(queue, "clip.mp4") == WorkState("ready", 1.0)
    assert seen == [("clip.mp4", "e1")]


async def test_the_runner_retries_a_failing_job_until_it_fails_for_good_with_the_refusals_words(make_queue):
    queue = make_queue(attempts=2, first_delay=0)
    tries: list[int] = []

    async def unreadable(job: Job, report: Report) -> None:
        tries.append(job.attempts)
        raise NotAVideo("the file could not be read (the media worker stopped)")

    await queue.enqueue("clip.mp4", "describe")
    async with running(JobRunner(queue, {"describe": unreadable}, concurrency=1, poll_seconds=0.05)):
        state = await _settled(queue, "clip.mp4")
    assert (tries, state) == ([1, 2], WorkState("failed", 0.0, "the file could not be read (the media worker stopped)"))


async def test_the_runner_does_not_show_users_the_words_of_its_own_faults(make_queue):
    queue = make_queue(attempts=1)

    async def broken(job: Job, report: Report) -> None:
        raise RuntimeError("/secret/path/to/store")

    await queue.enqueue("clip.mp4", "describe")
    async with running(JobRunner(queue, {"describe": broken}, concurrency=1, poll_seconds=WAIT)):
        state = await _settled(queue, "clip.mp4")
    assert state.status == "failed" and "/secret" not in (state.reason or "")


async def test_the_runner_abandons_work_whose_job_was_taken_from_it(make_queue):
    queue = make_queue(lease=0.3)  # a heartbeat every 0.1 s
    started, abandoned = asyncio.Event(), asyncio.Event()

    async def endless(job: Job, report: Report) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            abandoned.set()

    await queue.enqueue("clip.mp4", "describe")
    async with running(JobRunner(queue, {"describe": endless}, concurrency=1, poll_seconds=WAIT)):
        async with asyncio.timeout(WAIT):
            await started.wait()
            await queue.forget("clip.mp4")
            await abandoned.wait()


async def test_a_stopped_runner_puts_its_running_job_back_in_the_queue(queue):
    started = asyncio.Event()

    async def endless(job: Job, report: Report) -> None:
        started.set()
        await asyncio.Event().wait()

    await queue.enqueue("clip.mp4", "describe")
    async with running(JobRunner(queue, {"describe": endless}, concurrency=1, poll_seconds=WAIT)):
        async with asyncio.timeout(WAIT):
            await started.wait()
    assert (await _claimed(queue)).attempts == 1


async def test_the_runner_runs_no_more_jobs_at_once_than_its_concurrency(queue, engine):
    started: list[str] = []
    two_started, release = asyncio.Event(), asyncio.Event()

    async def held(job: Job, report: Report) -> None:
        started.append(job.video)
        if len(started) == 2:
            two_started.set()
        await release.wait()

    videos = [f"clip-{number}.mp4" for number in range(4)]
    await queue.enqueue_many(videos, "describe")
    async with running(JobRunner(queue, {"describe": held}, concurrency=2, poll_seconds=WAIT)):
        async with asyncio.timeout(WAIT):
            await two_started.wait()
        async with engine.connect() as connection:
            at_once = await connection.scalar(select(func.count()).where(JobRow.status == "running"))
        release.set()
        for video in videos:
            await _settled(queue, video)
    assert (at_once, len(started)) == (2, 4)
