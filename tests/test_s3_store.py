"""What only the S3 store has to get right, against a real SeaweedFS with signatures checked.

The parity tests say that users cannot tell the stores apart; these say why
that holds on S3, where the guarantees rest on the object store's answers.
Some reach into the store to leave what a dead or stalled instance would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import obstore
import pytest
from obstore.exceptions import GenericError, PermissionDeniedError

from app.main import create_app
from app.storage.s3 import PART_BYTES, S3VideoStore
from app.uploads import s3_sessions
from app.uploads.s3_sessions import CLAIM_STALE_SECONDS
from app.core.settings import Settings
from tests.helpers import TUS, WAIT, create, patch

pytestmark = pytest.mark.anyio

BUCKET = "videos"


@pytest.fixture
def prefix() -> str:
    return f"s3-store-{secrets.token_hex(6)}"


@pytest.fixture
async def make_instance(seaweed, prefix, tmp_path) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """Instances of the service in-process, all over this test's prefix of one bucket."""
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        env = {**seaweed.env(BUCKET, prefix), "VIDEO_STAGING_DIR": str(tmp_path / f"staging-{len(clients)}"),
               "VIDEO_ACCEPT_ANY_FILE": "true"}
        transport = httpx.ASGITransport(app=create_app(Settings.from_env(env)), raise_app_exceptions=False)
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=WAIT))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


def claim_key(prefix: str, url: str, offset: int) -> str:
    return f"{prefix}/.uploads/{url.rpartition('/')[2]}/claim-{offset:020d}"


def leave_claim(seaweed, key: str, body: bytes) -> None:
    """Put a claim where it is, as a request that died or stalled would have left it."""
    obstore.put(seaweed.client(BUCKET), key, body)


def dated(seconds_ago: float) -> bytes:
    return json.dumps({"at": time.time() - seconds_ago, "by": "another instance"}).encode()


