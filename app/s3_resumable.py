"""Resumable upload sessions kept in the object store, so any instance can continue any upload.

Objects cannot be appended to, so an upload is a folder of objects under
``.uploads/ID/``: ``state.json``, and one ``part-OFFSET`` per request that
added bytes. The offset is the end of the unbroken run of parts from 0. A
request may append at an offset only after creating ``claim-OFFSET`` with
``If-None-Match: *``: of two requests at one offset, on one instance or two,
exactly one gets to write, and the other is refused (409) without a byte
written. A request's bytes wait in a local file and go up as one part when it
ends (multipart for big ones), so memory stays flat.

The request whose part completes the upload marks it finalising after
creating ``claim-final`` the same way, so exactly one request ever ingests it.
The store gives no sign that a finalising instance died, so such an upload
lingers (answering as finalising, never with a 500) until it expires.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from pathlib import Path

import obstore
from obstore.exceptions import AlreadyExistsError

from app.resumable import (Appender, ExpiredUpload, Session, UnknownUpload, UploadBusy, UploadClosed, open_only,
                           valid_upload_id)
from app.s3_storage import PART_BYTES, UPLOAD_CONCURRENCY, S3VideoStore

UPLOADS_DIR = ".uploads"


class S3UploadSessions:
    """The resumable uploads of one object store (same interface as ``UploadSessions``)."""

    def __init__(self, store: S3VideoStore, staging: Path, expiry_seconds: int) -> None:
        self._client = store.client
        self._root = store.key(UPLOADS_DIR)
        self._staging = staging
        self._expiry = expiry_seconds

    def _key(self, upload_id: str, leaf: str) -> str:
        if not valid_upload_id(upload_id):
            raise UnknownUpload(upload_id)
        return f"{self._root}/{upload_id}/{leaf}"

    async def _save(self, session: Session) -> None:
        await obstore.put_async(self._client, self._key(session.id, "state.json"), json.dumps(asdict(session)).encode())

    async def create(self, length: int, metadata: dict[str, str], raw_metadata: str, name: str) -> Session:
        session = Session(secrets.token_urlsafe(24), length, metadata, raw_metadata, name, time.time() + self._expiry)
        await self._save(session)
        return session

    async def get(self, upload_id: str) -> Session:
        try:
            result = await obstore.get_async(self._client, self._key(upload_id, "state.json"))
        except FileNotFoundError:
            raise UnknownUpload(upload_id) from None
        session = Session(**json.loads(bytes(await result.bytes_async())))
        if session.expires < time.time():
            await self.remove(upload_id)
            raise ExpiredUpload(upload_id)
        return session

    async def _parts(self, session: Session) -> list[tuple[int, str, int]]:
        """(offset, key, size) of the unbroken run of parts from offset 0."""
        listing = await obstore.list_with_delimiter_async(self._client, f"{self._root}/{session.id}")
        found = {}
        for meta in listing["objects"]:
            leaf = meta["path"].rpartition("/")[2]
            if leaf.startswith("part-"):
                found[int(leaf.removeprefix("part-"))] = (meta["path"], meta["size"])
        run, position = [], 0
        while position in found:
            key, size = found[position]
            run.append((position, key, size))
            position += size
        return run

    async def offset(self, session: Session) -> int:
        if session.closed:
            return session.length
        parts = await self._parts(session)
        return parts[-1][0] + parts[-1][2] if parts else 0

    @asynccontextmanager
    async def appending(self, session: Session) -> AsyncIterator[Appender]:
        """Claim the current offset of an open upload; the bytes go up as a part at the end.

        UploadBusy if the offset is claimed, UploadClosed if the upload is
        finalising or finished. If the block ended normally with every byte in,
        the upload is then marked finalising (UploadClosed if another request
        got there first).
        """
        start = await self.offset(session)
        claim = self._key(session.id, f"claim-{start:020d}")
        await self._claim(claim, UploadBusy(session.id))
        try:
            current = open_only(await self.get(session.id))
        except BaseException:
            await obstore.delete_async(self._client, claim)
            raise
        buffer = self._staging / f"part-{secrets.token_hex(12)}"
        fd = os.open(buffer, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        appender = Appender(fd, current, start, 0)
        try:
            yield appender
        finally:
            os.close(fd)
            try:
                await self._keep(appender, claim, buffer)
            finally:
                buffer.unlink(missing_ok=True)
        if appender.complete:
            appender.session = await self._finalise(appender.session)

    async def _claim(self, key: str, refusal: Exception) -> None:
        """Create ``key`` unless it exists (then raise ``refusal``): one winner among any instances."""
        try:
            await obstore.put_async(self._client, key, b"", mode="create")
        except AlreadyExistsError:
            raise refusal from None

    async def _keep(self, appender: Appender, claim: str, buffer: Path) -> None:
        """Store the request's bytes as a part, renewing the expiry first; or free the claim if none came.

        The state is saved before the part goes up because no later request can
        begin at the next offset before then, so none can have saved a newer state.
        """
        if appender.offset == appender.start:
            await obstore.delete_async(self._client, claim)
            return
        appender.session = replace(appender.session, expires=time.time() + self._expiry)
        await self._save(appender.session)
        await obstore.put_async(self._client, self._key(appender.session.id, f"part-{appender.start:020d}"), buffer,
                                use_multipart=appender.offset - appender.start > PART_BYTES,
                                chunk_size=PART_BYTES, max_concurrency=UPLOAD_CONCURRENCY)

    async def _finalise(self, session: Session) -> Session:
        finalising = replace(session, finalising=True)
        await self._claim(self._key(session.id, "claim-final"), UploadClosed(finalising))
        await self._save(finalising)
        return finalising

    async def take_data(self, session: Session) -> Path:
        """All the parts, in order, in one local file in staging (streamed, flat memory)."""
        target = self._staging / f"assembled-{secrets.token_hex(12)}"
        try:
            with open(target, "wb") as output:
                for _, key, _ in await self._parts(session):
                    result = await obstore.get_async(self._client, key)
                    async for chunk in result.stream(min_chunk_size=PART_BYTES):
                        output.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    async def finish(self, session: Session, video_name: str) -> Session:
        """Keep only the state, now naming the video, so a client can still ask where it went."""
        finished = replace(session, video_name=video_name, finalising=False)
        await self._save(finished)
        await self._delete_all(session.id, keep_state=True)
        return finished

    async def remove(self, upload_id: str) -> None:
        await self._delete_all(upload_id, keep_state=False)

    async def _delete_all(self, upload_id: str, keep_state: bool) -> None:
        listing = await obstore.list_with_delimiter_async(self._client, f"{self._root}/{upload_id}")
        keys = [meta["path"] for meta in listing["objects"]
                if not (keep_state and meta["path"].endswith("/state.json"))]
        if keys:
            await obstore.delete_async(self._client, keys)

    async def sweep(self) -> int:
        """Remove every expired session; return how many."""
        listing = await obstore.list_with_delimiter_async(self._client, self._root)
        removed = 0
        for folder in listing["common_prefixes"]:
            upload_id = folder.rstrip("/").rpartition("/")[2]
            try:
                await self.get(upload_id)
            except ExpiredUpload:
                removed += 1
            except UnknownUpload:
                continue
        return removed
