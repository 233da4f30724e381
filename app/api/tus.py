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
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import require_writer
from app.api.paths import app_path, under
from app.api.urls import base_url, video_url
from app.api.errors import documented
from app.core.errors import (ChecksumMismatch, ExpiredUpload, InvalidName, MalformedUpload, NotAVideo, NotFound,
                             OffsetMismatch,
                             StorageFull, UnknownUpload, UnsupportedTusVersion, UnsupportedUpload, UploadRefused,
                             UploadTooLarge, WriteNotAllowed)
from app.core.names import name_from_filename
from app.file_stream import http_date
from app.services import Services, get_services
from app.storage.base import Publish
from app.uploads.receive import byte_count, declared_length, request_chunks
from app.uploads.sessions import Appender, Session, UploadClosed, open_only

PREFIX = "/uploads"
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
        if scope["type"] != "http" or not under(app_path(scope), PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"tus-resumable", TUS_VERSION.encode())]
            await send(message)

        await self.app(scope, receive, send_with_version)


async def require_tus_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise UnsupportedTusVersion(TUS_VERSION)


_BYTE_COUNT = {"type": "string", "pattern": "^[0-9]{1,19}$"}
_BASE64 = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_HEADERS = {
    "Tus-Resumable": ({"type": "string", "enum": [TUS_VERSION]}, "The tus version the client speaks"),
    "Upload-Length": (_BYTE_COUNT, "The whole upload's size in bytes"),
    "Upload-Offset": (_BYTE_COUNT, "Where this chunk starts: the upload's offset now"),
    "Upload-Metadata": ({"type": "string"}, "Comma-separated 'key base64(value)' pairs; filename names the video"),
    "Upload-Checksum": ({"type": "string", "pattern": f"^(?:{'|'.join(CHECKSUMS)}) {_BASE64}$"},
                        "'algorithm base64(digest)' of this chunk: 460 and nothing kept if it does not match"),
    "Upload-Expires": ({"type": "string"}, "When an unfinished upload is removed (an HTTP date)"),
    "Location": ({"type": "string", "format": "uri"}, "The new upload's URL"),
    "Video-URL": ({"type": "string", "format": "uri"}, "The finished video's URL, once it is stored"),
}
_CHUNK_BODY = {"content": {CHUNK_TYPE: {"schema": {"type": "string", "format": "binary"}}}}


