"""The FastAPI application: routes that take uploads in and stream videos out.

Each route is thin: it names the stored object, asks the store for it and
hands it to ``file_stream`` (reads) or streams the request into the store
(writes). ``create_app`` builds an app for any settings; ``app`` is the one
``uvicorn app.main:app`` serves, configured from the environment.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.file_stream import range_requests_response
from app.media_types import content_type_for
from app.names import InvalidName
from app.settings import Settings
from app.storage import LocalStore, NotFound
from app.uploads import FILE_FIELD, UploadError, receive_multipart_file
from app.urls import video_url


class StoredVideo(BaseModel):
    """What an upload became: where it lives and how to fetch it."""

    name: str
    size: int
    content_type: str
    video_url: str


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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (from ``VIDEO_*`` variables when omitted)."""
    settings = settings or Settings.from_env()
    store = LocalStore(settings.storage_dir, settings.chunk_bytes)
    app = FastAPI(title="Video upload and streaming service")

    @app.exception_handler(InvalidName)
    async def invalid_name(request: Request, exc: InvalidName) -> JSONResponse:
        return _detail(400, f"invalid video name: {exc}")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _detail(404, "no video with this name")

    @app.exception_handler(UploadError)
    async def upload_refused(request: Request, exc: UploadError) -> JSONResponse:
        # The request body may be unread; closing makes the client stop sending.
        return _detail(exc.status_code, exc.detail, {"connection": "close"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness for load balancers and process managers."""
        return {"status": "ok"}

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"message": "Video upload and streaming service", "upload": "POST /video", "docs": "/docs"}

    @app.post("/video", status_code=201, response_model=StoredVideo, openapi_extra=_UPLOAD_FORM)
    async def upload_video(request: Request) -> JSONResponse:
        """Store the multipart field ``file`` under a new, unique name."""
        async with store.staged() as staged:
            name = await receive_multipart_file(request, staged, settings.max_upload_bytes)
            name = await staged.publish(name)
            size = staged.size
        url = video_url(request, settings, name)
        body = StoredVideo(name=name, size=size, content_type=content_type_for(name), video_url=url)
        return JSONResponse(body.model_dump(), status_code=201, headers={"location": url})

    async def stream_video(name: str, request: Request):
        source = store.open(name)
        return range_requests_response(
            request,
            source,
            content_type=content_type_for(name),
            filename=name,
            cache_control=settings.cache_control,
            max_ranges=settings.max_ranges,
        )

    # The seed's static mount lives on as an alias with the same semantics.
    for path, documented in (("/get_video_by_name/{name:path}", True), ("/assets/video/{name:path}", False)):
        app.add_api_route(path, stream_video, methods=["GET"], include_in_schema=documented)
        app.add_api_route(path, stream_video, methods=["HEAD"], include_in_schema=False)

    app.state.settings = settings
    app.state.store = store
    return app


app = create_app()
