"""Resumable upload sessions kept in the object store, so any instance can continue any upload.

Objects cannot be appended to, so an upload is a folder of objects under
``.uploads/ID/``: ``state.json``, and ``part-OFFSET`` objects of at most
``PART_BYTES``. The offset is the end of the unbroken run of parts from 0.

A request's bytes gather in a local file of one part, which goes up as soon
as it is full, while the body is still arriving (the body waits meanwhile), so
memory stays flat and each request has at most one part on local disk; what is
left when the request ends goes up then. So a request cut short, by its
client or by a store that fails, keeps every part that went up, and HEAD
counts them. A request with ``Upload-Checksum`` is the exception: the digest
covers its whole body, so its bytes wait in the local file until it has been
verified and go up when the request ends (all or none, as before parts went
up early). A body that runs past ``Upload-Length`` keeps nothing either: the
parts it stored are deleted again, the last first.

Every part is created with ``If-None-Match: *``, so of two requests that
write at one offset, on one instance or two, the first part stored wins and
the other request is refused (409) with nothing of its own at that offset:
this alone keeps the parts from ever overlapping. Before reading its body, a
request also creates ``claim-OFFSET`` the same way, so a second request at a
busy offset is refused at once instead of sending its body in vain. The claim
moves with the parts: a request holds the claim on the offset its next byte
goes to, claiming the end of a full part before storing it and letting go of
the claim on its start once it is stored. However a request ends (done, cut,
refused, failed), it lets go of its claim at once. That is a delete in the
store, so when the store cannot be reached even for that, the claim stays and
is taken over once it is older than ``CLAIM_STALE_SECONDS``.

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
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError

from app.core.errors import ExpiredUpload, UnknownUpload, UploadBusy
from app.storage.base import StagedFile
from app.storage.s3 import PART_BYTES, S3VideoStore
from app.storage.s3_claims import Claim, Claims
from app.storage.space import FreeSpace, full_disk_refused
from app.storage.staging import create_locked
from app.uploads.sessions import Appender, Session, UploadClosed, open_only, valid_upload_id

if TYPE_CHECKING:  # obstore declares these types in its stubs only
    from obstore import PutMode, PutResult

UPLOADS_DIR = ".uploads"

CLAIM_STALE_SECONDS = 30.0
"""Age at which a claim on an offset may be taken over: its request died, or is too slow to keep it.

