"""What the jobs that make files from a video (renditions, storyboards) share: the version their files are
named under, publishing a staged folder of them, and removing the files of other versions.

Each kind owns its own part of the video's folder of made files (``FOLDERS`` of its module): it publishes
and removes only there, so the kinds never take each other's files away.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from app.core.errors import NotFound
from app.storage.base import Store, stored_now


class MadeSet(Protocol):
    """What a job made of one version: that version's ETag, the version its files are under, and the file
    that names the others (published last)."""

    source_etag: str
    version: str

    @property
    def named_by(self) -> str: ...


Made = TypeVar("Made", bound=MadeSet)


def made_version(etag: str, settings: object) -> str:
    """The name of the files made of version ``etag`` with ``settings``: new settings make new files."""
    return hashlib.sha256(f"{etag} {settings!r}".encode()).hexdigest()[:16]


async def publish_folder(store: Store, name: str, folder: Path, order: Callable[[str], object]) -> None:
    """Every file a worker made in ``folder`` (but its hidden bookkeeping), in ``order``: one that names
    others goes after them, so that nothing names what is not there."""
    for path in sorted((str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                        and not p.name.startswith(".")), key=order):
        await store.put_derived(name, path, folder / path)


async def is_current(store: Store, name: str, etag: str) -> bool:
    """Whether version ``etag`` is the one stored under ``name`` now."""
    current = await stored_now(store, name)
    return current is not None and current.etag == etag


async def remove_others(store: Store, name: str, folders: tuple[str, ...], owns: Callable[[str], bool]) -> None:
    """Remove the files in ``folders`` that the kept set does not ``own`` (older versions, a killed try's)."""
    stale = [path for path in await store.derived_paths(name) if path.startswith(folders) and not owns(path)]
    if stale:
        await store.delete_derived(name, stale)


async def kept(store: Store, name: str, sidecar: str, parse: Callable[[dict[str, Any]], Made],
               etag: str, version: str) -> Made | None:
    """What the ``sidecar`` says was made of version ``etag`` under ``version``, when the file that names the
    others (its ``named_by``) is there: a job tried again, or a catalog rebuilt, need not make it again."""
    data = await store.read_sidecar(name, sidecar)
    if data is None:
        return None
    try:
        made = parse(json.loads(data))
    except (ValueError, KeyError, TypeError):
        return None
    if made.source_etag != etag or made.version != version:
        return None
    try:
        (await store.open_derived(name, made.named_by)).close()
    except NotFound:
        return None
    return made
