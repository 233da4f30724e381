"""The long-lived parts of one running service, shared by every route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from app.library import Library
from app.media import MediaWorkers
from app.resumable import UploadSessions
from app.settings import Settings
from app.storage import LocalStore

if TYPE_CHECKING:
    from app.s3_resumable import S3UploadSessions
    from app.s3_storage import S3VideoStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: LocalStore | S3VideoStore
    library: Library
    uploads: UploadSessions | S3UploadSessions
    media: MediaWorkers

    @classmethod
    def build(cls, settings: Settings) -> Services:
        media = MediaWorkers(settings.media_workers)
        if settings.uses_s3:
            # Imported here so that a local store never loads obstore (about 4 MiB per process).
            from app.s3_resumable import S3UploadSessions
            from app.s3_storage import S3VideoStore

            s3 = S3VideoStore(settings.storage_url, settings.s3_endpoint, settings.s3_region,
                              settings.s3_access_key_id, settings.s3_secret_access_key,
                              settings.staging_path, settings.chunk_bytes)
            uploads = S3UploadSessions(s3, settings.staging_path, settings.upload_expiry_seconds)
            return cls(settings, s3, Library(s3, media), uploads, media)
        local = LocalStore(settings.local_store_dir, settings.chunk_bytes)
        uploads = UploadSessions(local.resumable_dir, settings.upload_expiry_seconds)
        return cls(settings, local, Library(local, media), uploads, media)


async def services(request: Request) -> Services:
    """FastAPI dependency: the services of the app serving this request."""
    return request.app.state.services
