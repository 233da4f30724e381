"""Conditional writes that hold across instances: the write claims (``app/catalog/claims.py``).

Two real server processes over one store and one catalog database (one local
folder and one SQLite file; one SeaweedFS bucket and one PostgreSQL database)
get two writes to one name fired at the same moment, round after round: of
two writers with the same ``If-Match`` exactly one wins and the other is
refused with 412, and the stored bytes afterwards are the winner's. On one
instance, in-process: a write the store fails lets go of its claim, and the
faststart job's rewrite waits for a write that holds the name. Then the
claim itself, on both databases: taken by one writer at a time, waited for
(within a bound), taken over from a holder that died, renewed while held and
let go however its block ends.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, select

from app.catalog.claims import WriteClaims
from app.catalog.database import make_engine, migrate
from app.catalog.tables import WriteClaimRow
from app.core.errors import StorageFull, WriteBusy
from app.media.probe import moov_after_mdat
from tests.helpers import WAIT, put
from tests.servers import ServerProcess

ROUNDS = 50
"""As many rounds as the fault campaign raced each pair (issue 16)."""
NAME = "raced.mp4"
QUIET = {"VIDEO_ACCEPT_ANY_FILE": "true", "VIDEO_EMBEDDED_WORKERS": "0", "VIDEO_CATALOG_SCAN_SECONDS": "3600"}
"""Bytes that are not videos are stored as sent (no media to make a write slow), and no background work runs."""


@pytest.fixture(params=["local+sqlite", "s3+postgresql"])
def instances(request: pytest.FixtureRequest, store_dir: Path, tmp_path: Path) -> Iterator[list[httpx.Client]]:
    """Two instances over one store and one catalog, each with a client already connected to it."""
    if request.param == "local+sqlite":
        shared = {"VIDEO_STORAGE_DIR": str(store_dir), "VIDEO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"}
    else:
        seaweed = request.getfixturevalue("seaweed")
        shared = {**seaweed.env("videos", f"t{abs(hash(request.node.nodeid)):x}"),
                  "VIDEO_DATABASE_URL": request.getfixturevalue("postgres_url")}
    servers = []
    try:
        for number in range(2):
            servers.append(ServerProcess({**QUIET, **shared, "VIDEO_STAGING_DIR": str(tmp_path / f"staging{number}")}))
        clients = [httpx.Client(base_url=server.url, timeout=3 * WAIT) for server in servers]
        for client in clients:
            assert client.get("/healthz").status_code == 200  # connected before the first race
        yield clients
        for client in clients:
            client.close()
    finally:
        for server in servers:
            server.stop()


def at_once(*requests: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Send each request from a thread of its own, all released at the same moment; their answers, in order."""
    start = threading.Barrier(len(requests))
    answers: list[httpx.Response | None] = [None] * len(requests)

    def send(index: int) -> None:
        start.wait(timeout=WAIT)
        answers[index] = requests[index]()

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=3 * WAIT)
    assert all(answer is not None for answer in answers), "a racing request did not finish"
    return answers  # type: ignore[return-value]


def stored_version(client: httpx.Client, content: bytes) -> str:
    """Store ``content`` under NAME unconditionally; the ETag it is served with."""
    assert put(client, NAME, content).status_code in (200, 201)
    return client.head(f"/get_video_by_name/{NAME}").headers["etag"]


def stored_bytes(client: httpx.Client) -> bytes | None:
    """What NAME holds now, as a download sees it; None when it is gone."""
    answer = client.get(f"/get_video_by_name/{NAME}")
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200
    return answer.content


# --- races between two instances ------------------------------------------------------------------

def test_two_instances_replacing_one_version_at_once_one_wins_and_the_other_gets_412(instances):
    first, second = instances
    for round_ in range(ROUNDS):
        etag = stored_version(first, b"original %d" % round_)
        bodies = [b"from the first instance %d" % round_, b"from the second instance %d" % round_]
        answers = at_once(lambda: put(first, NAME, bodies[0], if_match=etag),
                          lambda: put(second, NAME, bodies[1], if_match=etag))
        statuses = [answer.status_code for answer in answers]
        assert sorted(statuses) == [200, 412], f"round {round_}: {statuses}"
        assert stored_bytes(second) == bodies[statuses.index(200)], f"round {round_}: an acknowledged write is lost"


