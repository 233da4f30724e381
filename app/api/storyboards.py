"""Serving a video's storyboard (seek previews): its WebVTT thumbnails track and the sprite sheets it names.

``/video/{name}/storyboard.vtt`` is served only while the catalog says the storyboard is of the version
stored now, and revalidated (``VIDEO_CACHE_CONTROL``); its cues name sprites under the storyboard's version
(``storyboard/<version>/<n>.jpg#xywh=...``, relative to it), which never change and are cached for good.
Both through the same delivery as the video (``made.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.api.made import serve_derived
from app.api.streams import streaming_openapi, streaming_responses
from app.core.errors import InvalidName, NotFound
from app.core.names import check_stored_name
from app.media.info import STORYBOARD_TRACK
from app.services import Services, get_services

router = APIRouter()


async def storyboard_track(name: str, request: Request, services: Services = Depends(get_services)) -> Response:
    """The video's WebVTT thumbnails track (``storyboard_url``): each cue a sprite and the tile in it
    (``#xywh=x,y,w,h``) that shows its time."""
    storyboard = (await services.library.describe(check_stored_name(name))).storyboard
    if storyboard is None:
        raise NotFound(name)
    return await serve_derived(request, services, name, storyboard.named_by, revalidated=True)


async def storyboard_sprite(name: str, version: str, file: str, request: Request,
                            services: Services = Depends(get_services)) -> Response:
    """A JPEG sprite sheet of the video's storyboard, as its track names it."""
    if file == STORYBOARD_TRACK:
        raise NotFound(name)  # the track has one URL, the one that is revalidated
    return await serve_derived(request, services, name, f"storyboard/{version}/{file}", revalidated=False)


for _path, _endpoint, _summary, _type in (
        ("/video/{name}/storyboard.vtt", storyboard_track, "The storyboard (seek previews) of a video, as WebVTT",
         "text/vtt"),
        ("/video/{name}/storyboard/{version}/{file}", storyboard_sprite, "A sprite sheet of a video's storyboard",
         "image/jpeg")):
    router.add_api_route(_path, _endpoint, methods=["GET"], summary=_summary,
                         responses=streaming_responses(InvalidName, NotFound, types=(_type,)),
                         openapi_extra=streaming_openapi())
    router.add_api_route(_path, _endpoint, methods=["HEAD"], include_in_schema=False)
