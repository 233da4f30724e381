"""The library API: upload, list, describe, replace and delete videos, and their posters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from app.api.auth import require_writer
from app.api.models import VideoEdit, VideoInfo, VideoPage, WorkUpdate, video_info
from app.api.urls import video_url
from app.api.errors import documented
from app.api.streams import streaming_openapi, streaming_responses
from app.core.errors import (InvalidCursor, InvalidName, MalformedUpload, NotAVideo, NotFound, PreconditionFailed, StorageFull,
                             UnsupportedUpload, UploadTooLarge, WriteBusy, WriteNotAllowed)
from app.core.names import check_stored_name
from app.delivery import serve
from app.file_stream import consulted_headers, evaluate_preconditions
from app.jobs.queue import WorkState
from app.library.videos import DEFAULT_SORT, SORT_NAMES
from app.services import Services, get_services
from app.storage.base import Publish, stored_now
from app.uploads.receive import FILE_FIELD, receive_multipart_file, receive_raw_body

router = APIRouter()

MAX_QUERY_CHARACTERS = 200
"""A bound on what one search may ask the database to match."""

EVENTS_RETRY_MS = 2000
"""How soon a browser's EventSource reconnects after a dropped events stream."""

DESCRIPTION_CACHING = "private, no-cache"
"""Descriptions hold URLs built from the request's host (and trusted X-Forwarded-* headers), so no
shared cache may hand one client's answer to another; browsers ask again each time (they change)."""

_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary", "minLength": 1}},
                }
            }
        },
    }
}

Sort = Literal[SORT_NAMES]  # type: ignore[valid-type]  # the orders the library offers, as the schema's enum

MAX_OFFSET = 10**9
"""Far past any library, and within the database's integers."""

async def _check_write_preconditions(request: Request, services: Services, name: str) -> bool:
    """PreconditionFailed when If-Match / If-None-Match refuse the write; return whether the name exists.

    Final only inside ``services.writing(name)``: outside, another write may change the name right after.
    """
    current = await stored_now(services.store, name)
    etag, modified = (current.etag, current.last_modified) if current else (None, None)
    if evaluate_preconditions(request.method, consulted_headers(request.scope), etag, modified) is not None:
        raise PreconditionFailed()
    return current is not None


@router.post("/video", status_code=201, response_model=VideoInfo, dependencies=[Depends(require_writer)],
             openapi_extra=_UPLOAD_FORM,
             responses=documented(MalformedUpload, WriteNotAllowed, UploadTooLarge, UnsupportedUpload, NotAVideo,
                                  StorageFull))
async def upload_video(request: Request, services: Services = Depends(get_services)) -> JSONResponse:
    """Store the multipart field ``file`` as a new video under a new, unique name."""
    async with services.store.staged() as staged:
        name = await receive_multipart_file(request, staged, services.settings.max_upload_bytes)
        record = await services.add_upload(staged, name)
    info = video_info(record, request, services.settings)
    return JSONResponse(info.model_dump(), status_code=201, headers={"location": info.video_url})


@router.get("/video", response_model=VideoPage, responses=documented(InvalidCursor))
async def list_videos(
    request: Request,
    response: Response,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, pattern="^[A-Za-z0-9_-]+$",
                               description="next_cursor of the previous page; leave out for the first"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET,
                        description="rows to skip, for clients that page by offset; ignored with cursor"),
    sort: Sort = Query(DEFAULT_SORT, description="newest first, by title A to Z, largest first or longest first; "
                                                  "a cursor continues the order it was handed out for"),
    q: str | None = Query(None, min_length=1, max_length=MAX_QUERY_CHARACTERS,
                          description="only the videos whose title or file name holds each of these words "
                                      "(as a word or the start of one, in any case); keep it on the following pages"),
    services: Services = Depends(get_services),
) -> VideoPage:
    """The library a page at a time, newest first unless ``sort`` says otherwise, all of it or what ``q``
    finds: follow ``next_cursor`` (each page costs the same at any depth)."""
    response.headers["cache-control"] = DESCRIPTION_CACHING
    page = await services.library.page(limit, cursor, offset, sort, q)
    following = offset + limit
    by_offset = cursor is None
    return VideoPage(
        videos=[video_info(record, request, services.settings) for record in page.records],
        total=page.total,
        offset=offset if by_offset else None,
        limit=limit,
        next_offset=following if by_offset and following < page.total else None,
        next_cursor=page.next_cursor,
    )


@router.get("/video/{name}", response_model=VideoInfo, responses=documented(InvalidName, NotFound))
async def describe_video(name: str, request: Request, response: Response,
                         services: Services = Depends(get_services)) -> VideoInfo:
    """One video's metadata, with its video and poster URLs."""
    response.headers["cache-control"] = DESCRIPTION_CACHING
    return video_info(await services.library.describe(name), request, services.settings)


