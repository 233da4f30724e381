"""Streaming a stored video: the route, and a shortcut that answers it before the framework does.

``GET``/``HEAD /get_video_by_name/<name>`` (and its alias ``/assets/video/<name>``,
the seed's static mount) is the request that matters most: players send many
small ones as they seek, and a ``bytes=0-1`` probe or a 304 costs little more
than the framework's own layers (exception middleware, routing, dependency
resolution). :class:`StreamShortcut` sits outside those layers and answers
these requests itself, with the same parsing of the name, the same store and
``delivery`` code, and refusals from the same error table as the route; so
whichever answers, the answer is the same (the streaming tests run both ways).
It sits inside the CORS layer, so cross-origin requests get the same grants,
and inside the outermost error layer, so a fault of the store is a logged 500.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import ErrorAnswers
from app.api.paths import app_path
from app.core.errors import ServiceError
from app.delivery import serve
from app.services import Services

STREAM_PREFIXES = ("/get_video_by_name/", "/assets/video/")


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
    """The video's bytes, with ranges and conditional requests (RFC 9110)."""
    return await _answer(request, request.app.state.services, stream_name(request.scope) or "")


def add_stream_routes(app: FastAPI) -> None:
    for prefix in STREAM_PREFIXES:
        app.add_route(prefix + "{name:path}", stream_video, methods=["GET", "HEAD"], include_in_schema=False)


class StreamShortcut:
    """ASGI middleware: answers GET and HEAD of a stored video without the framework's layers.

    What it skips, and why that is safe for these requests: FastAPI's
    exception middleware (refusals are answered here from the same table),
    the router (the name is parsed as the route parses it) and dependency
    resolution (the route has none). Every other request passes through.
    """

    def __init__(self, app: ASGIApp, services: Services, errors: ErrorAnswers) -> None:
        self.app = app
        self._services = services
        self._errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = stream_name(scope) if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") else None
        if name is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await _answer(request, self._services, name)
        except ServiceError as refusal:
            response = self._errors.refusal(request, refusal)
        await response(scope, receive, send)
