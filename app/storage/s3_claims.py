"""Claims in an object store: small objects that say "this is mine" across instances, and cannot outlive their holder.

A claim is created only if nothing is at its key (``If-None-Match: *``), so
of two instances claiming one key at once exactly one gets it. It holds the
time it was last renewed; its holder renews it (``If-Match`` on the version it
wrote) for as long as it works. A holder that dies, or whose store failed in
the middle of its work so that it could not let go, stops renewing: once the
claim is older than ``stale_seconds`` another instance may take it over, again
with ``If-Match``, so that of two taking over at once only one succeeds.
Claims are dated by the claiming instance's clock: instances' clocks must
agree to well within ``stale_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import S3Store

from app.core.beside import running_beside
from app.core.errors import Unavailable

log = logging.getLogger(__name__)


@dataclass
class Claim:
    """A claim this instance holds: its key and the version it last wrote there."""

    key: str
    e_tag: str


class Claims:
    """Take, keep and let go of claims in one bucket; every request bounded by ``answered``."""

    def __init__(self, client: S3Store, answered: Callable[[], AbstractAsyncContextManager[None]],
                 stale_seconds: float) -> None:
        self._client = client
        self._answered = answered
        self.stale_seconds = stale_seconds

    async def take(self, key: str) -> Claim | None:
        """Create the claim at ``key``, or take over a stale one; None while another holder keeps it."""
        for _ in range(2):  # a claim let go between our two requests leaves the key free: create it then
            try:
                return await self._put(key, "create")
            except AlreadyExistsError:
                pass
            try:
                return await self._take_over(key)
            except FileNotFoundError:
                continue
            except PreconditionError:
                return None
        return None

    async def _take_over(self, key: str) -> Claim | None:
        """Replace the claim at ``key`` if it is stale and nobody renewed or replaced it first."""
        async with self._answered():
            held = await obstore.get_async(self._client, key)
            written = bytes(await held.bytes_async())
        if time.time() - _claimed_at(written) < self.stale_seconds:
            return None
        return await self._put(key, {"e_tag": held.meta["e_tag"]})

    async def _put(self, key: str, mode: object) -> Claim:
        body = json.dumps({"at": time.time(), "by": secrets.token_hex(8)}).encode()
        async with self._answered():
            written = await obstore.put_async(self._client, key, body, mode=mode)
        return Claim(key, written["e_tag"])

    @asynccontextmanager
    async def kept(self, claim: Claim) -> AsyncIterator[None]:
        """Renew ``claim`` in the background while the block runs, so that it never looks stale."""
        async with running_beside(self._renew_forever(claim)):
            yield

    async def _renew_forever(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(self.stale_seconds / 4)
            try:
                renewed = await self._put(claim.key, {"e_tag": claim.e_tag})
            except (PreconditionError, FileNotFoundError):
                log.warning("the claim %s was taken over (or removed) while its holder worked", claim.key)
                return
            except Unavailable:
                continue  # the store is failing: the work it guards is failing too, and will let go
            claim.e_tag = renewed.e_tag

    async def let_go(self, claim: Claim) -> None:
        """Delete ``claim`` unless another holder has taken it over (then it is theirs), as far as the store lets
        us now: one left behind goes stale and is taken over."""
        try:
            async with self._answered():
                if (await obstore.head_async(self._client, claim.key))["e_tag"] == claim.e_tag:
                    await obstore.delete_async(self._client, claim.key)
        except FileNotFoundError:
            return
        except Unavailable:
            log.warning("could not let go of the claim %s now: it is free again in %g s", claim.key,
                        self.stale_seconds)


def _claimed_at(written: bytes) -> float:
    """When a claim was last renewed; 0 for one that says nothing of it (an older version's empty marker)."""
    try:
        return float(json.loads(written)["at"])
    except (ValueError, KeyError, TypeError):
        return 0.0
