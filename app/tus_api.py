"""Resumable uploads over the tus 1.0.0 protocol, under ``/uploads/``.

Core protocol plus the creation, creation-with-upload, termination,
expiration and checksum extensions. A finished upload goes through the same
ingest pipeline as ``POST /video``; the resulting video's URL is answered in
the ``Video-URL`` header of the final PATCH (and of HEAD afterwards). While
it is being ingested, HEAD answers the whole length without a ``Video-URL``,
and PATCH or DELETE are refused with 423.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import require_writer
from app.file_stream import http_date
from app.ingest import ingest
from app.names import InvalidName, name_from_filename
from app.resumable import (AbandonedUpload, Appender, ExpiredUpload, Session, UnknownUpload, UploadBusy, UploadClosed,
                           open_only)
from app.services import Services, services
from app.storage import Publish
from app.uploads import UploadError, byte_count, declared_length, request_chunks, too_large
from app.urls import base_url, video_url

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
CHECKSUMS = ("sha1", "md5", "sha256")
CHUNK_TYPE = "application/offset+octet-stream"
# Headers a browser client must be allowed to send and to read (CORS).
REQUEST_HEADERS = ["Tus-Resumable", "Upload-Length", "Upload-Metadata", "Upload-Offset", "Upload-Checksum"]
RESPONSE_HEADERS = ["Location", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
                    "Tus-Checksum-Algorithm", "Upload-Offset", "Upload-Length", "Upload-Metadata",
                    "Upload-Expires", "Video-URL"]


class TusResumableHeader:
    """ASGI middleware: every answer under /uploads/ says which tus version it speaks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/uploads"):
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"tus-resumable", TUS_VERSION.encode())]
            await send(message)

        await self.app(scope, receive, send_with_version)


async def require_tus_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise UploadError(412, f"this server speaks tus {TUS_VERSION}", {"tus-version": TUS_VERSION})


_SESSION_REFUSALS: dict[type[Exception], tuple[int, str]] = {
    UnknownUpload: (404, "no such upload"),
    ExpiredUpload: (410, "the upload expired"),
    AbandonedUpload: (410, "the server stopped while ingesting this upload and its bytes are lost: upload it again"),
    UploadBusy: (409, "another request is appending to this upload"),
}


