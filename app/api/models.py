"""The JSON the API answers with, as documented at /docs."""

from __future__ import annotations

from dataclasses import asdict
from urllib.parse import quote

from pydantic import BaseModel
from starlette.requests import Request

from app.api.urls import base_url, video_url
from app.core.settings import Settings
from app.library.videos import VideoRecord


class VideoInfo(BaseModel):
    """One stored video: where to fetch it and what it holds (media fields null when unknown)."""

    name: str
    size: int
    content_type: str
    video_url: str
    poster_url: str | None
    uploaded: str
    browser_playable: bool
    playback_note: str | None
    container: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    bitrate: int | None = None
    created: str | None = None


class VideoPage(BaseModel):
    """A page of the library, newest first.

    ``next_cursor`` asks for the next page (null on the last). ``offset`` and
    ``next_offset`` answer a page asked by offset, and are null for one asked by cursor.
    """

    videos: list[VideoInfo]
    total: int
    offset: int | None
    limit: int
    next_offset: int | None
    next_cursor: str | None


def poster_url(request: Request, settings: Settings, name: str) -> str:
    return f"{base_url(request, settings)}/video/{quote(name, safe='')}/poster.jpg"


def video_info(record: VideoRecord, request: Request, settings: Settings) -> VideoInfo:
    return VideoInfo(
        **(asdict(record.media) if record.media else {}),
        name=record.name,
        size=record.size,
        content_type=record.content_type,
        video_url=video_url(request, settings, record.name),
        poster_url=poster_url(request, settings, record.name) if record.has_poster else None,
        uploaded=record.uploaded,
        browser_playable=record.browser_playable,
        playback_note=record.playback_note,
    )
