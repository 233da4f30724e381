"""What every store is: the interface, and the parts its implementations share.

A store holds videos under names, and beside each video its sidecars (derived
data such as metadata and a poster, keyed by the video's name and a kind).
Reads hand out a :class:`StoredFile`: one opened version, whose validators
describe exactly the bytes it reads. Writes arrive in a :class:`StagedFile`
on local disk and become visible only once ``publish`` says so, atomically.
The local directory (``local.py``) and the S3 bucket (``s3.py``) both satisfy
:class:`Store`; nothing above this package knows which one it has.
"""

from __future__ import annotations

import asyncio
import enum
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from app.core.errors import NotFound
from app.core.names import numbered
from app.storage.space import FreeSpace, full_disk_refused
from app.storage.staging import LockedFolder, create_locked, lock_existing

SIDECAR_DIR = ".library"
SIDECAR_KINDS = ("json", "jpg", "renditions", "storyboard")
DERIVED_DIR = f"{SIDECAR_DIR}/renditions"
"""Where the files made from each video (its renditions, its storyboard) live, a folder per video: ``<DERIVED_DIR>/<name>/<path>``."""
_MAX_NUMBERED_TRIES = 100


class StoredFile(Protocol):
    """One opened version of a stored file (satisfies ``file_stream.ByteSource``)."""

    key: str  # where it lives inside the store
    size: int
    etag: str
    last_modified: float

    def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        """The bytes ``[start, stop)`` of this version, in order."""
        ...

    async def read(self, start: int, stop: int) -> bytes:
        """The bytes ``[start, stop)`` of this version in one piece."""
        ...

    async def media_location(self) -> str:
        """Where a media worker in another process can read exactly this version (a path or a URL)."""
        ...

    async def client_location(self, lifetime: timedelta) -> str:
        """A URL a client may fetch these bytes from itself for ``lifetime`` (object stores; NotImplementedError
        for a store that has none: the settings allow redirect delivery only over an object store)."""
        ...

    def close(self) -> None:
        """Release what the version holds open; safe to call twice."""
        ...


class Publish(enum.Enum):
    """How a staged file takes its name."""

    UNIQUE = "unique"  # the name, or the first free numbered variant
    CREATE = "create"  # the name only if nothing has it yet
    REPLACE = "replace"  # the name, atomically replacing what had it


@dataclass(frozen=True)
class Entry:
    """A stored video as a directory listing sees it."""

    name: str
    size: int
    modified: float


class Store(Protocol):
    """Videos under names, with their sidecars; NotFound and InvalidName for names it cannot serve.

    A write that finds no room raises StorageFull, having changed nothing that was stored.
    """

    space: FreeSpace  # the local filesystem uploads are staged on, and the reserve kept free on it

    async def open(self, name: str) -> StoredFile:
        """The current version of a stored video, opened for reading."""
        ...

    async def entries(self) -> list[Entry]:
        """Every stored video, newest first (ties by name)."""
        ...

    async def delete(self, name: str) -> None:
        """Remove a video and its sidecars."""
        ...

    def staged(self) -> AbstractAsyncContextManager[StagedFile]:
        """A local staging file for a new video, removed when the block ends unless published."""
        ...

    async def publish(self, staged: StagedFile, name: str, mode: Publish = Publish.UNIQUE) -> str:
        """Make the staged bytes the video ``name`` as ``mode`` says; return the name it got."""
        ...

    async def read_sidecar(self, name: str, kind: str) -> bytes | None:
        """A sidecar's bytes, or None if there is none."""
        ...

    async def write_sidecar(self, name: str, kind: str, data: bytes) -> None:
        """Replace a sidecar, so that readers see the old one or the new one, never half."""
        ...

    async def open_sidecar(self, name: str, kind: str) -> StoredFile:
        """A sidecar opened for streaming (NotFound if there is none)."""
        ...

    async def check(self) -> None:
        """Return once the store has answered a request, cheaply (no listing); raise if it cannot be reached."""
        ...

    def staged_folder(self) -> AbstractAsyncContextManager[Path]:
        """A new local folder for a media worker to make files in, removed with what is left when the block ends."""
        ...

    async def put_derived(self, name: str, path: str, source: Path) -> None:
        """Make the local file ``source`` (taken, not copied) the file ``path`` made from the video ``name``,
        replacing one there atomically; ``path`` as ``names.check_derived_path`` allows."""
        ...

    async def open_derived(self, name: str, path: str) -> StoredFile:
        """A file made from the video ``name``, opened for streaming (NotFound if there is none)."""
        ...

    async def derived_paths(self, name: str) -> list[str]:
        """The paths of every file made from the video ``name``."""
        ...

    async def delete_derived(self, name: str, paths: list[str]) -> None:
        """Remove these files made from the video ``name`` (those already gone are no error)."""
        ...


