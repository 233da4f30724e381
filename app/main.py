"""The FastAPI application: the wiring of the service, and nothing else.

``create_app`` builds an app for any settings from the parts below it: the
routes of ``app.api`` and ``app.web``, the error table, the streaming
shortcut, CORS. ``app`` is the one ``uvicorn app.main:app`` serves,
configured from the ``VIDEO_*`` environment variables.

Layers, outermost first: the framework's error layer (a fault is a logged
500), CORS when configured, the streaming shortcut, the tus version header,
the request-body watch, then the framework's routing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api import errors, library, tus
from app.api.streams import StreamShortcut, add_stream_routes
from app.core.settings import Settings
from app.services import Services
from app.uploads.sessions import sweep_forever
from app.web import pages

log = logging.getLogger(__name__)


def _add_cors(app: FastAPI, origins: list[str]) -> None:
    """Let players and uploaders on the listed origins use the API from their pages."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
                       "If-Range", "Authorization", "Content-Type", *tus.REQUEST_HEADERS],
        expose_headers=["Content-Range", "Accept-Ranges", "Content-Length", "ETag", "Last-Modified",
                        *tus.RESPONSE_HEADERS],
        max_age=600,
    )


async def healthz() -> dict[str, str]:
    """Liveness for load balancers and process managers."""
    return {"status": "ok"}


def _lifespan(services: Services) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up notes, and background work for as long as the app serves (sweeping expired uploads)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not services.settings.api_token:
            log.warning("VIDEO_API_TOKEN is not set: anyone who can reach this server may upload and delete videos")
        interval = min(60.0, services.settings.upload_expiry_seconds / 4)
        sweeper = asyncio.create_task(sweep_forever(services.uploads, interval))
        try:
            yield
        finally:
            sweeper.cancel()
            services.media.close()

    return lifespan


def create_app(settings: Settings | None = None, *, stream_shortcut: bool = True) -> FastAPI:
    """Build the service for ``settings`` (from ``VIDEO_*`` variables when omitted).

    ``stream_shortcut=False`` leaves streaming to the framework's route alone:
    the tests use it to show that both answer alike.
    """
    settings = settings or Settings.from_env()
    services = Services.build(settings)
    app = FastAPI(title="Video upload and streaming service", lifespan=_lifespan(services))
    app.state.services = services
    answers = errors.install(app, pages.error_page)
    app.add_middleware(tus.TusResumableHeader)
    if stream_shortcut:
        app.add_middleware(StreamShortcut, services=services, errors=answers)
    if settings.cors_origins:
        _add_cors(app, list(settings.cors_origins))

    app.add_api_route("/healthz", healthz, methods=["GET"])
    add_stream_routes(app)
    app.include_router(library.router)
    app.include_router(tus.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files, name="static")
    return app


app = create_app()
