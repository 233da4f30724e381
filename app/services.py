"""The long-lived parts of one running service, shared by every route."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.library import Library
from app.resumable import UploadSessions
from app.settings import Settings
from app.storage import LocalStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: LocalStore
    library: Library
    uploads: UploadSessions

    @classmethod
    def build(cls, settings: Settings) -> Services:
        store = LocalStore(settings.storage_dir, settings.chunk_bytes)
        library = Library(store, settings.media_workers)
        return cls(settings, store, library, UploadSessions(store.resumable_dir, settings.upload_expiry_seconds))


async def services(request: Request) -> Services:
    """FastAPI dependency: the services of the app serving this request."""
    return request.app.state.services