class StagedFile:
    """A local file being written before it becomes a stored video, locked for its whole life (``staging.py``).

    Either appended to with :meth:`write`, written at :attr:`path` by another
    writer (a remuxer in a worker: its own descriptor leaves the lock alone),
    or put in the place of a finished file with :meth:`adopt`. A store's
    ``publish`` makes it visible; otherwise it is removed when its block ends.
    """

    def __init__(self, staging: Path, space: FreeSpace) -> None:
        with full_disk_refused():
            self._fd, self.path = create_locked(staging, "upload-", ".part")
        self._guard = space.guard()
        self.size = 0
        self.published = False

    def require(self, incoming: int) -> None:
        """StorageFull now unless ``incoming`` bytes, announced before they are sent, fit above the reserve."""
        self._guard.require(incoming)

    def write(self, data: bytes | memoryview) -> None:
        """Append to the staged file (page-cache writes: cheap enough for the event loop).

        StorageFull when the disk is full or the reserve is reached; the block
        that staged the file then removes it.
        """
        for written in self._guard.write(self._fd, data):
            self.size += written

    def adopt(self, finished: Path) -> None:
        """Become the finished file ``finished`` (on the same filesystem), moved here instead of copied.

        It is locked before it is renamed over this one, and this one's lock is
        let go only afterwards: the staging name is never without a live lock.
        The reserve is not looked at: no byte is written, those moved already have their room.
        """
        fd = lock_existing(finished, os.O_WRONLY | os.O_APPEND)
        try:
            os.rename(finished, self.path)
        except BaseException:
            os.close(fd)
            raise
        os.close(self._fd)
        self._fd = fd
        self.size = os.fstat(fd).st_size

    def measure(self) -> int:
        """The size on disk, whoever wrote the bytes (a remuxer writes at :attr:`path`, not through :meth:`write`)."""
        self.size = os.fstat(self._fd).st_size
        return self.size

    def sync(self) -> None:
        """Flush the bytes to disk, whoever wrote them (``fsync`` is of the file), and take their size."""
        os.fsync(self._fd)
        self.measure()

    def discard(self) -> None:
        """Remove the staged bytes unless they were published, then let go of the lock; safe to call twice.

        In that order, so the file is never in staging unlocked while its owner lives.
        """
        if self._fd < 0:
            return
        if not self.published:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1


@asynccontextmanager
async def staged_in(staging: Path, space: FreeSpace) -> AsyncIterator[StagedFile]:
    """A staging file on the filesystem of ``space``, removed again unless published inside the block."""
    staged = StagedFile(staging, space)
    try:
        yield staged
    finally:
        staged.discard()


@asynccontextmanager
async def folder_in(staging: Path) -> AsyncIterator[Path]:
    """A new folder in ``staging``, removed with all in it when the block ends (``staging.LockedFolder``)."""
    with full_disk_refused():
        folder = LockedFolder(staging, "made-")
    try:
        yield folder.path
    finally:
        await asyncio.to_thread(folder.remove)


async def stored_now(store: Store, name: str) -> StoredFile | None:
    """The validators of the version stored under ``name`` now (its file closed at once); None if there is none."""
    try:
        current = await store.open(name)
    except NotFound:
        return None
    current.close()
    return current


def candidate_names(name: str, mode: Publish) -> Iterator[str]:
    """The names a publish may take, in order: just ``name`` unless any free variant will do."""
    yield name
    if mode is Publish.UNIQUE:
        yield from _numbered_candidates(name)


def _numbered_candidates(name: str) -> Iterator[str]:
    """Numbered variants, then a random one that cannot collide."""
    for number in range(2, _MAX_NUMBERED_TRIES + 2):
        yield numbered(name, number)
    yield numbered(name, secrets.randbelow(10**12))


def newest_first(entries: list[Entry]) -> list[Entry]:
    """The library's order: newest first, ties by name, the same for every store."""
    return sorted(entries, key=lambda entry: (-entry.modified, entry.name))