def test_a_delete_and_a_replacement_of_one_version_on_two_instances_one_wins_and_the_other_gets_412(instances):
    first, second = instances
    for round_ in range(ROUNDS):
        etag = stored_version(first, b"original %d" % round_)
        replacement = b"replacement %d" % round_
        deleted, replaced = at_once(lambda: first.delete(f"/video/{NAME}", headers={"if-match": etag}),
                                    lambda: put(second, NAME, replacement, if_match=etag))
        outcome = (deleted.status_code, replaced.status_code)
        assert outcome in ((204, 412), (412, 200)), f"round {round_}: {outcome}"
        assert stored_bytes(first) == (None if outcome == (204, 412) else replacement), f"round {round_}"


def test_an_unconditional_replacement_never_goes_unseen_by_a_conditional_one_on_another_instance(instances):
    """The conditional write may come first (then the other replaces it) or find the other's version (412),
    but never pass its check and then overwrite the version that the other wrote meanwhile."""
    first, second = instances
    for round_ in range(ROUNDS):
        etag = stored_version(first, b"original %d" % round_)
        conditional, unconditional = b"conditional %d" % round_, b"unconditional %d" % round_
        checked, blind = at_once(lambda: put(first, NAME, conditional, if_match=etag),
                                 lambda: put(second, NAME, unconditional))
        assert (checked.status_code, blind.status_code) in ((200, 200), (412, 200)), f"round {round_}"
        assert stored_bytes(first) == unconditional, f"round {round_}: an acknowledged write is lost"


# --- one instance: a write that fails in the store ----------------------------------------------

def test_a_write_that_fails_in_the_store_lets_go_of_its_claim_and_changes_nothing(make_client, monkeypatch):
    client = make_client(accept_any_file=True, embedded_workers=0, write_wait_seconds=1)
    etag = stored_version(client, b"original")
    store = client.app.state.services.store

    async def refuse(*_args: object, **_kwargs: object) -> str:
        raise StorageFull()

    with monkeypatch.context() as failing:
        failing.setattr(store, "publish", refuse)
        assert put(client, NAME, b"never stored", if_match=etag).status_code == 507
    assert stored_bytes(client) == b"original"
    # Within the second a write waits for a held claim: a claim left behind would answer 503.
    assert put(client, NAME, b"stored", if_match=etag).status_code == 200
    assert stored_bytes(client) == b"stored"


def test_the_faststart_job_publishes_no_rewrite_while_a_write_holds_the_name(make_client, store_dir,
                                                                            sample_mp4_moov_last):
    """A write that has checked its If-Match holds the claim until it has published: the job's rewrite of
    the version it checked must wait, not land in between."""
    client = make_client(inline_faststart_bytes=0, embedded_workers=0, write_wait_seconds=1)
    assert put(client, NAME, sample_mp4_moov_last).status_code == 201  # its index moved first by a job
    etag = client.head(f"/get_video_by_name/{NAME}").headers["etag"]
    services = client.app.state.services

    async def faststart_while_held() -> None:
        async with services.claims.held(NAME):
            with pytest.raises(WriteBusy):
                await services.ingest.faststart_stored(NAME, etag, lambda _progress: None)

    client.portal.call(faststart_while_held)
    assert stored_bytes(client) == sample_mp4_moov_last.read_bytes()
    assert client.portal.call(services.ingest.faststart_stored, NAME, etag, lambda _progress: None) is not None
    assert not moov_after_mdat(store_dir / NAME)


# --- the claim itself, on either database ---------------------------------------------------------

@pytest.fixture
def engine_url(database_url: str) -> str:
    """A catalog database of either backend with the newest schema."""
    migrate(database_url)
    return database_url


