"""How stored bytes reach the client.

``proxy`` (the default): this process streams them through ``file_stream``.
``redirect`` (object stores): the request's preconditions first (a 304 or
412 is answered here), else a 307 to a signed URL valid for
``VIDEO_REDIRECT_SECONDS``, so players fetch the bytes from the object store
(or a CDN in front of it).
``x-accel``: behind nginx, this process checks the request (name, existence)
and answers with ``X-Accel-Redirect`` to an internal nginx location that maps
onto the store; nginx then sends the bytes itself, with its own validators,
ranges and conditional requests (see ``deploy/nginx-x-accel.conf.template``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.core.media_types import content_disposition, content_type_for
from app.core.settings import Settings
from app.file_stream import precondition_response, range_requests_response
from app.storage.base import StoredFile


async def serve(request: Request, source: StoredFile, filename: str, settings: Settings,
                cache_control: str | None = None, may_redirect: bool = True) -> Response:
    """A GET/HEAD answer for an opened source, typed by ``filename``'s extension, cached as ``cache_control``
    says (else as ``VIDEO_CACHE_CONTROL`` does).

    ``may_redirect=False`` streams what redirect delivery would redirect: a playlist, whose relative URIs
    must resolve against this service's URL, not the object store's signed one.
    """
    caching = cache_control or settings.cache_control
    try:
        if settings.delivery == "x-accel":
            return _x_accel(source, filename, settings, caching)
        if settings.delivery == "redirect" and may_redirect:
            return await _redirect(request, source, settings, caching)
        return range_requests_response(
            request,
            source,
            content_type=content_type_for(filename),
            content_disposition=content_disposition(filename),
            cache_control=caching,
            max_ranges=settings.max_ranges,
        )
    except BaseException:
        source.close()
        raise


async def _redirect(request: Request, source: StoredFile, settings: Settings, caching: str) -> Response:
    """304 or 412 as the preconditions say, else a 307 to where the client may fetch the bytes itself, naming
    the version it leads to now (its ETag, which the store answers with too), for a client to revalidate with."""
    refused = precondition_response(request, source, caching)
    if refused is not None:
        return refused
    url = await source.client_location(timedelta(seconds=settings.redirect_seconds))
    source.close()
    return RedirectResponse(url, status_code=307, headers={"cache-control": "no-store", "etag": source.etag})


def _x_accel(source: StoredFile, filename: str, settings: Settings, caching: str) -> Response:
    """Hand the file to nginx; the headers set here are the ones nginx keeps."""
    source.close()
    return Response(status_code=200, headers={
        "x-accel-redirect": f"{settings.x_accel_location}/{quote(source.key)}",
        "content-type": content_type_for(filename),
        "content-disposition": content_disposition(filename),
        "cache-control": caching,
    })


class _MadeHere:
    """Bytes this process made for a request (a playlist), with validators of their own: the ETag is their digest."""

    def __init__(self, data: bytes, last_modified: float) -> None:
        self._data = data
        self.size = len(data)
        self.etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        self.last_modified = last_modified

    async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        yield self._data[start:stop]

    async def read(self, start: int, stop: int) -> bytes:
        return self._data[start:stop]

    def close(self) -> None:
        pass


def serve_made(request: Request, data: bytes, filename: str, last_modified: float, settings: Settings) -> Response:
    """A GET/HEAD answer for bytes made here (ranges, validators, 304 as for stored ones), typed by ``filename``;
    sent by this process whatever ``VIDEO_DELIVERY`` says, as there is no stored file to hand on."""
    return range_requests_response(request, _MadeHere(data, last_modified), content_type=content_type_for(filename),
                                   content_disposition=content_disposition(filename),
                                   cache_control=settings.cache_control, max_ranges=settings.max_ranges)