class HeldBody:
    """A request body whose first bytes go at once and the rest when released."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self._parts = (first, rest)
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._parts[0]
        await self._released.wait()
        yield self._parts[1]


async def held_patch(seaweed, prefix: str, client: httpx.AsyncClient, url: str, body: HeldBody) -> asyncio.Task:
    """A PATCH at offset 0 that has claimed the offset and waits for the rest of its body."""
    task = asyncio.create_task(patch(client, url, 0, body))
    await asyncio.wait_for(exists(seaweed.client(BUCKET), claim_key(prefix, url, 0)), WAIT)
    return task


async def exists(store, key: str) -> None:
    """Return once ``key`` is in the store."""
    while True:
        try:
            await obstore.head_async(store, key)
            return
        except FileNotFoundError:
            await asyncio.sleep(0.02)


PART = 64 * 1024
"""The part size of the tests that send several parts: small, so that they are quick."""


@pytest.fixture
def small_parts(monkeypatch) -> None:
    monkeypatch.setattr(s3_sessions, "PART_BYTES", PART)


async def upload_objects(seaweed, prefix: str, url: str, kind: str) -> dict[int, int]:
    """Offset and size of each of the upload's objects of one kind (``part`` or ``claim``) now in the store."""
    folder = f"{prefix}/.uploads/{url.rpartition('/')[2]}"
    listing = await obstore.list_with_delimiter_async(seaweed.client(BUCKET), folder)
    return {int(meta["path"].rpartition("-")[2]): meta["size"] for meta in listing["objects"]
            if meta["path"].rpartition("/")[2].startswith(f"{kind}-")}


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Return once ``condition`` holds, failing the test if it does not within WAIT seconds."""
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), WAIT)


async def parts_are(seaweed, prefix: str, url: str, expected: dict[int, int]) -> bool:
    return await upload_objects(seaweed, prefix, url, "part") == expected


async def all_buffered(staging: Path, count: int) -> bool:
    """Whether the instance whose staging folder is ``staging`` holds ``count`` bytes in its local part files."""
    return sum(path.stat().st_size for path in staging.glob("part-*")) == count


async def stored(client: httpx.AsyncClient, url: str, rest: bytes) -> bytes:
    """Finish the upload with ``rest`` and fetch the video it became."""
    offset = int((await client.head(url, headers=TUS)).headers["upload-offset"])
    finished = await patch(client, url, offset, rest)
    assert finished.status_code == 204, finished.text
    return (await client.get(finished.headers["video-url"])).content


async def test_a_request_signed_with_the_wrong_secret_is_refused(seaweed):
    obstore.put(seaweed.client(BUCKET), "signatures/wrong-secret", b"private")
    with pytest.raises(PermissionDeniedError):
        obstore.get(seaweed.client(BUCKET, secret_key="not-the-secret"), "signatures/wrong-secret")


async def test_a_presigned_url_with_a_tampered_signature_is_refused(seaweed):
    client = seaweed.client(BUCKET)
    obstore.put(client, "signatures/presigned", b"private")
    url = obstore.sign(client, "GET", "signatures/presigned", timedelta(minutes=5))
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200
        assert (await http.get(tampered)).status_code == 403


async def test_an_append_whose_part_failed_to_go_up_leaves_its_offset_free(make_instance, monkeypatch):
    client = make_instance()
    url = await create(client, 4, filename=None)
    put = obstore.put_async

    async def part_fails_once(store, key, *args, **kwargs):
        if "/part-" in key:
            monkeypatch.setattr(obstore, "put_async", put)
            raise GenericError("the object store went away")  # as obstore says it
        return await put(store, key, *args, **kwargs)

    monkeypatch.setattr(obstore, "put_async", part_fails_once)
    assert (await patch(client, url, 0, b"AAAA")).status_code == 503
    assert (await patch(client, url, 0, b"AAAA")).status_code == 204


async def test_a_claim_left_by_a_request_that_died_is_taken_over_once_stale(make_instance, seaweed, prefix):
    client = make_instance()
    url = await create(client, 4, filename=None)
    leave_claim(seaweed, claim_key(prefix, url, 0), dated(CLAIM_STALE_SECONDS + 1))
    assert (await patch(client, url, 0, b"AAAA")).status_code == 204


async def test_of_two_appends_at_one_offset_only_the_first_part_stored_counts(make_instance, seaweed, prefix):
    first, second = make_instance(), make_instance()
    url = await create(first, 8, filename=None)
    slow = HeldBody(b"AA", b"AA")
    stalled = await held_patch(seaweed, prefix, first, url, slow)
    leave_claim(seaweed, claim_key(prefix, url, 0), dated(CLAIM_STALE_SECONDS + 1))  # it stalled that long
    assert (await patch(second, url, 0, b"BBBB")).status_code == 204
    slow.release()
    assert (await asyncio.wait_for(stalled, WAIT)).status_code == 409
    assert await stored(second, url, b"CCCC") == b"BBBBCCCC"


async def test_an_append_whose_claim_was_taken_over_never_reopens_the_finished_upload(make_instance, seaweed,
                                                                                        prefix):
    first, second = make_instance(), make_instance()
    url = await create(first, 4, filename=None)
    slow = HeldBody(b"AA", b"AA")
    stalled = await held_patch(seaweed, prefix, first, url, slow)
    leave_claim(seaweed, claim_key(prefix, url, 0), dated(CLAIM_STALE_SECONDS + 1))
    video_url = (await patch(second, url, 0, b"BBBB")).headers["video-url"]
    slow.release()
    assert (await asyncio.wait_for(stalled, WAIT)).status_code == 409
    assert (await second.head(url, headers=TUS)).headers.get("video-url") == video_url


async def test_a_large_file_written_at_the_staged_path_goes_up_in_parts(seaweed, prefix, tmp_path):
    # As the faststart remuxer writes it: through its own descriptor, not StagedFile.write.
    store = S3VideoStore.from_settings(Settings.from_env({**seaweed.env(BUCKET, prefix),
                                                         "VIDEO_STAGING_DIR": str(tmp_path), "VIDEO_MIN_FREE_BYTES": "0"}))
    async with store.staged() as staged:
        staged.path.write_bytes(secrets.token_bytes(PART_BYTES + 1024))
        name = await store.publish(staged, "remuxed.mp4")
    meta = obstore.head(seaweed.client(BUCKET), f"{prefix}/{name}")
    assert meta["size"] == PART_BYTES + 1024
    assert meta["e_tag"].strip('"').endswith("-2")  # S3's mark of a multipart upload of two parts


async def test_parts_go_up_while_the_body_still_arrives_and_head_counts_them(make_instance, seaweed, prefix,
                                                                           small_parts):
    client = make_instance()
    data = secrets.token_bytes(3 * PART)
    url = await create(client, len(data), filename=None)
    body = HeldBody(data[:2 * PART + PART // 2], data[2 * PART + PART // 2:])
    request = asyncio.create_task(patch(client, url, 0, body))
    await until(lambda: parts_are(seaweed, prefix, url, {0: PART, PART: PART}))
    assert (await client.head(url, headers=TUS)).headers["upload-offset"] == str(2 * PART)
    body.release()
    finished = await asyncio.wait_for(request, WAIT)
    assert finished.status_code == 204
    assert (await client.get(finished.headers["video-url"])).content == data


async def test_an_append_cut_by_a_failing_store_keeps_the_parts_that_went_up_and_lets_go_of_its_claim(
        make_instance, seaweed, prefix, small_parts, monkeypatch):
    client = make_instance()
    data = secrets.token_bytes(4 * PART)
    url = await create(client, len(data), filename=None)
    body = HeldBody(data[:2 * PART + PART // 2], data[2 * PART + PART // 2:3 * PART])
    request = asyncio.create_task(patch(client, url, 0, body))
    await until(lambda: parts_are(seaweed, prefix, url, {0: PART, PART: PART}))
    put = obstore.put_async

    async def store_fails(store, key, *args, **kwargs):
        if "/part-" in key:
            raise GenericError("the object store went away")  # as obstore says it
        return await put(store, key, *args, **kwargs)

    monkeypatch.setattr(obstore, "put_async", store_fails)
    body.release()
    assert (await asyncio.wait_for(request, WAIT)).status_code == 503  # try again: the store failed, not the request
    monkeypatch.setattr(obstore, "put_async", put)
    assert await upload_objects(seaweed, prefix, url, "claim") == {}
    assert (await client.head(url, headers=TUS)).headers["upload-offset"] == str(2 * PART)
    assert await stored(client, url, data[2 * PART:]) == data


async def test_an_append_whose_claim_cannot_be_let_go_is_still_answered_and_its_claim_is_in_nobodys_way(
        make_instance, monkeypatch):
    """The bytes went up, so the answer says so; the claim left behind lies behind the upload's offset, where
    no request will claim (one left at the offset is taken over once stale, as a dead request's is)."""
    client = make_instance()
    url = await create(client, 8, filename=None)
    delete = obstore.delete_async

    async def claims_stay(store, keys, *args, **kwargs):
        if "/claim-" in str(keys):
            raise GenericError("the object store went away")  # as obstore says it
        return await delete(store, keys, *args, **kwargs)

    monkeypatch.setattr(obstore, "delete_async", claims_stay)
    appended = await patch(client, url, 0, b"AAAA")
    assert (appended.status_code, appended.headers["upload-offset"]) == (204, "4")
    monkeypatch.setattr(obstore, "delete_async", delete)
    assert await stored(client, url, b"BBBB") == b"AAAABBBB"


async def test_a_checksummed_append_sends_nothing_up_before_its_digest_is_verified(make_instance, seaweed, prefix,
                                                                                 small_parts, tmp_path):
    client = make_instance()
    data = secrets.token_bytes(3 * PART)
    url = await create(client, len(data), filename=None)
    sent = 2 * PART + PART // 2
    body = HeldBody(data[:sent], data[sent:])
    wrong = base64.b64encode(hashlib.sha1(b"other bytes").digest()).decode()
    request = asyncio.create_task(patch(client, url, 0, body, **{"upload-checksum": f"sha1 {wrong}"}))
    await until(lambda: all_buffered(tmp_path / "staging-0", sent))
    assert await upload_objects(seaweed, prefix, url, "part") == {}
    body.release()
    assert (await asyncio.wait_for(request, WAIT)).status_code == 460
    assert (await client.head(url, headers=TUS)).headers["upload-offset"] == "0"
    assert await upload_objects(seaweed, prefix, url, "part") == {}


async def test_a_body_that_runs_past_the_length_keeps_none_of_the_parts_it_sent_up(make_instance, seaweed, prefix,
                                                                                    small_parts):
    client = make_instance()
    url = await create(client, 2 * PART + PART // 2, filename=None)

    async def overlong() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield secrets.token_bytes(PART)

    assert (await patch(client, url, 0, overlong())).status_code == 400
    assert (await client.head(url, headers=TUS)).headers["upload-offset"] == "0"
    assert await upload_objects(seaweed, prefix, url, "part") == {}
    assert await upload_objects(seaweed, prefix, url, "claim") == {}
