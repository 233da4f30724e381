"""The FastAPI application: the wiring of the service, and nothing else.

``create_app`` builds an app for any settings from the parts below it: the
routes of ``app.api`` and ``app.web``, the error table, the streaming
shortcut, CORS. ``app`` is the one ``uvicorn app.main:app`` serves,
configured from the ``VIDEO_*`` environment variables.

Layers, outermost first: the allowed-hosts check (``VIDEO_ALLOWED_HOSTS``), the
streaming shortcut (``app.api.streams``), then
the framework's: its error layer (a fault is a logged 500), CORS when
configured, the tus version header, the request-body watch, the routing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from app.api import captions, contract, errors, health, library, renditions, storyboards, tus
from app.api.streams import StreamShortcut, add_stream_routes
from app.api.urls import AllowedHosts
from app.core.errors import UnknownHost
from app.core.settings import Settings
from app.library.videos import scan_forever
from app.services import Services
from app.uploads.sessions import sweep_forever
from app.web import pages

log = logging.getLogger(__name__)


class VideoService(FastAPI):
    """FastAPI, refusing unknown hosts and offering each request to the streaming shortcut before its own layers see it."""

    shortcut: StreamShortcut | None = None
    hosts: AllowedHosts | None = None
    answers: errors.ErrorAnswers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hosts is not None and scope["type"] == "http" and await self._refused_host(scope, receive, send):
            return
        name = self.shortcut.takes(scope) if self.shortcut is not None else None
        if name is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as the framework sets it: error pages read the app's settings
        await self.shortcut.answer(name, scope, receive, send)

    async def _refused_host(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a request for a host not in VIDEO_ALLOWED_HOSTS with 400; whether it was one."""
        request = Request(scope, receive)
        if self.hosts.allow(request):
            return False
        scope["app"] = self
        await self.answers.refusal(request, UnknownHost())(scope, receive, send)
        return True


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


def _lifespan(services: Services) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up notes and the catalog brought up to date, and background work for as long as the app serves
    (sweeping expired uploads, scanning the store for changes made by hand, and, unless
    ``VIDEO_EMBEDDED_WORKERS`` is 0, running media jobs)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not services.settings.api_token:
            log.warning("VIDEO_API_TOKEN is not set: anyone who can reach this server may upload and delete videos")
        await services.library.ready()
        settings = services.settings
        interval = min(60.0, settings.upload_expiry_seconds / 4)
        background = [sweep_forever(services.uploads, interval),
                      scan_forever(services.library, settings.catalog_scan_seconds)]
        if settings.embedded_workers:
            background.append(services.worker(settings.embedded_workers).run())
        tasks = [asyncio.create_task(work) for work in background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await services.close()

    return lifespan


def create_app(settings: Settings | None = None, *, stream_shortcut: bool = True) -> FastAPI:
    """Build the service for ``settings`` (from ``VIDEO_*`` variables when omitted).

    ``stream_shortcut=False`` leaves streaming to the framework's route alone:
    the tests use it to show that both answer alike.
    """
    settings = settings or Settings.from_env()
    services = Services.build(settings)
    app = VideoService(title="Video upload and streaming service", lifespan=_lifespan(services))
    app.state.services = services
    answers = errors.install(app, pages.error_page)
    app.answers = answers
    if settings.allowed_hosts:
        app.hosts = AllowedHosts(settings)
    app.add_middleware(tus.TusResumableHeader)
    if stream_shortcut:
        app.shortcut = StreamShortcut(services, answers)
    if settings.cors_origins:
        _add_cors(app, list(settings.cors_origins))

    app.include_router(health.router)
    add_stream_routes(app)
    app.include_router(library.router)
    app.include_router(renditions.router)
    app.include_router(captions.router)
    app.include_router(storyboards.router)
    app.include_router(tus.router)
    app.include_router(pages.router)
    app.mount("/static/vendor/hls.js", pages.vendor_files, name="vendor")
    app.mount("/static", pages.static_files, name="static")
    contract.install(app, settings)
    return app


app = create_app()
