"""Resumable upload sessions, kept on disk in the store so they outlive the process.

Each session is two files in the store's hidden ``.uploads/`` folder: the
bytes received so far (``ID.part``, whose size is the offset) and its state
(``ID.json``: length, metadata, expiry, and once finished the video's name).
Appending takes an exclusive ``flock`` on the bytes, so two writers, in this
process or another one serving the same store, can never interleave.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.s3_resumable import S3UploadSessions

_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
log = logging.getLogger(__name__)


def valid_upload_id(upload_id: str) -> bool:
    """Ids are made here; anything else (a path, say) names no upload."""
    return _ID.fullmatch(upload_id) is not None


class UnknownUpload(LookupError):
    """No upload session has this id (never created, finished long ago, or terminated)."""


class ExpiredUpload(LookupError):
    """The session outlived its expiry and has been removed."""


class UploadBusy(RuntimeError):
    """Another request is appending to this session right now."""


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


class Appender:
    """Exclusive, appending access to a session's bytes, for one request.

    ``start`` and ``offset`` are positions in the upload; the bytes go to
    ``fd``, where position ``start`` of the upload is at byte ``base``.
    """

    def __init__(self, fd: int, start: int, base: int) -> None:
        self._fd = fd
        self._base = base
        self.start = start
        self.offset = start

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self.offset += len(data)

    def discard(self) -> None:
        """Forget everything this request appended (a bad checksum, too many bytes)."""
        os.ftruncate(self._fd, self._base)
        self.offset = self.start


class UploadSessions:
    """The sessions of one store folder."""

    def __init__(self, folder: Path, expiry_seconds: int) -> None:
        self._folder = folder
        self._expiry = expiry_seconds

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if not valid_upload_id(upload_id):
            raise UnknownUpload(upload_id)
        return self._folder / f"{upload_id}.json", self._folder / f"{upload_id}.part"

    def _save(self, session: Session) -> None:
        state, _ = self._paths(session.id)
        temporary = state.with_suffix(f".{secrets.token_hex(6)}.tmp")
        temporary.write_text(json.dumps(asdict(session)))
        os.replace(temporary, state)

    async def create(self, length: int, metadata: dict[str, str], raw_metadata: str, name: str) -> Session:
        session = Session(secrets.token_urlsafe(24), length, metadata, raw_metadata, name, self._new_expiry())
        self._save(session)  # state first: the sweeper finds and removes it should we crash now
        self._paths(session.id)[1].touch(exist_ok=False)
        return session

    async def get(self, upload_id: str) -> Session:
        """The live session, or UnknownUpload / ExpiredUpload (which also removes it)."""
        state, _ = self._paths(upload_id)
        try:
            session = Session(**json.loads(state.read_text()))
        except FileNotFoundError:
            raise UnknownUpload(upload_id) from None
        if session.expires < time.time():
            await self.remove(upload_id)
            raise ExpiredUpload(upload_id)
        return session

    async def offset(self, session: Session) -> int:
        if session.video_name is not None:
            return session.length
        try:
            return self._paths(session.id)[1].stat().st_size
        except FileNotFoundError:
            raise UnknownUpload(session.id) from None

    @asynccontextmanager
    async def appending(self, session: Session) -> AsyncIterator[Appender]:
        """Exclusive append access; UploadBusy if another request holds it."""
        _, data = self._paths(session.id)
        try:
            fd = os.open(data, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            raise UnknownUpload(session.id) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UploadBusy(session.id) from None
            size = os.fstat(fd).st_size
            yield Appender(fd, size, size)
        finally:
            os.close(fd)

    async def touch(self, session: Session) -> Session:
        """Push the expiry back: an upload that makes progress stays alive."""
        renewed = replace(session, expires=self._new_expiry())
        self._save(renewed)
        return renewed

    async def take_data(self, session: Session) -> Path:
        """The finished upload's bytes as a file in the store, for the ingest pipeline to adopt."""
        return self._paths(session.id)[1]

    async def finish(self, session: Session, video_name: str) -> Session:
        """Remember which video the upload became, so a client can still ask afterwards."""
        finished = replace(session, video_name=video_name)
        self._save(finished)
        self._paths(session.id)[1].unlink(missing_ok=True)
        return finished

    async def remove(self, upload_id: str) -> None:
        for path in self._paths(upload_id):
            path.unlink(missing_ok=True)

    async def sweep(self) -> int:
        """Remove every expired session; return how many."""
        removed = 0
        now = time.time()
        for state in self._folder.glob("*.json"):
            try:
                expired = json.loads(state.read_text())["expires"] < now
            except (OSError, ValueError, KeyError):
                continue
            if expired:
                await self.remove(state.stem)
                removed += 1
        return removed

    def _new_expiry(self) -> float:
        return time.time() + self._expiry


async def sweep_forever(sessions: UploadSessions | S3UploadSessions, interval: float) -> None:
    """Remove expired sessions every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        removed = await sessions.sweep()
        if removed:
            log.info("removed %d expired resumable uploads", removed)
