"""Where videos live: a directory on local disk (the embedded default store).

The store is the single source of truth. Reads hand out an opened file whose
validators come from ``fstat`` of the very descriptor the bytes are read from,
so a file replaced or deleted mid-response still serves one consistent
version. Writes go to a hidden staging folder inside the store and become
visible only by an atomic, never-overwriting link once complete and synced.
Opening the store removes the staging files of processes that died
(``staging.py``); those of live processes, this store's users too, stay.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import stat
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path

from app.core.errors import AlreadyExists, NotFound
from app.core.names import check_derived_path, check_stored_name, is_stored_name
from app.storage.base import DERIVED_DIR, SIDECAR_DIR, SIDECAR_KINDS, Entry, Publish, StagedFile, candidate_names, \
    folder_in, newest_first, staged_in
from app.storage.space import FreeSpace, full_disk_refused
from app.storage.staging import remove_orphans

STAGING_DIR = ".staging"
RESUMABLE_DIR = ".uploads"
# O_NONBLOCK: opening a FIFO (or a device) put in the store by hand returns at once instead of
# waiting for a writer on the event loop; the fstat that follows refuses it. Reads of regular files
# are not affected by the flag.
_READ_NO_SYMLINK = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class LocalFile:
    """One opened version of a stored file (satisfies ``file_stream.ByteSource``)."""

    def __init__(self, fd: int, info: os.stat_result, key: str, chunk_bytes: int) -> None:
        self._fd = fd
        self.key = key  # where it lives, relative to the store's root
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

    async def read(self, start: int, stop: int) -> bytes:
        """One ``pread``: a regular file gives everything asked for unless it shrank."""
        data = os.pread(self._fd, stop - start, start)
        if len(data) < stop - start:
            raise OSError(f"file shrank to {start + len(data)} bytes while being sent")
        return data

    async def media_location(self) -> str:
        """A path to exactly this opened version, for tools in other processes (PyAV workers)."""
        return f"/proc/{os.getpid()}/fd/{self._fd}"

    async def client_location(self, lifetime: timedelta) -> str:
        raise NotImplementedError("a local file has no URL of its own: serve it (proxy) or hand it to nginx")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """A directory of videos; names are single, visible path components.

    Derived data about a video (metadata, poster) lives beside it as sidecar
    files in a hidden folder, so copying the directory copies everything.
    """

    def __init__(self, root: Path, chunk_bytes: int, min_free_bytes: int) -> None:
        self.root = root.resolve()
        self.space = FreeSpace(self.root, min_free_bytes)
        self._no_reserve = FreeSpace(self.root, 0)
        self._root_text = str(self.root)  # os.path on the hot path: pathlib costs microseconds
        self.chunk_bytes = chunk_bytes
        self._staging = self.root / STAGING_DIR
        self._sidecars = self.root / SIDECAR_DIR
        self._resumable = self.root / RESUMABLE_DIR
        for folder in (self._staging, self._sidecars, self._resumable):
            folder.mkdir(parents=True, exist_ok=True)
        remove_orphans(self._staging)

    async def open(self, name: str) -> LocalFile:
        """Open a stored file for reading; symlinks may point only inside the store."""
        path = os.path.join(self._root_text, check_stored_name(name))
        try:
            fd = os.open(path, _READ_NO_SYMLINK)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise NotFound(name) from exc
            fd = self._open_symlink_target(path, name)
        return self._regular(fd, name, name)

    def _open_symlink_target(self, link: str, name: str) -> int:
        """Follow a symlink only to a visible file directly inside the store."""
        target = os.path.realpath(link)
        folder, resolved_name = os.path.split(target)
        if folder != self._root_text or resolved_name.startswith("."):
            raise NotFound(name)
        try:
            return os.open(target, _READ_NO_SYMLINK)
        except OSError as exc:
            raise NotFound(name) from exc

    def _regular(self, fd: int, name: str, key: str) -> LocalFile:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise NotFound(name)
        return LocalFile(fd, info, key, self.chunk_bytes)

    async def check(self) -> None:
        """Stat the store's folder, in a thread: a network filesystem that hangs must not hold the event loop."""
        await asyncio.to_thread(os.stat, self.root)

    async def entries(self) -> list[Entry]:
        """Every stored video, newest first (ties by name); listed in a thread, as a big folder takes a while."""
        return await asyncio.to_thread(self._entries)

    def _entries(self) -> list[Entry]:
        found = []
        with os.scandir(self.root) as listing:
            for item in listing:
                if is_stored_name(item.name) and item.is_file():
                    info = item.stat()
                    found.append(Entry(item.name, info.st_size, info.st_mtime))
        return newest_first(found)

    async def delete(self, name: str) -> None:
        """Remove a video and its sidecars; readers that already opened it finish undisturbed."""
        try:
            (self.root / check_stored_name(name)).unlink()
        except FileNotFoundError:
            raise NotFound(name) from None
        for kind in SIDECAR_KINDS:
            self._sidecar_path(name, kind).unlink(missing_ok=True)
        await asyncio.to_thread(shutil.rmtree, self._derived_folder(name), ignore_errors=True)

    @property
    def resumable_dir(self) -> Path:
        """Where unfinished resumable uploads keep their bytes and state."""
        return self._resumable

    def staged(self) -> AbstractAsyncContextManager[StagedFile]:
        """A staging file inside the store (so publishing is a link), removed unless published."""
        return staged_in(self._staging, self.space)

    async def publish(self, staged: StagedFile, name: str, mode: Publish = Publish.UNIQUE) -> str:
        """Sync the staged bytes and make them visible under ``name`` as ``mode`` says; return the name."""
        with full_disk_refused():
            final = await asyncio.to_thread(self._publish, staged, check_stored_name(name), mode)
        staged.published = True
        return final

    def _publish(self, staged: StagedFile, name: str, mode: Publish) -> str:
        staged.sync()
        if mode is Publish.REPLACE:
            os.replace(staged.path, self.root / name)
            final = name
        else:
            final = self._link_new(staged.path, name, mode)
        _fsync_dir(self.root)
        return final

    def _link_new(self, path: Path, name: str, mode: Publish) -> str:
        for candidate in candidate_names(name, mode):
            try:
                os.link(path, self.root / candidate)
            except FileExistsError:
                continue
            os.unlink(path)
            return candidate
        raise AlreadyExists(name)

    def _sidecar_key(self, name: str, kind: str) -> str:
        return f"{SIDECAR_DIR}/{check_stored_name(name)}.{kind}"

    def _sidecar_path(self, name: str, kind: str) -> Path:
        return self.root / self._sidecar_key(name, kind)

    async def read_sidecar(self, name: str, kind: str) -> bytes | None:
        try:
            return self._sidecar_path(name, kind).read_bytes()
        except FileNotFoundError:
            return None

    async def write_sidecar(self, name: str, kind: str, data: bytes) -> None:
        """Replace a sidecar atomically, so readers see the old or the new one, never half.

        StorageFull if there is no room, leaving the old one (or none) and no temporary file.
        Written into the reserve: sidecars are what it is kept for (``space.py``).
        """
        async with staged_in(self._staging, self._no_reserve) as temporary:
            temporary.write(data)
            os.replace(temporary.path, self._sidecar_path(name, kind))
            temporary.published = True

    async def open_sidecar(self, name: str, kind: str) -> LocalFile:
        try:
            fd = os.open(self._sidecar_path(name, kind), _READ_NO_SYMLINK)
        except OSError as exc:
            raise NotFound(name) from exc
        return self._regular(fd, name, self._sidecar_key(name, kind))

    def staged_folder(self) -> AbstractAsyncContextManager[Path]:
        """A folder in the store's staging folder: on the store's filesystem, so its files move in by a rename."""
        return folder_in(self._staging)

    def _derived_folder(self, name: str) -> Path:
        return self.root / DERIVED_DIR / check_stored_name(name)

    def _derived_path(self, name: str, path: str) -> Path:
        return self._derived_folder(name) / check_derived_path(path)

    async def put_derived(self, name: str, path: str, source: Path) -> None:
        """Synced, then renamed into place: after a crash a playlist never names a segment that was lost."""
        target = self._derived_path(name, path)
        with full_disk_refused():
            await asyncio.to_thread(self._move_in, source, target)

    @staticmethod
    def _move_in(source: Path, target: Path) -> None:
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)

    async def open_derived(self, name: str, path: str) -> LocalFile:
        target = self._derived_path(name, path)
        try:
            fd = os.open(target, _READ_NO_SYMLINK)
        except OSError as exc:
            raise NotFound(name) from exc
        return self._regular(fd, name, str(target.relative_to(self.root)))

    async def derived_paths(self, name: str) -> list[str]:
        return await asyncio.to_thread(self._derived_paths, self._derived_folder(name))

    @staticmethod
    def _derived_paths(folder: Path) -> list[str]:
        return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())

    async def delete_derived(self, name: str, paths: list[str]) -> None:
        await asyncio.to_thread(self._delete_derived, self._derived_folder(name), paths)

    @staticmethod
    def _delete_derived(folder: Path, paths: list[str]) -> None:
        """Remove the files, then the folders they leave empty."""
        for path in paths:
            (folder / check_derived_path(path)).unlink(missing_ok=True)
        for parent in sorted({(folder / path).parent for path in paths}, key=lambda p: -len(p.parts)):
            while parent != folder and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
