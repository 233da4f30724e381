"""Streaming a stored video: the route, and a shortcut that answers it before the framework does.

``GET``/``HEAD /get_video_by_name/<name>`` (and its alias ``/assets/video/<name>``,
the seed's static mount) is the request that matters most: players send many
small ones as they seek, and a ``bytes=0-1`` probe or a 304 costs little more
than the framework's own layers (exception middleware, routing, dependency
resolution; in FastAPI 0.165 a telemetry check alone costs about half of a
304). :class:`StreamShortcut` is offered every request before those layers and
answers these itself, with the same parsing of the name, the same store and
``delivery`` code, refusals from the same error table and faults from the same
fault handler as the route; so whichever answers, the answer is the same (the
streaming tests run both ways).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from app.api.errors import ErrorAnswers, ErrorDetail, documented
from app.api.paths import app_path
from app.core.errors import InvalidName, NotFound, ServiceError
from app.delivery import serve
from app.services import Services

STREAM_PREFIXES = ("/get_video_by_name/", "/assets/video/")

_BYTES = {"schema": {"type": "string", "format": "binary"}}
STORED_TYPES = ("video/*", "audio/*", "image/*", "application/octet-stream")
"""What a stored file is served as (``app.core.media_types``): never markup."""

_REQUEST_HEADERS = {
    "Range": "Byte ranges, inclusive (RFC 9110 section 14.2): bytes=0-1023, bytes=-500, bytes=0-1,10-20",
    "If-Range": "An ETag or a date: honour Range only while the video is that version",
    "If-Match": "ETags: 412 unless the video is one of them (strong comparison)",
    "If-None-Match": "ETags or *: 304 if the video is one of them (weak comparison)",
    "If-Modified-Since": "An HTTP date: 304 unless the video changed since (ignored with If-None-Match)",
    "If-Unmodified-Since": "An HTTP date: 412 if the video changed since (ignored with If-Match)",
}
_VALIDATORS = {name: {"description": text, "schema": {"type": "string"}} for name, text in {
    "ETag": "A strong validator of this version", "Last-Modified": "When this version was stored",
    "Accept-Ranges": "bytes"}.items()}


def streaming_openapi() -> dict[str, Any]:
    """The request headers a streamed GET understands, for the operation's OpenAPI."""
    return {"parameters": [{"name": name, "in": "header", "required": False, "description": text,
                            "schema": {"type": "string"}} for name, text in _REQUEST_HEADERS.items()]}


def streaming_responses(*refusals: type[ServiceError], types: tuple[str, ...] = STORED_TYPES
                        ) -> dict[int | str, dict[str, Any]]:
    """Every answer a streamed GET can give (RFC 9110), with the refusals of the lookup before it; the file
    is one of ``types``."""
    return {
        **documented(*refusals),
        200: {"description": "The whole file", "content": dict.fromkeys(types, _BYTES), "headers": _VALIDATORS},
        206: {"description": "The requested range, or several as multipart/byteranges",
              "content": dict.fromkeys((*types, "multipart/byteranges"), _BYTES), "headers": _VALIDATORS},
        304: {"description": "Not modified: the client's copy (If-None-Match, If-Modified-Since) is current"},
        412: {"model": ErrorDetail, "description": "If-Match or If-Unmodified-Since refused this version"},
        416: {"model": ErrorDetail, "description": "No requested range overlaps the file (Content-Range tells its size)"},
    }


def stream_name(scope: Scope) -> str | None:
    """The video a request for a stream names, or None if it is not one."""
    path = app_path(scope)
    for prefix in STREAM_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):]
    return None


async def _answer(request: Request, services: Services, name: str) -> Response:
    return await serve(request, await services.store.open(name), name, services.settings)


async def stream_video(request: Request) -> Response:
    """The video's bytes, with ranges and conditional requests (RFC 9110); HEAD answers the same headers."""
    return await _answer(request, request.app.state.services, stream_name(request.scope) or "")


def add_stream_routes(app: FastAPI) -> None:
    """The streaming routes; ``/assets/video/`` is the seed's static mount, kept as an alias."""
    name = {"name": "name", "in": "path", "required": True, "description": "The stored video's name",
            "schema": {"type": "string"}}
    extra = streaming_openapi()
    extra["parameters"].insert(0, name)
    for prefix, documented_route in zip(STREAM_PREFIXES, (True, False)):
        path = prefix + "{name:path}"
        app.add_api_route(path, stream_video, methods=["GET"], include_in_schema=documented_route,
                          summary="Stream a video", responses=streaming_responses(InvalidName, NotFound),
                          openapi_extra=extra)
        app.add_api_route(path, stream_video, methods=["HEAD"], include_in_schema=False)


class StreamShortcut:
    """Answers GET and HEAD of a stored video ahead of every layer of the framework.

    The app offers it each request first (see ``app.main.VideoService``). What
    it skips, and why that is safe for these requests: FastAPI's telemetry
    check and middleware stack (no middleware of this app changes a stream's
    answer), its exception layer (refusals are answered from the same table,
    a fault by the same fault handler) and its router (the name is parsed as
    the route parses it). Cross-origin requests when CORS is on are left to
    the framework, whose CORS layer grants them.
    """

    def __init__(self, services: Services, errors: ErrorAnswers) -> None:
        self._services = services
        self._errors = errors
        self._cors = bool(services.settings.cors_origins)

    def takes(self, scope: Scope) -> str | None:
        """The video name of a request the shortcut answers, or None to leave it to the framework."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        if self._cors and any(name == b"origin" for name, _ in scope["headers"]):
            return None
        return stream_name(scope)

    async def answer(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await _answer(request, self._services, name)
        except ServiceError as refusal:
            response = self._errors.refusal(request, refusal)
        except Exception as fault:
            response = await self._errors.handle_fault(request, fault)
        await response(scope, receive, send)
