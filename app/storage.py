"""Where videos live: a directory on local disk (the embedded default store).

The store is the single source of truth. Reads hand out an opened file whose
validators come from ``fstat`` of the very descriptor the bytes are read from,
so a file replaced or deleted mid-response still serves one consistent
version. Writes go to a hidden staging folder inside the store and become
visible only by an atomic, never-overwriting link once complete and synced.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.names import check_stored_name, numbered

STAGING_DIR = ".staging"
STALE_STAGING_SECONDS = 24 * 3600
_MAX_NUMBERED_TRIES = 100


class NotFound(LookupError):
    """No stored video has this name."""


class LocalFile:
    """One opened version of a stored file (satisfies ``file_stream.ByteSource``)."""

    def __init__(self, fd: int, chunk_bytes: int) -> None:
        info = os.fstat(fd)
        self._fd = fd
        self._chunk_bytes = chunk_bytes
        self.size = info.st_size
        self.last_modified = info.st_mtime
        # Nanosecond mtime and the inode tell apart same-size versions written
        # within one second, which a seconds-based Last-Modified cannot.
        self.etag = f'"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"'

    async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        """Read with ``pread`` on the event loop: page-cache reads are faster than a thread hop."""
        position = start
        while position < stop:
            chunk = os.pread(self._fd, min(self._chunk_bytes, stop - position), position)
            if not chunk:
                raise OSError(f"file shrank to {position} bytes while being sent")
            position += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class StagedFile:
    """An upload being written inside the store, invisible until published."""

    def __init__(self, root: Path, staging: Path) -> None:
        self._root = root
        self.path = staging / f"upload-{secrets.token_hex(12)}.part"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self.size = 0
        self.published = False

    def write(self, data: bytes | memoryview) -> None:
        """Append to the staged file (page-cache writes: cheap enough for the event loop)."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)

    async def publish(self, name: str) -> str:
        """Make the file visible under ``name``, or a numbered variant if taken; return it."""
        final = await asyncio.to_thread(self._publish, check_stored_name(name))
        self.published = True
        return final

    def _publish(self, name: str) -> str:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        for candidate in _candidates(name):
            try:
                os.link(self.path, self._root / candidate)
            except FileExistsError:
                continue
            os.unlink(self.path)
            _fsync_dir(self._root)
            return candidate
        raise FileExistsError(f"no free name near {name!r}")

    def discard(self) -> None:
        """Remove the staged bytes unless they were published; safe to call twice."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if not self.published:
            self.path.unlink(missing_ok=True)


def _candidates(name: str):
    """The name itself, then numbered variants, then a random one that cannot collide."""
    yield name
    for number in range(2, _MAX_NUMBERED_TRIES + 2):
        yield numbered(name, number)
    yield numbered(name, secrets.randbelow(10**12))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """A directory of videos; names are single, visible path components."""

    def __init__(self, root: Path, chunk_bytes: int) -> None:
        self.root = root.resolve()
        self.chunk_bytes = chunk_bytes
        self._staging = self.root / STAGING_DIR
        self._staging.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_staging()

    def open(self, name: str) -> LocalFile:
        """Open a stored file for reading; symlinks may point only inside the store."""
        path = os.path.realpath(self.root / check_stored_name(name))
        folder, resolved_name = os.path.split(path)
        if folder != str(self.root) or resolved_name.startswith("."):
            raise NotFound(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise NotFound(name) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotFound(name)
        return LocalFile(fd, self.chunk_bytes)

    @asynccontextmanager
    async def staged(self) -> AsyncIterator[StagedFile]:
        """A staging file that is removed again unless published inside the block."""
        staged = StagedFile(self.root, self._staging)
        try:
            yield staged
        finally:
            staged.discard()

    def _sweep_stale_staging(self) -> None:
        """Remove debris of a crashed process; young files may belong to a live worker."""
        cutoff = time.time() - STALE_STAGING_SECONDS
        for entry in self._staging.iterdir():
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink(missing_ok=True)
