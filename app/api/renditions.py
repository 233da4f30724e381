"""Serving a video's renditions: its HLS master playlist, rendition playlists and segments, and its web MP4.

The same ``delivery`` as the video itself (ranges, validators, 304, HEAD;
redirect or x-accel when set: ``made.py``). The master playlist is the only file whose URL
does not name a rendition version: it is served only while the catalog says
the renditions are of the version stored now, and revalidated like every
playlist; what lies under a version never changes, so it is cached for good.
Playlists are never redirected to the object store: the URIs in them are
relative, and must lead back here, where each segment is answered (and
redirected, with ``VIDEO_DELIVERY=redirect``) like a video.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.api.made import serve_derived
from app.api.streams import streaming_openapi, streaming_responses
from app.core.errors import InvalidName, NotFound
from app.core.names import check_stored_name
from app.library.renditions import MASTER
from app.services import Services, get_services

router = APIRouter()


async def _serve_made(request: Request, services: Services, name: str, path: str) -> Response:
    if path == MASTER and (await services.library.describe(check_stored_name(name))).renditions is None:
        raise NotFound(name)
    return await serve_derived(request, services, name, path, revalidated=path.endswith(".m3u8"))


async def hls_file(name: str, path: str, request: Request, services: Services = Depends(get_services)) -> Response:
    """A file of the video's HLS stream: ``master.m3u8``, then what it names."""
    return await _serve_made(request, services, name, f"hls/{path}")


async def web_file(name: str, file: str, request: Request, services: Services = Depends(get_services)) -> Response:
    """The web MP4 made of the video (``web_url``)."""
    return await _serve_made(request, services, name, f"web/{file}")


for _path, _endpoint, _summary in (("/video/{name}/hls/{path:path}", hls_file, "HLS playlists and segments of a video"),
                                   ("/video/{name}/web/{file}", web_file, "The web MP4 made of a video")):
    router.add_api_route(_path, _endpoint, methods=["GET"], summary=_summary,
                         responses=streaming_responses(InvalidName, NotFound), openapi_extra=streaming_openapi())
    router.add_api_route(_path, _endpoint, methods=["HEAD"], include_in_schema=False)
