"""What the jobs that make files from a video (renditions, storyboards) share: the job itself.

Such a job has a media worker make the files of the version stored now in a local staging folder, under a
version drawn from the source's ETag and the settings (new settings make new files), then publishes them
into the store, beside the video, in an order that never lets a file name another that is not there yet;
then a JSON sidecar that says what was made (so that a job tried again, or a catalog rebuilt, need not make
it again); then the catalog; and last the files of other versions go. A version replaced meanwhile is not
published at all. Each kind owns its own part of the video's folder of made files (its ``folders``): it
publishes and removes only there, so the kinds never take each other's files away.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from app.catalog.catalog import Catalog
from app.core.errors import NotFound
from app.jobs.queue import Job
from app.jobs.runner import Report
from app.media.workers import MediaWorkers
from app.storage.base import Store, StoredFile, stored_now


class MadeSet(Protocol):
    """What a job made of one version: that version's ETag, the version its files are under, the file that
    names the others (published last), and which files are its own."""

    source_etag: str
    version: str

    @property
    def named_by(self) -> str: ...

    def owns(self, path: str) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


Made = TypeVar("Made", bound=MadeSet)


def made_version(etag: str, settings: object) -> str:
    """The name of the files made of version ``etag`` with ``settings``: new settings make new files."""
    return hashlib.sha256(f"{etag} {settings!r}".encode()).hexdigest()[:16]


class MadeFromVideos(Generic[Made]):
    """The job that makes one kind of files from the videos of one store (see the module's text).

    A kind says its ``sidecar`` and ``folders``, whether it is ``enabled``, how to ``_make`` its files in a
    folder, ``_parse`` its sidecar, ``_record`` what it made in the catalog, and the ``_publishing_order``.
    """

    sidecar: str
    folders: tuple[str, ...]

    def __init__(self, store: Store, media: MediaWorkers, catalog: Catalog, settings: Any,
                 timeout_seconds: float) -> None:
        self._store = store
        self._media = media
        self._catalog = catalog
        self.settings = settings
        self._timeout = timeout_seconds  # for the worker's part: longer than the usual limit of a probe

    @property
    def enabled(self) -> bool:
        raise NotImplementedError

    async def _make(self, name: str, source: StoredFile, folder: Path, version: str, report: Report) -> Made | None:
        """Have a worker make the files of the opened ``source`` of the video ``name`` in ``folder``, under
        ``version``; None: nothing to make."""
        raise NotImplementedError

    def _parse(self, raw: dict[str, Any]) -> Made:
        raise NotImplementedError

    async def _record(self, name: str, made: Made) -> None:
        raise NotImplementedError

    @staticmethod
    def _publishing_order(path: str) -> Any:
        """Sorts the paths of the files made: one that names others after them."""
        raise NotImplementedError

    async def run(self, job: Job, report: Report) -> None:
        """The job: make the files of the version stored now, unless its sidecar says they were made already;
        record them in the catalog, and remove those of other versions. Nothing when the kind is turned off."""
        if not self.enabled:
            return
        try:
            source = await self._store.open(job.video)
        except NotFound:
            return
        try:
            version = made_version(source.etag, self.settings)
            made = await self._kept(job.video, source.etag, version) or await self._made(job.video, source, version,
                                                                                          report)
        finally:
            source.close()
        if made is None:
            return
        report(1.0)
        await self._record(job.video, made)
        await self._remove_others(job.video, made)

    async def open(self, name: str, path: str) -> StoredFile:
        """A file made from the video ``name`` (NotFound if there is none)."""
        return await self._store.open_derived(name, path)

    async def _kept(self, name: str, etag: str, version: str) -> Made | None:
        """What the sidecar says was made of version ``etag`` under ``version``, when the file that names the
        others is there."""
        data = await self._store.read_sidecar(name, self.sidecar)
        if data is None:
            return None
        try:
            made = self._parse(json.loads(data))
        except (ValueError, KeyError, TypeError):
            return None
        if made.source_etag != etag or made.version != version:
            return None
        try:
            (await self.open(name, made.named_by)).close()
        except NotFound:
            return None
        return made

    async def _made(self, name: str, source: StoredFile, version: str, report: Report) -> Made | None:
        """Make and publish the files of the opened ``source``, then the sidecar; None if there was nothing to
        make, or a newer version is stored by then."""
        async with self._store.staged_folder() as folder:
            made = await self._make(name, source, folder, version, report)
            if made is None or not await self._is_current(name, source.etag):
                return None
            await self._publish(name, folder)
        await self._store.write_sidecar(name, self.sidecar, json.dumps(made.to_dict()).encode())
        return made

    async def _publish(self, name: str, folder: Path) -> None:
        """Every file the worker made (but its hidden bookkeeping), in the publishing order."""
        for path in sorted((str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                            and not p.name.startswith(".")), key=self._publishing_order):
            await self._store.put_derived(name, path, folder / path)

    async def _is_current(self, name: str, etag: str) -> bool:
        current = await stored_now(self._store, name)
        return current is not None and current.etag == etag

    async def _remove_others(self, name: str, kept: Made) -> None:
        """Remove the files in this kind's folders that ``kept`` does not own (other versions, a killed try's)."""
        stale = [path for path in await self._store.derived_paths(name)
                 if path.startswith(self.folders) and not kept.owns(path)]
        if stale:
            await self._store.delete_derived(name, stale)
