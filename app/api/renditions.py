"""Serving a video's renditions: its HLS master playlist, rendition playlists and segments, and its web MP4.

The same ``delivery`` as the video itself (ranges, validators, 304, HEAD;
redirect or x-accel when set: ``made.py``). The master playlist is the only file whose URL
does not name a rendition version: it is served only while the catalog says
the renditions are of the version stored now, and revalidated like every
playlist; what lies under a version never changes, so it is cached for good.
Playlists are never redirected to the object store: the URIs in them are
relative, and must lead back here, where each segment is answered (and
redirected, with ``VIDEO_DELIVERY=redirect``) like a video. A video with
caption tracks has its master playlist written here, with a SUBTITLES group
whose playlists (``hls/subtitles/<language>.m3u8``, one segment each: the
whole WebVTT track) are written here too.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.api.made import serve_derived
from app.api.streams import streaming_openapi, streaming_responses
from app.core.captions import language_tag
from app.core.errors import InvalidName, NotFound
from app.core.names import check_stored_name
from app.delivery import serve_made
from app.library.captions import Captions, subtitle_playlist, with_subtitles
from app.library.renditions import MASTER
from app.library.videos import VideoRecord
from app.services import Services, get_services

router = APIRouter()

SUBTITLES = "hls/subtitles/"
"""Where the master playlist's SUBTITLES group finds each caption track's playlist (made here, not stored)."""


async def _serve_made(request: Request, services: Services, name: str, path: str) -> Response:
    check_stored_name(name)
    if path.startswith(SUBTITLES):
        return await _subtitle_playlist(request, services, name, path.removeprefix(SUBTITLES))
    if path == MASTER:
        record = await services.library.describe(name)
        if record.renditions is None:
            raise NotFound(name)
        if record.captions:
            return await _master_with_subtitles(request, services, record)
    return await serve_derived(request, services, name, path, revalidated=path.endswith(".m3u8"))


async def _master_with_subtitles(request: Request, services: Services, record: VideoRecord) -> Response:
    """The master playlist as made, with the video's caption tracks as its SUBTITLES group: written here for
    each request (tracks come and go without new renditions), revalidated by its digest."""
    source = await services.renditions.open(record.name, MASTER)
    try:
        master = (await source.read(0, source.size)).decode()
    finally:
        source.close()
    changed = max([source.last_modified, *(track.updated for track in record.captions)])
    return serve_made(request, with_subtitles(master, record.captions).encode(), "master.m3u8", changed,
                      services.settings)


async def _subtitle_playlist(request: Request, services: Services, name: str, file: str) -> Response:
    """The media playlist of one caption track (``subtitles/<language>.m3u8``), named by the master's group."""
    language, dot, extension = file.rpartition(".")
    if extension != "m3u8" or not dot:
        raise NotFound(name)
    record = await services.library.describe(name)
    track = Captions.find(record.captions, language_tag(language))
    duration = record.media.duration if record.media and record.media.duration else 0.0
    return serve_made(request, subtitle_playlist(track.language, duration).encode(), file, track.updated,
                      services.settings)


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
