"""The long-lived parts of one running service, shared by every route."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.library import Library
from app.media import MediaWorkers
from app.resumable import UploadSessions
from app.settings import Settings
from app.storage import LocalStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: LocalStore
    library: Library
    uploads: UploadSessions
    media: MediaWorkers

    @classmethod
    def build(cls, settings: Settings) -> Services:
        store = LocalStore(settings.storage_dir, settings.chunk_bytes)
        media = MediaWorkers(settings.media_workers)
        uploads = UploadSessions(store.resumable_dir, settings.upload_expiry_seconds)
        return cls(settings, store, Library(store, media), uploads, media)


async def services(request: Request) -> Services:
    """FastAPI dependency: the services of the app serving this request."""
    return request.app.state.services
