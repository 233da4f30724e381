"""Write claims: one writer at a time per name, across every instance that shares the catalog's database.

A conditional write (``If-Match``, ``If-None-Match``) is a check of what the
store holds followed by a change of it. Two instances that each check and
then act can both pass the check, and the later write silently undoes the
earlier acknowledged one. So every write that replaces, deletes or edits a
video through the service first takes its name's claim, then checks its
preconditions against the store, acts, records the result in the catalog,
and lets the claim go: of two writers with the same ``If-Match`` one acts
first and the other then finds the new version, and is refused.

Taking a claim is one compare-and-set in the database: an
``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE until < now RETURNING``
that creates the claim, or takes over one whose holder stopped renewing it,
and answers a row only to the writer that got it. PostgreSQL makes a second
inserter of one name wait for the first one's commit and then evaluates the
``WHERE`` against the row it committed; SQLite runs one write at a time.
A holder renews its claim (every third of ``lease_seconds``) while it works,
so a long upload keeps it; a holder that dies stops renewing, and once the
lease has run out the next writer takes the claim over. A writer that finds
the claim held waits for it, polling, up to ``wait_seconds``, then gives up
with WriteBusy. The bound of this scheme is the one of any lease: a holder
cut off from the database for longer than the lease, yet still writing to the
store, can lose its claim to another writer.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog.database import upsert_insert, write
from app.catalog.tables import WriteClaimRow
from app.core.beside import running_beside
from app.core.errors import WriteBusy

log = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 0.01
"""How soon a waiting writer first asks again for a held claim; doubled each time up to ``LAST_POLL_SECONDS``."""
LAST_POLL_SECONDS = 0.2
"""The longest pause between two asks: a claim let go by another instance is taken within about this."""


class WriteClaims:
    """Take, renew and let go of the per-name write claims in the catalog's database."""

    def __init__(self, engine: AsyncEngine, lease_seconds: float, wait_seconds: float) -> None:
        self._engine = engine
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self._insert = upsert_insert(engine)
        self._released = asyncio.Event()

    @asynccontextmanager
    async def held(self, name: str) -> AsyncIterator[None]:
        """Hold the write claim of ``name`` for the block: waited for (WriteBusy after ``wait_seconds``),
        renewed while the block runs, and let go when it ends, however it ends."""
        token = secrets.token_hex(16)
        await self._take(name, token)
        try:
            async with running_beside(self._renew_until_cancelled(name, token)):
                yield
        finally:
            await self._let_go(name, token)

    async def try_take(self, name: str, token: str) -> bool:
        """Take the claim of ``name`` for ``token`` if nobody holds it, or its holder's lease has run out."""
        now = time.time()
        until = now + self.lease_seconds
        statement = self._insert(WriteClaimRow).values(name=name, writer=token, until=until)
        taken = await write(self._engine, statement.on_conflict_do_update(
            index_elements=[WriteClaimRow.name], set_={"writer": token, "until": until},
            where=WriteClaimRow.until < now).returning(WriteClaimRow.writer))
        return taken is not None and taken.writer == token

    async def renew(self, name: str, token: str) -> bool:
        """Push the lease of ``token``'s claim of ``name`` on; False if ``token`` no longer holds it."""
        renewed = await write(self._engine, update(WriteClaimRow)
                              .where(WriteClaimRow.name == name, WriteClaimRow.writer == token)
                              .values(until=time.time() + self.lease_seconds).returning(WriteClaimRow.name))
        return renewed is not None

    async def _take(self, name: str, token: str) -> None:
        """Take the claim, waiting for its holder to let go (or to stop renewing) up to ``wait_seconds``."""
        deadline = time.monotonic() + self.wait_seconds
        pause = FIRST_POLL_SECONDS
        while not await self.try_take(name, token):
            left = deadline - time.monotonic()
            if left <= 0:
                raise WriteBusy()
            await self._let_go_here(min(pause, left))
            pause = min(pause * 2, LAST_POLL_SECONDS)

    async def _let_go_here(self, timeout: float) -> None:
        """Wait until a claim of this process is let go, or ``timeout`` seconds (other instances let go too)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._released.wait(), timeout)

    async def _renew_until_cancelled(self, name: str, token: str) -> None:
        """Renew the claim every third of the lease; a failed renewal is tried again at the next, a lost
        claim is logged (its writer is past the point where it could stop safely)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self.renew(name, token):
                    log.error("the write claim of %r ran out and was taken over while its writer still worked", name)
                    return
            except Exception:
                log.exception("could not renew the write claim of %r; trying again", name)

    async def _let_go(self, name: str, token: str) -> None:
        """Delete the claim if ``token`` still holds it, and wake this process's waiters.

        A claim that cannot be deleted (the database is away) runs out by itself.
        """
        try:
            await write(self._engine, delete(WriteClaimRow).where(WriteClaimRow.name == name,
                                                                  WriteClaimRow.writer == token))
        except Exception:
            log.exception("could not let go of the write claim of %r; it runs out in %s s", name, self.lease_seconds)
        self._released.set()
        self._released = asyncio.Event()
