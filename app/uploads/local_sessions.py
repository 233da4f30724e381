"""Resumable upload sessions kept on local disk, in the store, so they outlive the process.

Each session is two files in the store's hidden ``.uploads/`` folder: the
bytes received so far (``ID.part``, whose size is the offset) and its state
(``ID.json``: length, metadata, expiry, and once finished the video's name).
Appending takes an exclusive ``flock`` on the bytes, so two writers, in this
process or another one serving the same store, can never interleave.

The request that appends the last byte marks the state *finalising* before it
lets go of that lock, and holds a ``flock`` on ``ID.final`` for as long as it
ingests: nobody appends to or completes the upload a second time meanwhile,
and should its process die, the free lock tells the next request that the
upload was abandoned (its bytes went with the ingest), so it is cleaned up.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from pathlib import Path

from app.core.errors import AbandonedUpload, ExpiredUpload, UnknownUpload, UploadBusy
from app.storage.base import StagedFile
from app.storage.space import FreeSpace, full_disk_refused
from app.uploads.sessions import Appender, Session, open_only, valid_upload_id

log = logging.getLogger(__name__)


class LocalUploadSessions:
    """The sessions of one store folder."""

    def __init__(self, folder: Path, expiry_seconds: int, space: FreeSpace) -> None:
        self._folder = folder
        self._expiry = expiry_seconds
        self._space = space
        self._finalisers: dict[str, int] = {}  # upload id -> the fd holding its ID.final lock

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if not valid_upload_id(upload_id):
            raise UnknownUpload(upload_id)
        return self._folder / f"{upload_id}.json", self._folder / f"{upload_id}.part"

    def _final_path(self, upload_id: str) -> Path:
        return self._paths(upload_id)[0].with_suffix(".final")

    def _save(self, session: Session) -> None:
        """Replace the state atomically; StorageFull if there is no room, leaving the old state and no debris."""
        state, _ = self._paths(session.id)
        temporary = state.with_suffix(f".{secrets.token_hex(6)}.tmp")
        try:
            with full_disk_refused():
                temporary.write_text(json.dumps(asdict(session)))
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        os.replace(temporary, state)

    def _load(self, upload_id: str) -> Session:
        """The saved state; UnknownUpload if there is none, or none that can be read."""
        state, _ = self._paths(upload_id)
        try:
            return Session(**json.loads(state.read_text()))
        except FileNotFoundError:
            raise UnknownUpload(upload_id) from None
        except (ValueError, TypeError):
            log.warning("unreadable resumable upload state %s", state)
            raise UnknownUpload(upload_id) from None

    async def create(self, length: int, metadata: dict[str, str], raw_metadata: str, name: str) -> Session:
        self._space.require(length)
        session = Session(secrets.token_urlsafe(24), length, metadata, raw_metadata, name, self._new_expiry())
        self._save(session)  # state first: the sweeper finds and removes it should we crash now
        try:
            with full_disk_refused():
                self._paths(session.id)[1].touch(exist_ok=False)
        except BaseException:
            await self.remove(session.id)
            raise
        return session

    async def get(self, upload_id: str) -> Session:
        """The live session, or UnknownUpload / ExpiredUpload / AbandonedUpload (which also remove it).

        A finalising session does not expire while its ingest runs, however long that takes.
        """
        session = self._load(upload_id)
        if session.finalising and self._abandoned(upload_id):
            await self.remove(upload_id)
            raise AbandonedUpload(upload_id)
        if not session.finalising and session.expires < time.time():
            await self.remove(upload_id)
            raise ExpiredUpload(upload_id)
        return session

    def _abandoned(self, upload_id: str) -> bool:
        """Whether nobody holds the finalising lock although the state (read again now) says finalising."""
        try:
            fd = os.open(self._final_path(upload_id), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return self._load(upload_id).finalising
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return self._load(upload_id).finalising

    async def offset(self, session: Session) -> int:
        if session.closed:
            return session.length
        try:
            return self._paths(session.id)[1].stat().st_size
        except FileNotFoundError:
            raise UnknownUpload(session.id) from None

    @asynccontextmanager
    async def appending(self, session: Session) -> AsyncIterator[Appender]:
        """Exclusive append access to an open upload.

        UploadBusy if another request holds it, UploadClosed if it is finalising
        or finished. When the block ends, still under the lock, the expiry is
        renewed if bytes were kept (an upload that makes progress stays alive)
        and, if the block ended normally with every byte in, the upload is
        marked finalising.
        """
        fd = await self._open_bytes(session.id)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UploadBusy(session.id) from None
            size = os.fstat(fd).st_size
            appender = Appender(fd, open_only(await self.get(session.id)), size, size, self._space)
            try:
                yield appender
            finally:
                if appender.offset > appender.start:
                    appender.session = self._renew(appender.session)
            if appender.complete:
                appender.session = self._finalise(appender.session)
        finally:
            os.close(fd)

    async def _open_bytes(self, upload_id: str) -> int:
        """A descriptor of the upload's bytes; UploadClosed if they went to ingest, UnknownUpload if gone."""
        try:
            return os.open(self._paths(upload_id)[1], os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            open_only(await self.get(upload_id))
            raise UnknownUpload(upload_id) from None

    def _renew(self, session: Session) -> Session:
        renewed = replace(session, expires=self._new_expiry())
        self._save(renewed)
        return renewed

    def _finalise(self, session: Session) -> Session:
        """Take the finalising lock, then say so in the state: a reader who sees the state can trust the lock."""
        self._hold_finalising_lock(session.id)
        finalising = replace(session, finalising=True)
        try:
            self._save(finalising)
        except BaseException:
            self._release_finalising_lock(session.id)
            raise
        return finalising

    def _hold_finalising_lock(self, upload_id: str) -> None:
        fd = os.open(self._final_path(upload_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UploadBusy(upload_id) from None
        self._finalisers[upload_id] = fd

    def _release_finalising_lock(self, upload_id: str) -> None:
        self._final_path(upload_id).unlink(missing_ok=True)
        fd = self._finalisers.pop(upload_id, None)
        if fd is not None:
            os.close(fd)

    async def take_data(self, session: Session, staged: StagedFile) -> None:
        """Move the finished upload's bytes (a file in the store) into ``staged``: no copy."""
        staged.adopt(self._paths(session.id)[1])

    async def finish(self, session: Session, video_name: str) -> Session:
        """Remember which video the upload became, so a client can still ask afterwards."""
        finished = replace(session, video_name=video_name, finalising=False)
        self._save(finished)
        self._paths(session.id)[1].unlink(missing_ok=True)
        self._release_finalising_lock(session.id)
        return finished

    async def remove(self, upload_id: str) -> None:
        for path in self._paths(upload_id):
            path.unlink(missing_ok=True)
        self._release_finalising_lock(upload_id)

    async def sweep(self) -> int:
        """Remove every expired or abandoned session; return how many."""
        removed = 0
        for state in self._folder.glob("*.json"):
            try:
                await self.get(state.stem)
            except (ExpiredUpload, AbandonedUpload):
                removed += 1
            except UnknownUpload:
                continue
        return removed

    def _new_expiry(self) -> float:
        return time.time() + self._expiry
