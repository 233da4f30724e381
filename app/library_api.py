"""The library API: list, describe, replace and delete videos, and their posters."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from app.auth import require_writer
from app.delivery import serve
from app.file_stream import evaluate_preconditions
from app.ingest import ingest
from app.models import VideoInfo, VideoPage, video_info
from app.names import check_stored_name
from app.services import Services, services
from app.storage import AlreadyExists, NotFound, Publish
from app.uploads import UploadError, receive_raw_body
from app.urls import video_url

router = APIRouter()


def _precondition_failed() -> UploadError:
    return UploadError(412, "precondition failed: the video changed or already exists")


# One lock per written name, so a precondition check and the write it guards happen
# as one in this process; kept for the life of the process (a small object per name).
_write_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


async def _current_validators(app: Services, name: str) -> tuple[str | None, float | None]:
    try:
        current = await app.store.open(name)
    except NotFound:
        return None, None
    current.close()
    return current.etag, current.last_modified


async def _check_write_preconditions(request: Request, app: Services, name: str) -> bool:
    """Raise 412 when If-Match / If-None-Match refuse the write; return whether the name exists."""
    etag, modified = await _current_validators(app, name)
    if evaluate_preconditions(request.method, request.headers, etag, modified) is not None:
        raise _precondition_failed()
    return etag is not None


@router.get("/video", response_model=VideoPage)
async def list_videos(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    app: Services = Depends(services),
) -> VideoPage:
    """The library, newest first, a page at a time."""
    records, total = await app.library.page(limit, offset)
    following = offset + limit
    return VideoPage(
        videos=[video_info(record, request, app.settings) for record in records],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=following if following < total else None,
    )


@router.get("/video/{name}", response_model=VideoInfo)
async def describe_video(name: str, request: Request, app: Services = Depends(services)) -> VideoInfo:
    """One video's metadata, with its video and poster URLs."""
    return video_info(await app.library.describe(name), request, app.settings)


async def _poster(name: str, request: Request, app: Services = Depends(services)) -> Response:
    source = await app.library.poster(name)
    return await serve(request, source, f"{name.rpartition('.')[0] or name}.jpg", app.settings)


router.add_api_route("/video/{name}/poster.jpg", _poster, methods=["GET"], summary="Poster JPEG of a video")
router.add_api_route("/video/{name}/poster.jpg", _poster, methods=["HEAD"], include_in_schema=False)


@router.put(
    "/video/{name}",
    response_model=VideoInfo,
    status_code=201,
    dependencies=[Depends(require_writer)],
    responses={200: {"description": "Replaced", "model": VideoInfo}, 412: {"description": "Precondition failed"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {
        "type": "string", "format": "binary"}}}}},
)
async def put_video(name: str, request: Request, app: Services = Depends(services)) -> JSONResponse:
    """Create or atomically replace a video from the raw body (``curl -T clip.mp4``).

    ``If-Match`` guards a replace; ``If-None-Match: *`` only creates.
    """
    check_stored_name(name)
    await _check_write_preconditions(request, app, name)
    mode = Publish.CREATE if request.headers.get("if-none-match", "").strip() == "*" else Publish.REPLACE
    async with app.store.staged() as staged:
        await receive_raw_body(request, staged, app.settings.max_upload_bytes)
        async with _write_locks[name]:
            existed = await _check_write_preconditions(request, app, name)
            try:
                await ingest(app, staged, name, mode)
            except AlreadyExists:
                raise _precondition_failed() from None
    info = video_info(await app.library.describe(name), request, app.settings)
    status = 200 if existed else 201
    headers = {} if existed else {"location": video_url(request, app.settings, name)}
    return JSONResponse(info.model_dump(), status_code=status, headers=headers)


@router.delete("/video/{name}", status_code=204, dependencies=[Depends(require_writer)])
async def delete_video(name: str, request: Request, app: Services = Depends(services)) -> Response:
    """Remove a video and its metadata; streams already open finish with the bytes they started."""
    async with _write_locks[name]:
        if not await _check_write_preconditions(request, app, check_stored_name(name)):
            raise NotFound(name)
        await app.store.delete(name)
    return Response(status_code=204)
