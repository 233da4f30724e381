"""The one pipeline every upload goes through before it becomes a visible video.

Whatever way the bytes arrived (a form, a raw PUT, a resumable upload), they
sit in a staged file inside the store. Here they are proven to be a whole
video (415 otherwise), rewritten with the MP4 index first when a browser would
otherwise have to fetch the end of the file before playing, and published.
"""

from __future__ import annotations

from app.media import NotAVideo
from app.services import Services
from app.storage import Publish, StagedFile
from app.uploads import UploadError


async def ingest(app: Services, staged: StagedFile, name: str, mode: Publish) -> str:
    """Validate, faststart and publish ``staged`` as ``name``; return the name it got.

    ``accept_any_file`` stores what is not a video unchanged instead of refusing
    it; a video is still probed and gets its index first like any other.
    """
    try:
        info, needs_faststart = await app.media.run("validate_upload", str(staged.path), name)
    except NotAVideo as exc:
        if app.settings.accept_any_file:
            return await app.store.publish(staged, name, mode)
        raise UploadError(415, f"not a video: {exc}") from None
    if needs_faststart:
        async with app.store.staged() as remuxed:
            remuxed.close()
            if await app.media.run("remux_faststart", str(staged.path), str(remuxed.path), name, info.container):
                return await app.store.publish(remuxed, name, mode)
    return await app.store.publish(staged, name, mode)