def _request_headers(required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every tus request but OPTIONS says ``Tus-Resumable``, then the headers of its own."""
    required = ("Tus-Resumable", *required)
    return [{"name": name, "in": "header", "required": name in required, "schema": _HEADERS[name][0],
             "description": _HEADERS[name][1]} for name in (*required, *optional)]


def _response_headers(required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {name: {"required": name in required, "schema": _HEADERS[name][0], "description": _HEADERS[name][1]}
            for name in (*required, *optional)}


def _tus_openapi(required: tuple[str, ...], optional: tuple[str, ...] = (), body: bool | None = None) -> dict:
    """A tus operation's headers and, where it takes one (required or not), its chunk body."""
    extra: dict[str, Any] = {"parameters": _request_headers(required, optional)}
    if body is not None:
        extra["requestBody"] = {"required": body, **_CHUNK_BODY}
    return extra


router = APIRouter(prefix=PREFIX, tags=["resumable uploads (tus)"])
_writes = [Depends(require_writer), Depends(require_tus_version)]


def _decimal_header(request: Request, name: str) -> int:
    """A byte count from a header, or MalformedUpload."""
    value = byte_count(request.headers.get(name))
    if value is None:
        raise MalformedUpload(f"{name} must be a non-negative integer")
    return value


def _parse_metadata(header: str) -> dict[str, str]:
    """``key base64value`` pairs separated by commas (values may be absent)."""
    metadata = {}
    for pair in filter(None, (item.strip() for item in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise MalformedUpload(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
    return metadata


def _video_name(metadata: dict[str, str]) -> str:
    """The stored name from ``filename`` (or ``name``), else one made from ``filetype``."""
    filename = metadata.get("filename") or metadata.get("name")
    if not filename:
        filename = "video" + (mimetypes.guess_extension(metadata.get("filetype", "")) or "")
    try:
        return name_from_filename(filename)
    except InvalidName as exc:
        raise MalformedUpload(f"unusable filename {filename!r}: {exc}") from None


_REQUEST_REFUSALS = (UploadRefused, OffsetMismatch, StorageFull)
"""What refuses one request's bytes without ending the upload: the client may send them again.

After StorageFull the bytes that fitted stay (HEAD says how many), so that
the client resumes from there once there is room.
"""


def _checksum(request: Request) -> tuple[str, bytes] | None:
    """The (algorithm, expected digest) of ``Upload-Checksum``, if sent."""
    header = request.headers.get("upload-checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise MalformedUpload(f"unsupported checksum algorithm {algorithm!r}")
    try:
        return algorithm, base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise MalformedUpload("Upload-Checksum is not base64") from None


def _overrun() -> MalformedUpload:
    return MalformedUpload("the body runs past Upload-Length: none of it was kept")


def _refuse_declared(request: Request, appender: Appender, remaining: int) -> None:
    """Refuse before reading a byte when Content-Length already runs past Upload-Length, or has no room on the disk."""
    declared = declared_length(request)
    if declared is None:
        return
    if declared > remaining:
        raise _overrun()
    appender.require(declared)


async def _append_body(request: Request, appender: Appender, remaining: int) -> None:
    """Append the request body; a bad checksum or an overlong body keeps none of it.

    A client that leaves midway, or a disk that fills up, keeps what arrived
    (that is what resuming is for), unless a checksum was promised, which a
    part cannot be checked against: then the session store is told to keep
    the bytes back until the digest has been compared.
    An overlong body is a broken client, not a cut one: its first chunks are no
    more trustworthy than its last, so they go too.
    """
    _refuse_declared(request, appender, remaining)
    checksum = _checksum(request)
    digest = hashlib.new(checksum[0]) if checksum else None
    if checksum:
        appender.hold_until_end()
    try:
        async for chunk in request_chunks(request):
            if appender.offset - appender.start + len(chunk) > remaining:
                appender.discard()
                raise _overrun()
            await appender.write(chunk)
            if digest is not None:
                digest.update(chunk)
    except (UploadRefused, StorageFull):
        if checksum:
            appender.discard()
        raise
    if checksum and digest.digest() != checksum[1]:
        appender.discard()
        raise ChecksumMismatch()


async def _progress_headers(request: Request, services: Services, session: Session) -> dict[str, str]:
    headers = {
        "upload-offset": str(await services.uploads.offset(session)),
        "upload-expires": http_date(session.expires),
        "cache-control": "no-store",
    }
    if session.video_name is not None:
        headers["video-url"] = video_url(request, services.settings, session.video_name)
    return headers


async def _append_request(request: Request, appender: Appender) -> None:
    if request.method == "PATCH" and _decimal_header(request, "upload-offset") != appender.offset:
        raise OffsetMismatch(f"Upload-Offset does not match the upload's offset {appender.offset}")
    await _append_body(request, appender, appender.session.length - appender.offset)


async def _receive(request: Request, services: Services, session: Session) -> Session:
    """Append this request's body at the upload's offset; ingest once every byte is in.

    The session store marks a complete upload finalising before it lets go of
    it, so exactly one request ingests it. Bytes that completed the upload
    are ingested even if their request is then refused (a chunked body cut
    right after its last byte), before the refusal is answered.
    """
    refusal: Exception | None = None
    async with services.uploads.appending(session) as appender:
        try:
            await _append_request(request, appender)
        except _REQUEST_REFUSALS as error:
            refusal = error
    session = appender.session
    if session.finalising:
        session = await _complete(services, session)
    if refusal is not None:
        raise refusal
    return session


async def _complete(services: Services, session: Session) -> Session:
    """Run the finished bytes through ingest; a refusal or a failure ends the upload for good.

    The ingest consumes the bytes, so after a failure there is nothing left to resume.
    """
    try:
        async with services.store.staged() as staged:
            await services.uploads.take_data(session, staged)
            ingested = await services.ingest.run(staged, session.name, Publish.UNIQUE)
    except Exception:
        await services.uploads.remove(session.id)
        raise
    finished = await services.uploads.finish(session, ingested.name)
    try:
        await services.catalogue(ingested)
    except NotFound:  # deleted again at once: nothing to catalog
        pass
    return finished


async def _receive_first(request: Request, services: Services, session: Session) -> Session:
    """The bytes sent with the creation; if they are refused, so is the upload, which nobody could resume.

    The refusal answers no Location, so a session kept would be unreachable until it expired.
    """
    try:
        return await _receive(request, services, session)
    except _REQUEST_REFUSALS:
        await services.uploads.remove(session.id)
        raise


def _answer_closed(request: Request, session: Session) -> Session:
    """A closed upload takes no bytes; a retried final PATCH (at its length) is answered as the first was."""
    if session.finalising:
        raise UploadClosed(session)
    if _decimal_header(request, "upload-offset") != session.length:
        raise OffsetMismatch("the upload is already complete")
    return session


@router.options("/", status_code=204, include_in_schema=False)
@router.options("/{upload_id}", status_code=204, include_in_schema=False)
async def capabilities(services: Services = Depends(get_services)) -> Response:
    """What this tus server supports."""
    return Response(status_code=204, headers={
        "tus-version": TUS_VERSION,
        "tus-extension": EXTENSIONS,
        "tus-max-size": str(services.settings.max_upload_bytes),
        "tus-checksum-algorithm": ",".join(CHECKSUMS),
    })


@router.post("/", status_code=201, dependencies=_writes, response_class=Response,
             openapi_extra=_tus_openapi(("Upload-Length",), ("Upload-Metadata", "Upload-Checksum"), body=False),
             responses={201: {"description": "Created (with the first bytes, or all of them, if sent)",
                              "headers": _response_headers(("Location", "Upload-Offset", "Upload-Expires"),
                                                           ("Video-URL",))},
                        **documented(MalformedUpload, WriteNotAllowed, UnsupportedTusVersion, UploadTooLarge, NotAVideo,
                                     ChecksumMismatch, StorageFull)})
async def create_upload(request: Request, services: Services = Depends(get_services)) -> Response:
    """Create an upload (``Upload-Length``, ``Upload-Metadata`` with ``filename``), optionally with bytes."""
    length = _decimal_header(request, "upload-length")
    if length > services.settings.max_upload_bytes:
        raise UploadTooLarge(services.settings.max_upload_bytes)
    raw_metadata = request.headers.get("upload-metadata", "")
    if len(raw_metadata) > services.settings.max_upload_metadata_bytes:
        raise MalformedUpload(f"Upload-Metadata is longer than {services.settings.max_upload_metadata_bytes} bytes")
    metadata = _parse_metadata(raw_metadata)
    session = await services.uploads.create(length, metadata, raw_metadata, _video_name(metadata))
    if request.headers.get("content-type") == CHUNK_TYPE or length == 0:
        session = await _receive_first(request, services, session)
    headers = {"location": f"{base_url(request, services.settings)}{PREFIX}/{session.id}",
               **(await _progress_headers(request, services, session))}
    return Response(status_code=201, headers=headers)


@router.head("/{upload_id}", dependencies=_writes, response_class=Response, openapi_extra=_tus_openapi(()),
             responses={200: {"description": "The offset to resume from",
                              "headers": _response_headers(("Upload-Offset", "Upload-Length", "Upload-Expires"),
                                                           ("Upload-Metadata", "Video-URL"))},
                        **documented(WriteNotAllowed, UnknownUpload, ExpiredUpload, UnsupportedTusVersion)})
async def upload_progress(upload_id: str, request: Request, services: Services = Depends(get_services)) -> Response:
    """The offset to resume from (and, once finished, the video's URL)."""
    session = await services.uploads.get(upload_id)
    headers = {**(await _progress_headers(request, services, session)), "upload-length": str(session.length)}
    if session.raw_metadata:
        headers["upload-metadata"] = session.raw_metadata
    return Response(status_code=200, headers=headers)


@router.patch("/{upload_id}", status_code=204, dependencies=_writes, response_class=Response,
              openapi_extra=_tus_openapi(("Upload-Offset",), ("Upload-Checksum",), body=True),
              responses={204: {"description": "Appended; Video-URL once the last byte made the video",
                               "headers": _response_headers(("Upload-Offset", "Upload-Expires"), ("Video-URL",))},
                         **documented(MalformedUpload, WriteNotAllowed, UnknownUpload, OffsetMismatch, ExpiredUpload,
                                      UnsupportedTusVersion, UnsupportedUpload, UploadClosed, ChecksumMismatch,
                                      StorageFull)})
async def append_chunk(upload_id: str, request: Request, services: Services = Depends(get_services)) -> Response:
    """Append bytes at exactly ``Upload-Offset``."""
    session = await services.uploads.get(upload_id)
    if request.headers.get("content-type") != CHUNK_TYPE:
        raise UnsupportedUpload(f"PATCH bodies must be {CHUNK_TYPE}")
    try:
        session = await _receive(request, services, open_only(session))
    except UploadClosed as closed:
        session = _answer_closed(request, closed.session)
    return Response(status_code=204, headers=await _progress_headers(request, services, session))


@router.delete("/{upload_id}", status_code=204, dependencies=_writes, response_class=Response,
               openapi_extra=_tus_openapi(()),
               responses=documented(WriteNotAllowed, UnknownUpload, ExpiredUpload, UnsupportedTusVersion,
                                    UploadClosed))
async def terminate_upload(upload_id: str, services: Services = Depends(get_services)) -> Response:
    """Give up an upload and free what it holds (not while its video is being ingested)."""
    session = await services.uploads.get(upload_id)
    if session.finalising:
        raise UploadClosed(session)
    await services.uploads.remove(upload_id)
    return Response(status_code=204)
