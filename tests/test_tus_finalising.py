"""A tus upload whose last byte is in while its video is ingested: it is answered, never ingested twice,
never a 500, and never left behind by a server that died meanwhile.

Ingest takes seconds for big files; here it waits at a gate the test opens, so the window is as wide as
a test needs. The app runs in-process over either store (local disk, or S3 on a real SeaweedFS).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from app.uploads.ingest import IngestPipeline
from app.main import create_app
from app.uploads.local_sessions import LocalUploadSessions
from app.storage.space import FreeSpace
from app.core.settings import Settings
from tests.helpers import TUS, WAIT, create, patch
from tests.servers import REPO

pytestmark = pytest.mark.anyio

DATA = b"0123456789"


class Gate:
    """Holds every ingest until opened; says when one is waiting there, and how many came."""

    def __init__(self) -> None:
        self.arrivals = 0
        self.waiting = asyncio.Event()
        self._open = asyncio.Event()

    def hold(self, ingest: Callable[..., Awaitable[str]]) -> Callable[..., Awaitable[str]]:
        async def held(*args: object) -> str:
            self.arrivals += 1
            self.waiting.set()
            await self._open.wait()
            return await ingest(*args)

        return held

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate()
    monkeypatch.setattr(IngestPipeline, "run", gate.hold(IngestPipeline.run))
    return gate


@pytest.fixture
async def client(store_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The service in-process over this test's store (local or S3), taking any file as a video."""
    application = create_app(Settings.from_env({**store_env, "VIDEO_ACCEPT_ANY_FILE": "true"}))
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=WAIT) as http:
        yield http


async def ingesting(client: httpx.AsyncClient, gate: Gate) -> tuple[str, asyncio.Task[httpx.Response]]:
    """An upload whose final PATCH is in flight, its ingest held at the gate."""
    url = await create(client, len(DATA))
    final = asyncio.create_task(patch(client, url, 0, DATA))
    await asyncio.wait_for(gate.waiting.wait(), WAIT)
    return url, final


async def finished(gate: Gate, final: asyncio.Task[httpx.Response]) -> httpx.Response:
    gate.open()
    return await asyncio.wait_for(final, WAIT)


async def test_head_while_the_video_is_ingested_answers_the_whole_length_without_a_video_url(client, gate):
    url, final = await ingesting(client, gate)
    head = await client.head(url, headers=TUS)
    assert (head.status_code, head.headers["upload-offset"]) == (200, str(len(DATA)))
    assert "video-url" not in head.headers
    await finished(gate, final)


async def test_a_patch_while_the_video_is_ingested_is_423(client, gate):
    url, final = await ingesting(client, gate)
    retry = await asyncio.wait_for(patch(client, url, len(DATA), b""), WAIT)
    assert retry.status_code == 423
    assert "being ingested" in retry.json()["detail"]
    await finished(gate, final)


async def test_a_final_patch_retried_while_the_video_is_ingested_makes_one_video(client, gate):
    url, final = await ingesting(client, gate)
    retry = asyncio.create_task(patch(client, url, len(DATA), b""))
    assert (await finished(gate, final)).headers["video-url"].endswith("/clip.mp4")
    await asyncio.wait_for(retry, WAIT)
    assert gate.arrivals == 1
    assert [video["name"] for video in (await client.get("/video")).json()["videos"]] == ["clip.mp4"]


async def test_delete_while_the_video_is_ingested_is_423_and_the_video_still_arrives(client, gate):
    url, final = await ingesting(client, gate)
    assert (await client.delete(url, headers=TUS)).status_code == 423
    await finished(gate, final)
    assert (await client.head(url, headers=TUS)).headers["video-url"].endswith("/clip.mp4")


async def test_an_ingest_that_fails_unexpectedly_leaves_no_upload_behind(client, monkeypatch):
    async def broken_ingest(*args: object) -> str:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(IngestPipeline, "run", broken_ingest)
    url = await create(client, len(DATA))
    assert (await patch(client, url, 0, DATA)).status_code == 500
    assert (await client.head(url, headers=TUS)).status_code == 404


# --- a server that dies while ingesting (local store: the lock of a dead process is free) ----------

DYING_FINALISER = """
import asyncio, os, sys
from pathlib import Path
from app.storage.base import StagedFile
from app.uploads.local_sessions import LocalUploadSessions
from app.storage.space import FreeSpace

async def finalise_then_die(folder, staging):
    sessions = LocalUploadSessions(folder, 3600, FreeSpace(folder, 0))
    session = await sessions.create(3, {}, "", "clip.mp4")
    async with sessions.appending(session) as appender:
        await appender.write(b"abc")
    await sessions.take_data(session, StagedFile(staging, FreeSpace(staging, 0)))  # as the ingest does
    print(session.id, flush=True)
    sys.stdin.readline()
    os._exit(1)

asyncio.run(finalise_then_die(Path(sys.argv[1]), Path(sys.argv[2])))
"""


@pytest.fixture
def finaliser(store_dir: Path, tmp_path: Path):
    """Another server process ingesting an upload of this store; ``.upload_id`` names it; ``die()`` ends it."""
    uploads = store_dir / ".uploads"
    uploads.mkdir(exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", DYING_FINALISER, str(uploads), str(tmp_path)], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    process.upload_id = process.stdout.readline().strip()
    process.uploads = uploads

    def die() -> None:
        process.stdin.write("\n")
        process.stdin.flush()
        process.wait(timeout=WAIT)

    process.die = die
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.parametrize("store_env", ["local"], indirect=True)
async def test_an_upload_is_kept_while_another_process_ingests_it(client, finaliser):
    head = await client.head(f"/uploads/{finaliser.upload_id}", headers=TUS)
    assert (head.status_code, head.headers["upload-offset"]) == (200, "3")


@pytest.mark.parametrize("store_env", ["local"], indirect=True)
async def test_an_upload_whose_ingesting_process_died_is_gone_at_the_next_request(client, finaliser):
    finaliser.die()
    head = await client.head(f"/uploads/{finaliser.upload_id}", headers=TUS)
    assert head.status_code == 410
    assert list(finaliser.uploads.iterdir()) == []


async def test_the_sweeper_removes_an_upload_whose_ingesting_process_died(finaliser):
    finaliser.die()
    assert await LocalUploadSessions(finaliser.uploads, 3600, FreeSpace(finaliser.uploads, 0)).sweep() == 1
    assert list(finaliser.uploads.iterdir()) == []
