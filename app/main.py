"""The FastAPI application: uploads in, videos out, and the library around them.

Routes are thin: they name the stored object, ask the store (or the library)
for it and hand it to ``delivery`` (reads), or stream the request into the
store's staging and through the ingest pipeline (writes). ``create_app``
builds an app for any settings; ``app`` is the one ``uvicorn app.main:app``
serves, configured from the environment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from app import library_api, tus_api, web
from app.auth import require_writer
from app.delivery import serve
from app.ingest import ingest
from app.models import VideoInfo, video_info
from app.names import InvalidName
from app.resumable import sweep_forever
from app.services import Services, services
from app.settings import Settings
from app.storage import NotFound, Publish
from app.tus_api import TusResumableHeader
from app.uploads import FILE_FIELD, UploadError, receive_multipart_file

log = logging.getLogger(__name__)

_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def _detail(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _add_error_handlers(app: FastAPI) -> None:
    """Short JSON for API clients; a friendly page for people in a browser."""

    @app.exception_handler(InvalidName)
    async def invalid_name(request: Request, exc: InvalidName) -> Response:
        return _detail(400, f"invalid video name: {exc}")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        if _wants_html(request):
            return web.error_page(request, 404, "Video not found", "There is no video with this name.")
        return _detail(404, "no video with this name")

    @app.exception_handler(UploadError)
    async def upload_refused(request: Request, exc: UploadError) -> Response:
        # The request body may be unread; closing makes the client stop sending.
        return _detail(exc.status_code, exc.detail, {**exc.headers, "connection": "close"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and _wants_html(request):
            return web.error_page(request, 404, "Page not found", "There is nothing at this address.")
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        if _wants_html(request):
            return web.error_page(request, 500, "Something went wrong",
                                  "The server could not finish this request. Please try again in a moment.")
        return _detail(500, "internal error")


def _add_cors(app: FastAPI, origins: list[str]) -> None:
    """Let players and uploaders on the listed origins use the API from their pages."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
                       "If-Range", "Authorization", "Content-Type", *tus_api.REQUEST_HEADERS],
        expose_headers=["Content-Range", "Accept-Ranges", "Content-Length", "ETag", "Last-Modified",
                        *tus_api.RESPONSE_HEADERS],
        max_age=600,
    )


async def healthz() -> dict[str, str]:
    """Liveness for load balancers and process managers."""
    return {"status": "ok"}


async def upload_video(request: Request, app: Services = Depends(services)) -> JSONResponse:
    """Store the multipart field ``file`` as a new video under a new, unique name."""
    async with app.store.staged() as staged:
        name = await receive_multipart_file(request, staged, app.settings.max_upload_bytes)
        name = await ingest(app, staged, name, Publish.UNIQUE)
    info = video_info(await app.library.describe(name), request, app.settings)
    return JSONResponse(info.model_dump(), status_code=201, headers={"location": info.video_url})


async def stream_video(request: Request) -> Response:
    """The video's bytes, with ranges and conditional requests (RFC 9110).

    :class:`VideoService` answers most requests before the framework sees them;
    this route answers the rest: refusals (a bad or missing name), a store that
    failed to open the video, and cross-origin requests when CORS is on.
    """
    app: Services = request.app.state.services
    name = request.path_params["name"]
    return await serve(request, await app.store.open(name), name, app.settings)


STREAM_PREFIXES = ("/get_video_by_name/", "/assets/video/")


class VideoService(FastAPI):
    """FastAPI, with a shortcut for the request that matters most: fetching a video.

    A GET or HEAD of a stored video goes straight to the store and
    ``file_stream``, past the framework's middleware, exception and routing
    layers, which cost most of a small request's time (a ``bytes=0-1`` probe, a
    304). Anything the shortcut does not answer itself (a bad or missing name,
    a cross-origin request when CORS is on) takes the ordinary route to
    ``stream_video``, the CORS middleware and the error handlers, so both ways
    behave alike.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: Services = self.state.services
        name = _stream_name(scope, bool(app.settings.cors_origins))
        if name is not None:
            try:
                source = await app.store.open(name)
            except Exception:  # a refusal: the route opens it again and its error handlers answer
                pass
            else:
                response = await serve(Request(scope, receive), source, name, app.settings)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _stream_name(scope: Scope, cors_enabled: bool) -> str | None:
    """The video a GET or HEAD asks for, when the request is one for the shortcut."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return None
    if cors_enabled and any(header == b"origin" for header, _ in scope["headers"]):
        return None
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        path = path[len(root):]
    for prefix in STREAM_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):]
    return None


def _lifespan(app_services: Services):
    """Start-up notes, and background work for as long as the app serves (sweeping expired uploads)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not app_services.settings.api_token:
            log.warning("VIDEO_API_TOKEN is not set: anyone who can reach this server may upload and delete videos")
        interval = min(60.0, app_services.settings.upload_expiry_seconds / 4)
        sweeper = asyncio.create_task(sweep_forever(app_services.uploads, interval))
        try:
            yield
        finally:
            sweeper.cancel()
            app_services.media.close()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (from ``VIDEO_*`` variables when omitted)."""
    settings = settings or Settings.from_env()
    app_services = Services.build(settings)
    app = VideoService(title="Video upload and streaming service", lifespan=_lifespan(app_services))
    app.state.services = app_services
    app.add_middleware(TusResumableHeader)
    _add_error_handlers(app)

    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/video", upload_video, methods=["POST"], status_code=201, response_model=VideoInfo,
                      dependencies=[Depends(require_writer)], openapi_extra=_UPLOAD_FORM)
    # The seed's static mount lives on as an alias with the same semantics.
    for prefix in STREAM_PREFIXES:
        app.add_route(prefix + "{name:path}", stream_video, methods=["GET", "HEAD"], include_in_schema=False)
    app.include_router(library_api.router)
    app.include_router(tus_api.router)
    app.include_router(web.router)
    app.mount("/static", web.static_files, name="static")
    if settings.cors_origins:
        _add_cors(app, list(settings.cors_origins))
    return app


app = create_app()