def claims_of(url: str, lease_seconds: float = 30, wait_seconds: float = WAIT) -> WriteClaims:
    return WriteClaims(make_engine(url), lease_seconds, wait_seconds)


def holders(url: str) -> dict[str, str]:
    """The claims in the database now: name -> writer."""
    async def read() -> dict[str, str]:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:
                return dict((await connection.execute(select(WriteClaimRow.name, WriteClaimRow.writer))).all())
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.mark.anyio
async def test_of_two_instances_taking_one_claim_at_the_same_moment_exactly_one_gets_it(engine_url):
    first, second = claims_of(engine_url), claims_of(engine_url)
    names = [f"video-{number}.mp4" for number in range(20)]
    outcomes = await asyncio.gather(*(asyncio.gather(first.try_take(name, "first"), second.try_take(name, "second"))
                                      for name in names))
    assert all(sorted(outcome) == [False, True] for outcome in outcomes), outcomes


@pytest.mark.anyio
async def test_a_held_claim_is_waited_for_and_taken_once_its_holder_lets_go(engine_url):
    claims, other = claims_of(engine_url), claims_of(engine_url)
    order: list[str] = []
    holding, waiter_tried = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with claims.held(NAME):
            holding.set()
            await waiter_tried.wait()
            order.append("holder lets go")

    async def wait_for_it() -> None:
        await holding.wait()
        assert not await other.try_take(NAME, "refused while held")
        waiter_tried.set()
        async with other.held(NAME):
            order.append("waiter holds")

    await asyncio.wait_for(asyncio.gather(hold(), wait_for_it()), WAIT)
    assert order == ["holder lets go", "waiter holds"]


@pytest.mark.anyio
async def test_a_claim_held_longer_than_a_writer_waits_is_write_busy(engine_url):
    claims, impatient = claims_of(engine_url), claims_of(engine_url, wait_seconds=0.2)
    async with claims.held(NAME):
        started = time.monotonic()
        with pytest.raises(WriteBusy):
            async with impatient.held(NAME):
                pass
        assert time.monotonic() - started < WAIT


@pytest.mark.anyio
async def test_the_claim_of_a_holder_that_died_is_taken_over_once_its_lease_has_run_out(engine_url):
    engine = make_engine(engine_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(WriteClaimRow).values(name=NAME, writer="died", until=time.time() - 1))
            await connection.execute(insert(WriteClaimRow).values(name="alive.mp4", writer="alive",
                                                                  until=time.time() + 60))
    finally:
        await engine.dispose()
    claims = claims_of(engine_url, wait_seconds=0.2)
    async with claims.held(NAME):
        assert (await asyncio.to_thread(holders, engine_url))[NAME] != "died"
    with pytest.raises(WriteBusy):
        async with claims.held("alive.mp4"):
            pass


@pytest.mark.anyio
async def test_a_claim_is_let_go_when_its_block_fails(engine_url):
    claims = claims_of(engine_url)
    with pytest.raises(OSError):
        async with claims.held(NAME):
            raise OSError("the store failed mid-write")
    assert NAME not in await asyncio.to_thread(holders, engine_url)
    assert await claims.try_take(NAME, "next writer")


@pytest.mark.anyio
async def test_a_claim_is_renewed_while_held_so_a_long_write_keeps_it(engine_url):
    claims, other = claims_of(engine_url, lease_seconds=0.3), claims_of(engine_url)
    async with claims.held(NAME):
        taken_until = await asyncio.to_thread(lease_of, engine_url)
        deadline = time.monotonic() + WAIT
        while await asyncio.to_thread(lease_of, engine_url) <= taken_until + 0.3:  # outlived one whole lease
            assert time.monotonic() < deadline, "the claim was not renewed"
            await asyncio.sleep(0.05)
        assert not await other.try_take(NAME, "too early")


def lease_of(url: str) -> float:
    """Until when the claim of NAME runs now."""
    async def read() -> float:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.scalar(select(WriteClaimRow.until).where(WriteClaimRow.name == NAME))
        finally:
            await engine.dispose()

    return asyncio.run(read())
