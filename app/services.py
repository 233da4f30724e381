"""The long-lived parts of one running service, shared by every route."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.library import Library
from app.media import MediaWorkers
from app.resumable import UploadSessions
from app.s3_storage import S3VideoStore
from app.settings import Settings
from app.storage import LocalStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: LocalStore | S3VideoStore
    library: Library
    uploads: UploadSessions
    media: MediaWorkers

    @classmethod
    def build(cls, settings: Settings) -> Services:
        store = _store(settings)
        media = MediaWorkers(settings.media_workers)
        uploads = UploadSessions(store.resumable_dir, settings.upload_expiry_seconds)
        return cls(settings, store, Library(store, media), uploads, media)


def _store(settings: Settings) -> LocalStore | S3VideoStore:
    if settings.uses_s3:
        return S3VideoStore(settings.storage_url, settings.s3_endpoint, settings.s3_region,
                            settings.s3_access_key_id, settings.s3_secret_access_key,
                            settings.staging_path, settings.chunk_bytes)
    return LocalStore(settings.local_store_dir, settings.chunk_bytes)


async def services(request: Request) -> Services:
    """FastAPI dependency: the services of the app serving this request."""
    return request.app.state.services
