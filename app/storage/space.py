"""Room on the local filesystem that uploads are written to: the reserve kept free, and a full disk.

A full disk (or a used-up quota) refuses the upload that met it with
StorageFull instead of failing as a fault of the server. The reserve
(``VIDEO_MIN_FREE_BYTES``) refuses uploads before they take the last of the
space, so that what the service must still write (resumable uploads' state,
sidecars) and whatever else shares the disk keeps room. Sidecars and state are
written without looking at the reserve: they are what it is kept for.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core.errors import StorageFull

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})

CHECK_EVERY_BYTES = 4 * 1024 * 1024
"""How much one stream of bytes writes between two looks at the free space.

A ``statvfs`` costs about a microsecond, a chunk of an upload is typically
64 KiB: looking every 4 MiB keeps the cost out of sight, and lets a writer
dip at most this far into a reserve that is much larger.
"""


@contextmanager
def full_disk_refused() -> Iterator[None]:
    """Turn a write's "no space left" or "quota exceeded" into StorageFull; other errors pass unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise StorageFull() from exc
        raise


class FreeSpace:
    """The reserve of the filesystem holding ``folder``; a reserve of 0 is off and costs nothing."""

    def __init__(self, folder: Path, reserve: int) -> None:
        self.folder = folder
        self.reserve = reserve

    def require(self, incoming: int) -> None:
        """StorageFull unless ``incoming`` more bytes leave the reserve free.

        Counts the blocks an unprivileged writer may use: a filesystem's
        blocks kept for root, if any, are extra margin, not room for uploads.
        """
        if not self.reserve:
            return
        info = os.statvfs(self.folder)
        if info.f_bavail * info.f_frsize - incoming < self.reserve:
            raise StorageFull()

    def guard(self) -> WriteGuard:
        """A guard for one new stream of bytes."""
        return WriteGuard(self)


class WriteGuard:
    """Checks the reserve as one stream of bytes is written: before its first write, then every few MiB."""

    def __init__(self, space: FreeSpace) -> None:
        self._space = space
        self._unchecked = CHECK_EVERY_BYTES

    def require(self, incoming: int) -> None:
        """StorageFull now unless ``incoming`` bytes (a size announced up front) fit above the reserve."""
        self._space.require(incoming)

    def write(self, fd: int, data: bytes | memoryview) -> Iterator[int]:
        """Write all of ``data`` to ``fd``, yielding what each write took.

        So that the writer counts every byte that reached the file even when
        StorageFull (a full disk, or the reserve) stops it midway.
        """
        self.before_write(len(data))
        view = memoryview(data)
        with full_disk_refused():
            while view:
                written = os.write(fd, view)
                view = view[written:]
                yield written

    def before_write(self, count: int) -> None:
        """StorageFull if the free space has fallen below the reserve since the last look."""
        self._unchecked += count
        if self._unchecked >= CHECK_EVERY_BYTES:
            self._unchecked = 0
            self._space.require(count)
