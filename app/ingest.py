"""The one pipeline every upload goes through before it becomes a visible video.

Whatever way the bytes arrived (a form, a raw PUT, a resumable upload), they
sit in a staged file inside the store. Here they are proven to be a whole
video (415 otherwise), rewritten with the MP4 index first when a browser would
otherwise have to fetch the end of the file before playing, and published.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import av.error

from app.media import MediaInfo, NotAVideo, faststart, inspect, moov_after_mdat
from app.storage import LocalStore, Publish, StagedFile
from app.uploads import UploadError

log = logging.getLogger(__name__)
_FASTSTART_CONTAINERS = {"mp4", "mov"}


def _validate(path: Path, name: str) -> tuple[MediaInfo, bool]:
    """Blocking: the media info, and whether the file needs its index moved first."""
    info = inspect(path, name)
    return info, info.container in _FASTSTART_CONTAINERS and moov_after_mdat(path)


def _remux_faststart(source: Path, target: Path, name: str, container: str) -> bool:
    """Blocking: write the faststart copy and check it; False leaves the original to be used."""
    try:
        faststart(source, target, container)
        inspect(target, name)
        return not moov_after_mdat(target)
    except (av.error.FFmpegError, NotAVideo) as exc:
        log.warning("faststart remux of %r failed, storing it as uploaded: %s", name, exc)
        return False


async def ingest(store: LocalStore, staged: StagedFile, name: str, mode: Publish, accept_any_file: bool) -> str:
    """Validate, faststart and publish ``staged`` as ``name``; return the name it got."""
    if accept_any_file:
        return await staged.publish(name, mode)
    try:
        info, needs_faststart = await asyncio.to_thread(_validate, staged.path, name)
    except NotAVideo as exc:
        raise UploadError(415, f"not a video: {exc}") from None
    if needs_faststart:
        async with store.staged() as remuxed:
            remuxed.close()
            if await asyncio.to_thread(_remux_faststart, staged.path, remuxed.path, name, info.container):
                return await remuxed.publish(name, mode)
    return await staged.publish(name, mode)