class _TusRoute(APIRoute):
    """Answers the session store's refusals as 4xx, wherever in a request they arise.

    A session can vanish or expire between any two steps of a request (another
    request finished or terminated it), so one place maps them, not each step.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except tuple(_SESSION_REFUSALS) as refusal:
                status, detail = _SESSION_REFUSALS[type(refusal)]
                raise UploadError(status, detail) from None

        return answer


router = APIRouter(prefix="/uploads", tags=["resumable uploads (tus)"], route_class=_TusRoute)
_writes = [Depends(require_writer), Depends(require_tus_version)]


def _ingesting() -> UploadError:
    return UploadError(423, "the upload is complete and its video is being ingested: "
                            "HEAD tells its Video-URL once that is done")


def _decimal_header(request: Request, name: str) -> int:
    """A byte count from a header, or 400."""
    value = byte_count(request.headers.get(name))
    if value is None:
        raise UploadError(400, f"{name} must be a non-negative integer")
    return value


def _parse_metadata(header: str) -> dict[str, str]:
    """``key base64value`` pairs separated by commas (values may be absent)."""
    metadata = {}
    for pair in filter(None, (item.strip() for item in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise UploadError(400, f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
    return metadata


def _video_name(metadata: dict[str, str]) -> str:
    """The stored name from ``filename`` (or ``name``), else one made from ``filetype``."""
    filename = metadata.get("filename") or metadata.get("name")
    if not filename:
        filename = "video" + (mimetypes.guess_extension(metadata.get("filetype", "")) or "")
    try:
        return name_from_filename(filename)
    except InvalidName as exc:
        raise UploadError(400, f"unusable filename {filename!r}: {exc}") from None


def _checksum(request: Request) -> tuple[str, bytes] | None:
    """The (algorithm, expected digest) of ``Upload-Checksum``, if sent."""
    header = request.headers.get("upload-checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise UploadError(400, f"unsupported checksum algorithm {algorithm!r}")
    try:
        return algorithm, base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise UploadError(400, "Upload-Checksum is not base64") from None


def _overrun() -> UploadError:
    return UploadError(400, "the body runs past Upload-Length: none of it was kept")


def _refuse_declared_overrun(request: Request, remaining: int) -> None:
    """Refuse before reading a byte when Content-Length already runs past Upload-Length."""
    declared = declared_length(request)
    if declared is not None and declared > remaining:
        raise _overrun()


async def _append_body(request: Request, appender: Appender, remaining: int) -> None:
    """Append the request body; a bad checksum or an overlong body keeps none of it.

    A client that leaves midway keeps what arrived (that is what resuming is
    for), unless a checksum was promised, which a part cannot be checked against.
    An overlong body is a broken client, not a cut one: its first chunks are no
    more trustworthy than its last, so they go too.
    """
    _refuse_declared_overrun(request, remaining)
    checksum = _checksum(request)
    digest = hashlib.new(checksum[0]) if checksum else None
    try:
        async for chunk in request_chunks(request):
            if appender.offset - appender.start + len(chunk) > remaining:
                appender.discard()
                raise _overrun()
            appender.write(chunk)
            if digest is not None:
                digest.update(chunk)
    except UploadError:
        if checksum:
            appender.discard()
        raise
    if checksum and digest.digest() != checksum[1]:
        appender.discard()
        raise UploadError(460, "checksum mismatch: the chunk was discarded")


async def _progress_headers(request: Request, app: Services, session: Session) -> dict[str, str]:
    headers = {
        "upload-offset": str(await app.uploads.offset(session)),
        "upload-expires": http_date(session.expires),
        "cache-control": "no-store",
    }
    if session.video_name is not None:
        headers["video-url"] = video_url(request, app.settings, session.video_name)
    return headers


async def _append_request(request: Request, appender: Appender) -> None:
    if request.method == "PATCH" and _decimal_header(request, "upload-offset") != appender.offset:
        raise UploadError(409, f"Upload-Offset does not match the upload's offset {appender.offset}")
    await _append_body(request, appender, appender.session.length - appender.offset)


async def _receive(request: Request, app: Services, session: Session) -> Session:
    """Append this request's body at the upload's offset; ingest once every byte is in.

    The session store marks a complete upload finalising before it lets go of
    it, so exactly one request ingests it. Bytes that completed the upload
    are ingested even if their request is then refused (a chunked body cut
    right after its last byte), before the refusal is answered.
    """
    refusal: UploadError | None = None
    async with app.uploads.appending(session) as appender:
        try:
            await _append_request(request, appender)
        except UploadError as error:
            refusal = error
    session = appender.session
    if session.finalising:
        session = await _complete(app, session)
    if refusal is not None:
        raise refusal
    return session


async def _complete(app: Services, session: Session) -> Session:
    """Run the finished bytes through ingest; a refusal or a failure ends the upload for good.

    The ingest consumes the bytes, so after a failure there is nothing left to resume.
    """
    try:
        async with app.store.staged(adopt=await app.uploads.take_data(session)) as staged:
            name = await ingest(app, staged, session.name, Publish.UNIQUE)
    except Exception:
        await app.uploads.remove(session.id)
        raise
    return await app.uploads.finish(session, name)


def _answer_closed(request: Request, session: Session) -> Session:
    """A closed upload takes no bytes; a retried final PATCH (at its length) is answered as the first was."""
    if session.finalising:
        raise _ingesting()
    if _decimal_header(request, "upload-offset") != session.length:
        raise UploadError(409, "the upload is already complete")
    return session


@router.options("/", status_code=204, include_in_schema=False)
@router.options("/{upload_id}", status_code=204, include_in_schema=False)
async def capabilities(app: Services = Depends(services)) -> Response:
    """What this tus server supports."""
    return Response(status_code=204, headers={
        "tus-version": TUS_VERSION,
        "tus-extension": EXTENSIONS,
        "tus-max-size": str(app.settings.max_upload_bytes),
        "tus-checksum-algorithm": ",".join(CHECKSUMS),
    })


@router.post("/", status_code=201, dependencies=_writes)
async def create_upload(request: Request, app: Services = Depends(services)) -> Response:
    """Create an upload (``Upload-Length``, ``Upload-Metadata`` with ``filename``), optionally with bytes."""
    length = _decimal_header(request, "upload-length")
    if length > app.settings.max_upload_bytes:
        raise too_large(app.settings.max_upload_bytes)
    raw_metadata = request.headers.get("upload-metadata", "")
    metadata = _parse_metadata(raw_metadata)
    session = await app.uploads.create(length, metadata, raw_metadata, _video_name(metadata))
    if request.headers.get("content-type") == CHUNK_TYPE or length == 0:
        session = await _receive(request, app, session)
    headers = {"location": f"{base_url(request, app.settings)}/uploads/{session.id}",
               **(await _progress_headers(request, app, session))}
    return Response(status_code=201, headers=headers)


@router.head("/{upload_id}", dependencies=_writes)
async def upload_progress(upload_id: str, request: Request, app: Services = Depends(services)) -> Response:
    """The offset to resume from (and, once finished, the video's URL)."""
    session = await app.uploads.get(upload_id)
    headers = {**(await _progress_headers(request, app, session)), "upload-length": str(session.length)}
    if session.raw_metadata:
        headers["upload-metadata"] = session.raw_metadata
    return Response(status_code=200, headers=headers)


@router.patch("/{upload_id}", status_code=204, dependencies=_writes)
async def append_chunk(upload_id: str, request: Request, app: Services = Depends(services)) -> Response:
    """Append bytes at exactly ``Upload-Offset``."""
    session = await app.uploads.get(upload_id)
    if request.headers.get("content-type") != CHUNK_TYPE:
        raise UploadError(415, f"PATCH bodies must be {CHUNK_TYPE}")
    try:
        session = await _receive(request, app, open_only(session))
    except UploadClosed as closed:
        session = _answer_closed(request, closed.session)
    return Response(status_code=204, headers=await _progress_headers(request, app, session))


@router.delete("/{upload_id}", status_code=204, dependencies=_writes)
async def terminate_upload(upload_id: str, app: Services = Depends(services)) -> Response:
    """Give up an upload and free what it holds (not while its video is being ingested)."""
    if (await app.uploads.get(upload_id)).finalising:
        raise _ingesting()
    await app.uploads.remove(upload_id)
    return Response(status_code=204)
