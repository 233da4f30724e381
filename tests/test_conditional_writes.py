"""Conditional writes that hold across instances: the write claims (``app/catalog/claims.py``).

The claim itself, on both databases: taken by one writer at a time, waited for
(within a bound), taken over from a holder that died, renewed while held and
let go however its block ends.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import insert, select

from app.catalog.claims import WriteClaims
from app.catalog.database import make_engine, migrate
from app.catalog.tables import WriteClaimRow
from app.core.errors import WriteBusy
from tests.helpers import WAIT

NAME = "raced.mp4"


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