@router.get("/video/{name}/events", response_class=StreamingResponse, responses={
    200: {"description": "Server-sent events, each ``event: status`` with the JSON of ``WorkUpdate``, until the "
                         "status is no longer processing", "content": {"text/event-stream": {"schema": {
                             "type": "string"}}}},
    **documented(InvalidName, NotFound)})
async def video_events(name: str, services: Services = Depends(get_services)) -> StreamingResponse:
    """A video's status and progress as server-sent events: now, then at each change until it is ready or
    has failed (then the stream ends; ``GET /video/{name}`` tells the rest)."""
    check_stored_name(name)
    record = await services.library.describe(name)
    updates = services.library.work_updates(name, record.work, services.settings.job_poll_seconds)
    return StreamingResponse(_events(updates), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


async def _events(updates: AsyncIterator[WorkState]) -> AsyncIterator[str]:
    yield f"retry: {EVENTS_RETRY_MS}\n\n"
    async for state in updates:
        update = WorkUpdate(status=state.status, progress=state.progress, status_reason=state.reason)
        yield f"event: status\ndata: {update.model_dump_json()}\n\n"


async def _poster(name: str, request: Request, services: Services = Depends(get_services)) -> Response:
    source = await services.library.poster(name)
    return await serve(request, source, f"{name.rpartition('.')[0] or name}.jpg", services.settings)


router.add_api_route("/video/{name}/poster.jpg", _poster, methods=["GET"], summary="Poster JPEG of a video",
                     responses=streaming_responses(InvalidName, NotFound), openapi_extra=streaming_openapi())


@router.put(
    "/video/{name}",
    response_model=VideoInfo,
    status_code=201,
    dependencies=[Depends(require_writer)],
    responses={200: {"description": "Replaced", "model": VideoInfo},
               **documented(InvalidName, MalformedUpload, WriteNotAllowed, PreconditionFailed, UploadTooLarge,
                            NotAVideo, WriteBusy, StorageFull)},
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {
        "type": "string", "format": "binary", "minLength": 1}}}}},
)
async def put_video(name: str, request: Request, services: Services = Depends(get_services)) -> JSONResponse:
    """Create or atomically replace a video from the raw body (``curl -T clip.mp4``).

    ``If-Match`` guards a replace; ``If-None-Match: *`` only creates. Checked before the body is read (a
    write that would be refused sends no bytes for nothing) and again, finally, under the name's write claim
    with the publish, so that of two writers with the same ``If-Match``, on any instances, one is refused.
    """
    check_stored_name(name)
    await _check_write_preconditions(request, services, name)
    create_only = consulted_headers(request.scope).get("if-none-match", "").strip() == "*"
    mode = Publish.CREATE if create_only else Publish.REPLACE
    async with services.store.staged() as staged:
        await receive_raw_body(request, staged, services.settings.max_upload_bytes)
        async with services.ingest.prepared(staged, name) as ready, services.writing(name):
            existed = await _check_write_preconditions(request, services, name)
            record = await services.catalogue(await services.ingest.publish(ready, name, mode))
    info = video_info(record, request, services.settings)
    status = 200 if existed else 201
    headers = {} if existed else {"location": video_url(request, services.settings, name)}
    return JSONResponse(info.model_dump(), status_code=status, headers=headers)


@router.patch("/video/{name}", response_model=VideoInfo, dependencies=[Depends(require_writer)],
              responses=documented(InvalidName, WriteNotAllowed, NotFound, PreconditionFailed, WriteBusy, StorageFull))
async def edit_video(name: str, edit: VideoEdit, request: Request, response: Response,
                     services: Services = Depends(get_services)) -> VideoInfo:
    """Change a video's title and/or description; ``If-Match`` with its ETag edits only that version."""
    response.headers["cache-control"] = DESCRIPTION_CACHING
    async with services.writing(check_stored_name(name)):
        if not await _check_write_preconditions(request, services, name):
            raise NotFound(name)
        record = await services.library.edit(name, edit.changes())
    return video_info(record, request, services.settings)


@router.delete("/video/{name}", status_code=204, dependencies=[Depends(require_writer)],
               responses=documented(InvalidName, WriteNotAllowed, NotFound, PreconditionFailed, WriteBusy))
async def delete_video(name: str, request: Request, services: Services = Depends(get_services)) -> Response:
    """Remove a video and its metadata; streams already open finish with the bytes they started.

    ``If-Match`` deletes only that version: checked and acted on under the name's write claim.
    """
    async with services.writing(check_stored_name(name)):
        if not await _check_write_preconditions(request, services, name):
            raise NotFound(name)
        await services.library.delete(name)
    return Response(status_code=204)


# HEAD answers what GET would, without the body (RFC 9110 section 9.3.2); left out of the document,
# which describes each GET once.
for _path, _endpoint in (("/video", list_videos), ("/video/{name}", describe_video),
                         ("/video/{name}/poster.jpg", _poster)):
    router.add_api_route(_path, _endpoint, methods=["HEAD"], include_in_schema=False)
