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

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

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
