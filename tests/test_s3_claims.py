"""Claims in the object store (``app/storage/s3_claims.py``), against a real SeaweedFS: one holder at a time,
kept fresh by their holder, free again once let go or once stale."""

from __future__ import annotations

import asyncio
import secrets

import obstore
import pytest

from app.storage.s3 import StoreWaits
from app.storage.s3_claims import Claims

pytestmark = pytest.mark.anyio

BUCKET = "videos"
WAITS = StoreWaits(connect=1, answer=5, write=5)


@pytest.fixture
def key() -> str:
    return f"claims-{secrets.token_hex(6)}/name"


@pytest.fixture
def make_claims(seaweed):
    return lambda stale_seconds=60.0: Claims(seaweed.client(BUCKET), WAITS.answered, stale_seconds)


async def test_a_free_key_is_claimed(make_claims, key):
    assert await make_claims().take(key) is not None


async def test_a_held_claim_cannot_be_taken_by_another(make_claims, key):
    await make_claims().take(key)
    assert await make_claims().take(key) is None


async def test_a_claim_let_go_is_free_at_once(make_claims, key):
    claims = make_claims()
    await claims.let_go(await claims.take(key))
    assert await make_claims().take(key) is not None


async def test_a_stale_claim_is_taken_over(make_claims, key):
    await make_claims().take(key)
    assert await make_claims(stale_seconds=0).take(key) is not None


async def test_a_kept_claim_is_renewed_by_its_holder(make_claims, key):
    claims = make_claims(stale_seconds=0.2)
    claim = await claims.take(key)
    taken = claim.e_tag
    async with claims.kept(claim):
        async with asyncio.timeout(5):
            while claim.e_tag == taken:
                await asyncio.sleep(0.02)


async def test_a_marker_of_an_older_version_is_stale(make_claims, key, seaweed):
    obstore.put(seaweed.client(BUCKET), key, b"")  # names were claimed with empty objects before claims were dated
    assert await make_claims().take(key) is not None