Shorter than the browser client's 55 s of retries, so a request lost with its
instance stalls an upload for less than the client waits. Taking over the
claim of a request that is alive but slow is safe (only one request's part
can be created at an offset); it merely lets a second request send its body
in vain. Claims are dated by the claiming instance's clock, so instances'
clocks must agree to well within this.
"""


class S3UploadSessions:
    """The resumable uploads of one object store."""

    def __init__(self, store: S3VideoStore, staging: Path, expiry_seconds: int) -> None:
        self._client = store.client
        self._writer = store.writer
        self._waits = store.waits
        self._claims = Claims(store.client, store.waits.answered, CLAIM_STALE_SECONDS)
        self._space = store.space
        self._root = store.key(UPLOADS_DIR)
        self._staging = staging
        self._expiry = expiry_seconds

    def _key(self, upload_id: str, leaf: str) -> str:
        if not valid_upload_id(upload_id):
            raise UnknownUpload(upload_id)
        return f"{self._root}/{upload_id}/{leaf}"

    async def _save(self, session: Session, mode: PutMode = "overwrite") -> None:
        state = json.dumps(asdict(session)).encode()
        await self._waits.call(obstore.put_async, self._client, self._key(session.id, "state.json"), state, mode=mode)

    async def create(self, length: int, metadata: dict[str, str], raw_metadata: str, name: str) -> Session:
        """A new session, if its bytes fit into staging above the reserve: they are assembled there to be ingested."""
        self._space.require(length)
        session = Session(secrets.token_urlsafe(24), length, metadata, raw_metadata, name, time.time() + self._expiry)
        await self._save(session)
        return session

    async def get(self, upload_id: str) -> Session:
        return (await self._load(upload_id))[0]

    async def _load(self, upload_id: str) -> tuple[Session, str]:
        """The live session and the ETag of its state, for a save that must not undo a newer one."""
        try:
            async with self._waits.answered():
                result = await obstore.get_async(self._client, self._key(upload_id, "state.json"))
                state = bytes(await result.bytes_async())
        except FileNotFoundError:
            raise UnknownUpload(upload_id) from None
        session = Session(**json.loads(state))
        if session.expires < time.time():
            await self.remove(upload_id)
            raise ExpiredUpload(upload_id)
        return session, result.meta["e_tag"]

    async def _parts(self, session: Session) -> list[tuple[int, str, int]]:
        """(offset, key, size) of the unbroken run of parts from offset 0."""
        listing = await self._waits.call(obstore.list_with_delimiter_async, self._client, f"{self._root}/{session.id}")
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
        """Claim the current offset of an open upload; the bytes go up part by part as they arrive.

        UploadBusy if the offset is claimed, or if another request's part got
        there first; UploadClosed if the upload is finalising or finished. If
        the block ends normally, what is left of its bytes goes up then (or,
        if they were discarded, the parts they made are deleted); if it raises,
        the parts already stored stay and the rest is dropped. The claim is let
        go however the request ends. If the block ended normally with every
        byte in, the upload is then marked finalising (UploadClosed if another
        request got there first).
        """
        start = await self.offset(session)
        claim = await self._claim_offset(session.id, start)
        appender: _PartAppender | None = None
        try:
            with self._buffer() as fd:
                current, version = await self._load(session.id)
                appender = _PartAppender(self, fd, open_only(current), version, start, claim, self._space)
                yield appender
                await appender.end()
        finally:
            await self._release(claim if appender is None else appender.claim)
        if appender.complete:
            appender.session = await self._finalise(appender.session)

    @contextmanager
    def _buffer(self) -> Iterator[int]:
        """A new local file for one request's bytes, locked until it is removed afterwards."""
        with full_disk_refused():
            fd, path = create_locked(self._staging, "part-", mode=0o600)
        try:
            yield fd
        finally:
            path.unlink(missing_ok=True)
            os.close(fd)

    async def _create(self, key: str, body: bytes, refusal: Exception) -> PutResult:
        """Create ``key`` unless it exists (then raise ``refusal``): one winner among any instances.

        Written by the store's writer, within the write wait: a part is up to ``PART_BYTES``.
        """
        try:
            async with self._waits.written():
                return await obstore.put_async(self._writer, key, body, mode="create")
        except AlreadyExistsError:
            raise refusal from None

    async def _claim_offset(self, upload_id: str, offset: int) -> Claim:
        """Create the claim on ``offset``, or take over a stale one; UploadBusy if it is held."""
        claim = await self._claims.take(self._key(upload_id, f"claim-{offset:020d}"))
        if claim is None:
            raise UploadBusy(upload_id)
        return claim

    async def _release(self, claim: Claim) -> None:
        """Let go of the claim (best effort: one the store keeps now is taken over once stale).

        Should a take-over fall between the claims' check and delete, a third
        request may then claim the offset too: it is refused when its part
        meets the one already there, having sent its body in vain.
        """
        await self._claims.let_go(claim)

    async def _renew(self, session: Session, version: str) -> Session:
        """Push the expiry out, saving over the state only if it is still ``version`` (else read it again).

        A request whose claim was taken over may still be running, and the
        upload may have been finalised meanwhile: an old copy of the state saved
        over that would open it again. UploadClosed if it was. Renewing before
        the parts go up, not after, keeps this from refusing a request whose
        parts were stored: no request can complete the upload before them.
        """
        while True:
            renewed = replace(session, expires=time.time() + self._expiry)
            try:
                await self._save(renewed, mode={"e_tag": version})
            except (FileNotFoundError, PreconditionError):
                session, version = await self._load(session.id)
                open_only(session)
                continue
            return renewed

    async def _store_part(self, upload_id: str, position: int, block: bytes) -> None:
        """Create the part at ``position`` unless one is there: UploadBusy if another request's part is (it took
        over this request's claim)."""
        await self._create(self._key(upload_id, f"part-{position:020d}"), block, UploadBusy(upload_id))

    async def _delete_parts(self, upload_id: str, positions: Iterable[int]) -> None:
        """Delete the parts at ``positions``, one by one in that order."""
        for position in positions:
            await self._waits.call(obstore.delete_async, self._client, self._key(upload_id, f"part-{position:020d}"))

    async def _finalise(self, session: Session) -> Session:
        finalising = replace(session, finalising=True)
        await self._create(self._key(session.id, "claim-final"), b"", UploadClosed(finalising))
        await self._save(finalising)
        return finalising

    async def take_data(self, session: Session, staged: StagedFile) -> None:
        """All the parts, in order, into ``staged`` (streamed, flat memory)."""
        for _, key, _ in await self._parts(session):
            async with self._waits.answered():
                pieces = (await obstore.get_async(self._client, key)).stream(min_chunk_size=PART_BYTES)
            while True:
                async with self._waits.written():  # a whole part may come as one piece
                    piece = await anext(pieces, None)
                if piece is None:
                    break
                staged.write(piece)

    async def finish(self, session: Session, video_name: str) -> Session:
        """Keep only the state, now naming the video, so a client can still ask where it went."""
        finished = replace(session, video_name=video_name, finalising=False)
        await self._save(finished)
        await self._delete_all(session.id, keep_state=True)
        return finished

    async def remove(self, upload_id: str) -> None:
        await self._delete_all(upload_id, keep_state=False)

    async def _delete_all(self, upload_id: str, keep_state: bool) -> None:
        listing = await self._waits.call(obstore.list_with_delimiter_async, self._client, f"{self._root}/{upload_id}")
        keys = [meta["path"] for meta in listing["objects"]
                if not (keep_state and meta["path"].endswith("/state.json"))]
        if keys:
            await self._waits.call(obstore.delete_async, self._client, keys)

    async def sweep(self) -> int:
        """Remove every expired session; return how many."""
        listing = await self._waits.call(obstore.list_with_delimiter_async, self._client, self._root)
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


