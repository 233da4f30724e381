"""Serving the files made from a video (renditions, storyboards): the same ``delivery`` as the video itself
(ranges, validators, 304, HEAD, CORS; redirect or x-accel when set), and how long each may be cached.

A file whose URL names the version of what was made (a segment, a sprite) never changes: it is cached for good.
One whose URL does not (a master playlist, a storyboard's track), and the playlists, are revalidated
(``VIDEO_CACHE_CONTROL``) and never redirected to the object store: the URIs in them are relative, and must
lead back here.
"""

from __future__ import annotations

from fastapi import Request, Response

from app.core.errors import NotFound
from app.core.names import DERIVED_PATH, check_stored_name
from app.delivery import serve
from app.services import Services

IMMUTABLE = "public, max-age=31536000, immutable"
"""Files under a version (segments, web MP4s, sprites): their URLs name it, and its bytes never change."""


async def serve_derived(request: Request, services: Services, name: str, path: str, *, revalidated: bool) -> Response:
    """The file ``path`` made from the video ``name`` (NotFound for a path no such file has, or a file not
    there); ``revalidated`` for one that names others (see above)."""
    check_stored_name(name)
    if not DERIVED_PATH.fullmatch(path):
        raise NotFound(name)
    source = await services.store.open_derived(name, path)
    return await serve(request, source, path.rpartition("/")[2], services.settings,
                       None if revalidated else IMMUTABLE, may_redirect=not revalidated)
