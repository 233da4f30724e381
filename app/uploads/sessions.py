"""Resumable upload sessions: what one is, and what every kind of session store offers.

A session is a tus upload in progress: its declared length, its metadata, the
name its video will get, and when it expires. Its bytes are appended through
an :class:`Appender` that one request holds exclusively. The local store keeps
sessions on disk (``local_sessions.py``), the object store as objects
(``s3_sessions.py``); both satisfy :class:`UploadSessions`, and the tus routes
know no more than that.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from app.core.errors import StorageFull, UploadSessionError
from app.storage.base import StagedFile
from app.storage.space import FreeSpace

log = logging.getLogger(__name__)

UPLOAD_ID_PATTERN = "[A-Za-z0-9_-]{16,64}"
_ID = re.compile(UPLOAD_ID_PATTERN)


def valid_upload_id(upload_id: str) -> bool:
    """Ids are made here; anything else (a path, say) names no upload."""
    return _ID.fullmatch(upload_id) is not None


class UploadClosed(UploadSessionError):
    """The session takes no more bytes: it is being ingested, or it was; ``session`` says which."""

    def __init__(self, session: Session) -> None:
        super().__init__(session.id)
        self.session = session


@dataclass(frozen=True)
class Session:
    """The state of one resumable upload."""

    id: str
    length: int
    metadata: dict[str, str]
    raw_metadata: str
    name: str
    expires: float
    video_name: str | None = None
    finalising: bool = False

    @property
    def closed(self) -> bool:
        """Finalising or finished: appending is over."""
        return self.finalising or self.video_name is not None


def open_only(session: Session) -> Session:
    """``session`` if it still takes bytes, else UploadClosed."""
    if session.closed:
        raise UploadClosed(session)
    return session


class Appender:
    """Exclusive, appending access to a session's bytes, for one request.

    ``start`` and ``offset`` are positions in the upload; the bytes go to
    ``fd``, where position ``start`` of the upload is at byte ``base``.
    ``session`` is the state as read under the lock and, once the appending
    block has ended, as saved then (finalising if every byte is in).
    """

    def __init__(self, fd: int, session: Session, start: int, base: int, space: FreeSpace) -> None:
        self._fd = fd
        self._base = base
        self._guard = space.guard()
        self.session = session
        self.start = start
        self.offset = start

    @property
    def complete(self) -> bool:
        return self.offset == self.session.length

    def require(self, incoming: int) -> None:
        """StorageFull now unless ``incoming`` bytes, announced before they are sent, fit above the reserve."""
        self._guard.require(incoming)

    def hold_until_end(self) -> None:
        """Keep this request's bytes back until it ends: a checksum covers all of them, so none may count before
        it is verified.

        Nothing to do on disk, where ``discard`` cuts them off the upload's file
        again; the object store overrides it, since a part it stores counts at once.
        """

    async def write(self, data: bytes) -> None:
        """Append ``data``, counting every byte that reached the file.

        A coroutine so that a store may send what it has gathered on (the
        object store, a full part) before it takes more.
        On a full disk, or at the reserve, StorageFull: what fitted is kept, as
        a client that resumes once there is room expects, and made durable first.
        """
        try:
            for written in self._guard.write(self._fd, data):
                self.offset += written
        except StorageFull:
            self._keep_durably()
            raise

    def _keep_durably(self) -> None:
        """Flush what this request appended, so that the offset answered from now on is what the disk holds.

        A filesystem that reports a full disk only when flushing (NFS, FUSE)
        may have lost any of it, so then none of it is kept.
        """
        try:
            os.fsync(self._fd)
        except OSError:
            self.discard()

    def discard(self) -> None:
        """Forget everything this request appended (a bad checksum, too many bytes)."""
        os.ftruncate(self._fd, self._base)
        self.offset = self.start


class UploadSessions(Protocol):
    """The resumable uploads of one store.

    Any step may find the session gone or expired (UnknownUpload,
    ExpiredUpload, AbandonedUpload): another request may have finished or
    terminated it in between.
    """

    async def create(self, length: int, metadata: dict[str, str], raw_metadata: str, name: str) -> Session:
        """A new, empty session that expires unless bytes keep arriving.

        StorageFull, and no session, if ``length`` bytes would not fit above the reserve.
        """
        ...

    async def get(self, upload_id: str) -> Session:
        """The live session with this id."""
        ...

    async def offset(self, session: Session) -> int:
        """How many bytes of the upload are stored (its length once it is closed)."""
        ...

    def appending(self, session: Session) -> AbstractAsyncContextManager[Appender]:
        """Exclusive append access at the current offset, for one request.

        UploadBusy if another request holds it, UploadClosed if the upload is
        finalising or finished. Bytes kept renew the expiry; a block that ends
        normally with every byte in marks the upload finalising, so that
        exactly one request ingests it.
        """
        ...

    async def take_data(self, session: Session, staged: StagedFile) -> None:
        """Put the finished upload's bytes into ``staged`` (empty until then), for the ingest."""
        ...

    async def finish(self, session: Session, video_name: str) -> Session:
        """Remember which video the upload became, so a client can still ask afterwards."""
        ...

    async def remove(self, upload_id: str) -> None:
        """Forget the session and free what it holds."""
        ...

    async def sweep(self) -> int:
        """Remove every expired (or abandoned) session; return how many."""
        ...


async def sweep_forever(sessions: UploadSessions, interval: float) -> None:
    """Remove expired sessions every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        removed = await sessions.sweep()
        if removed:
            log.info("removed %d expired resumable uploads", removed)
