"""The long-lived parts of one running service, shared by every route."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.library import Library
from app.settings import Settings
from app.storage import LocalStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: LocalStore
    library: Library

    @classmethod
    def build(cls, settings: Settings) -> Services:
        store = LocalStore(settings.storage_dir, settings.chunk_bytes)
        return cls(settings, store, Library(store, settings.media_workers))


def services(request: Request) -> Services:
    """FastAPI dependency: the services of the app serving this request."""
    return request.app.state.services