class _PartAppender(Appender):
    """One request's appending to an upload in the object store: its bytes gather in a local file of one part,
    which goes up as soon as it is full.

    ``claim`` is this request's claim on the offset its next byte goes to.
    """

    def __init__(self, sessions: S3UploadSessions, fd: int, session: Session, version: str, start: int,
                 claim: Claim, space: FreeSpace) -> None:
        super().__init__(fd, session, start, 0, space)
        self.claim = claim
        self._sessions = sessions
        self._version: str | None = version  # None once the expiry is renewed
        self._part_start = start  # the position in the upload of the local file's first byte
        self._stored: list[int] = []  # the positions of the parts this request stored, in order
        self._held = False
        self._discarded = False

    @property
    def _buffered(self) -> int:
        return self.offset - self._part_start

    def hold_until_end(self) -> None:
        """Send nothing up before the request ends: its checksum has to be verified first."""
        self._held = True

    async def write(self, data: bytes) -> None:
        """Append ``data`` to the local file, sending each part up as soon as it is full (unless held).

        On a full disk, or at the reserve, StorageFull: what fitted goes up when
        the request ends, as a client that resumes once there is room expects.
        """
        view = memoryview(data)
        while view:
            piece = view if self._held else view[:PART_BYTES - self._buffered]
            for written in self._guard.write(self._fd, piece):
                self.offset += written
            view = view[len(piece):]
            if not self._held and self._buffered == PART_BYTES:
                await self._send_full_part()

    async def _send_full_part(self) -> None:
        """Store the full part, handing this request's claim on to the offset after it.

        The end is claimed before the part is stored, so that no other request
        can start there in between; the start is let go once the part is stored.
        """
        await self._renew()
        following = await self._sessions._claim_offset(self.session.id, self.offset)
        try:
            await self._sessions._store_part(self.session.id, self._part_start, os.pread(self._fd, PART_BYTES, 0))
        except BaseException:
            await self._sessions._release(following)
            raise
        released, self.claim = self.claim, following
        self._stored.append(self._part_start)
        self._part_start = self.offset
        self._empty()
        await self._sessions._release(released)

    def discard(self) -> None:
        """Forget everything this request appended: the local file now, the parts it stored when it ends."""
        self._empty()
        self._discarded = True
        self.offset = self._part_start = self.start

    def _empty(self) -> None:
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)

    async def end(self) -> None:
        """At the request's normal end: send up what the local file holds, or delete a discarded request's parts.

        They are deleted the last first, so that none is ever left beyond a
        gap, where parts stored later could join it to the upload again.
        """
        if self._discarded:
            await self._sessions._delete_parts(self.session.id, reversed(self._stored))
            return
        position = self._part_start
        if position == self.offset:
            return
        await self._renew()
        while block := os.pread(self._fd, PART_BYTES, position - self._part_start):
            await self._sessions._store_part(self.session.id, position, block)
            position += len(block)

    async def _renew(self) -> None:
        """Push the upload's expiry out once, before this request's first part goes up (``S3UploadSessions._renew``
        says why before)."""
        if self._version is not None:
            self.session = await self._sessions._renew(self.session, self._version)
            self._version = None
