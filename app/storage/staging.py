"""Local staging files that say whether their owner is alive: each is held under an ``flock`` for its whole life.

A file in a staging folder (an upload being received, a faststart remux, a
sidecar about to replace the old one, a buffered S3 part) is created and
locked at once, and its descriptor stays open, the lock with it, until the
file is published or removed. When a process dies, even by ``kill -9``, the
kernel closes its descriptors and the lock goes: so at start-up a store
removes every staging file whose lock it can take, whatever its age, and
leaves the locked ones to their owners (other live processes sharing the
store or the staging folder).

``flock`` and not ``fcntl``/``lockf`` record locks, deliberately:

- an ``flock`` belongs to the open file description, so it follows the file
  through ``rename`` and ``link`` and is not lost when the file is opened and
  closed again by its path. A record lock belongs to the process and the
  inode, and the first ``close`` of *any* descriptor of that file in the
  process would drop it;
- two descriptors of one process conflict under ``flock``, so a sweep by a
  second store in the same process (the tests, a CLI) also sees the file as
  taken; record locks never conflict inside a process and would let it delete
  a live file.

A lock is held as long as any descriptor of its open file description is:
media workers fork from a forkserver, a freshly executed process that gets
only the descriptors it is passed, so no worker inherits one that would keep
the lock of a dead server held.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import stat
from pathlib import Path

log = logging.getLogger(__name__)

_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_INSPECT = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def create_locked(folder: Path, prefix: str, suffix: str = "", mode: int = 0o644) -> tuple[int, Path]:
    """A new, empty file in ``folder`` under a random name, and its descriptor holding the lock.

    Between the create and the lock a starting sweep may take the file for an
    orphan and remove it; then the descriptor names no file, and another name is tried.
    """
    while True:
        path = folder / f"{prefix}{secrets.token_hex(12)}{suffix}"
        fd = os.open(path, _CREATE, mode)
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: only a sweep can hold it, for microseconds
        if _names(path, fd):
            return fd, path
        os.close(fd)


def lock_existing(path: Path, flags: int) -> int:
    """Open ``path`` with ``flags`` and take its lock before it moves into staging (waiting if need be).

    The wait is for a request of another process that opened a resumable
    upload's bytes just as it finished: it lets go as soon as it sees that.
    """
    fd = os.open(path, flags | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still is the file open at ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


_FOLDER_LOCK, _FOLDER = ".lock", ".d"


class LockedFolder:
    """A new folder in ``folder`` for many files (a video's renditions), until :meth:`remove` removes it with them.

    A folder cannot hold an ``flock`` that outlives its owner's descriptors as
    a file does, so its life is a locked file's beside it (``<random>.lock``
    for ``<random>.d``): made first and removed last, so a folder without its
    lock file belongs to nobody, and the sweep removes it.
    """

    def __init__(self, folder: Path, prefix: str) -> None:
        self._fd, self._lock = create_locked(folder, prefix, _FOLDER_LOCK)
        self.path = self._lock.with_suffix(_FOLDER)
        try:
            self.path.mkdir()
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Remove the folder and all in it, then its lock file; safe to call twice."""
        if self._fd < 0:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1


def remove_orphans(folder: Path) -> int:
    """Remove every regular file in ``folder`` whose lock is free (its owner died), then every folder whose
    lock file is gone (``locked_folder``); return how many."""
    removed = sum(_remove_if_orphaned(path) for path in folder.iterdir())
    removed += sum(_remove_if_unlocked_folder(path) for path in folder.iterdir())
    if removed:
        log.info("removed %d staging files left by processes that died, from %s", removed, folder)
    return removed


def _remove_if_unlocked_folder(path: Path) -> bool:
    if path.suffix != _FOLDER or path.is_symlink() or not path.is_dir() or path.with_suffix(_FOLDER_LOCK).exists():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def _remove_if_orphaned(path: Path) -> bool:
    """Take the file's lock without waiting; if that works nobody owns it, and it goes while still locked.

    The name is checked again under the lock: an owner that adopts a file
    renames it over its own locked one and only then lets go of that, so a
    lock taken on the file it replaced says nothing about the file now named.
    """
    try:
        fd = os.open(path, _INSPECT)
    except OSError:  # gone meanwhile, or a symlink: not a staging file of ours
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not _names(path, fd):
            return False
        path.unlink(missing_ok=True)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
