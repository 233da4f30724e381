"""The JSON the API answers with, as documented at /docs."""

from __future__ import annotations

from dataclasses import asdict
from urllib.parse import quote

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from starlette.requests import Request

from app.api.urls import base_url, video_url
from app.core.settings import Settings
from app.library.captions import Track
from app.library.renditions import MASTER
from app.library.videos import VideoRecord


WorkStatus = Literal["processing", "ready", "failed"]


class RenditionInfo(BaseModel):
    """One rendition of the HLS ladder: its picture size, bitrates (bit/s, sound included), RFC 6381 codecs,
    and its playlist."""

    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float | None
    url: str


class CaptionInfo(BaseModel):
    """One caption track: its BCP 47 language, its label, whether players show it unasked, and its WebVTT file."""

    language: str
    label: str
    default: bool
    url: str


class CaptionList(BaseModel):
    """A video's caption tracks, in the order they were added."""

    captions: list[CaptionInfo]


class VideoInfo(BaseModel):
    """One stored video: where to fetch it and what it holds (media fields null when unknown).

    ``id`` stays the same for the life of the video, across replacements of its bytes (empty only while
    the catalog has no room to record a new video); ``title`` and ``description`` are plain text.
    ``status`` is ``processing`` while its media work (metadata, poster, renditions) runs, with ``progress``
    from 0 to 1 (the video streams meanwhile), then ``ready``, or ``failed`` with ``status_reason``.
    Once its renditions are made, ``hls_url`` is its adaptive stream (HLS, RFC 8216) and ``renditions`` its
    ladder; ``web_url`` is a web MP4 (H.264/AAC) made when the original does not play in every common
    browser (null when it does: ``video_url`` is then what players get). ``video_url`` is always the
    original, byte for byte. ``captions`` are its caption tracks (WebVTT), also offered in ``hls_url``.
    ``storyboard_url`` is its seek previews once made (a WebVTT thumbnails track whose cues name tiles of JPEG sprites, ``sprite.jpg#xywh=x,y,w,h``); null until then, and for a sound recording.
    """

    id: str
    name: str
    title: str
    description: str
    size: int
    content_type: str
    video_url: str
    poster_url: str | None
    uploaded: str
    browser_playable: bool
    playback_note: str | None
    status: WorkStatus
    progress: float = Field(ge=0, le=1)
    status_reason: str | None
    container: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    bitrate: int | None = None
    created: str | None = None
    hls_url: str | None = None
    web_url: str | None = None
    renditions: list[RenditionInfo] = []
    captions: list[CaptionInfo] = []
    storyboard_url: str | None = None


MAX_TITLE_CHARACTERS = 200
"""A title is a line to show on a card and in a page's title, not a text: longer ones are refused, not cut.

A constant, not a setting: it is part of the API's documented contract, the same on every server."""
MAX_DESCRIPTION_CHARACTERS = 5000
"""Room for a few paragraphs of plain text, and a bound on what one request can store in the catalog."""

_TITLE_PATTERN = rf"^\s*\S([\s\S]{{0,{MAX_TITLE_CHARACTERS - 2}}}\S)?\s*$"
# 1 to MAX_TITLE_CHARACTERS characters once the white space around them is trimmed: said as a pattern
# (checked with Python's re, whose \s is what str.strip trims) so that the document says it too.
Title = Annotated[str, Field(pattern=_TITLE_PATTERN, description=(
    f"1 to {MAX_TITLE_CHARACTERS} characters once the white space around them is trimmed (it is)")),
    AfterValidator(str.strip)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARACTERS)]


def _edit_schema(schema: dict[str, Any]) -> None:
    """At least one field, and no ``default: null`` beside ``type: string``: a field left out is not null."""
    schema["minProperties"] = 1
    for field_schema in schema["properties"].values():
        field_schema.pop("default", None)


class VideoEdit(BaseModel):
    """A change to a video's title and/or description (at least one of them; a field left out stays as it is)."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re", json_schema_extra=_edit_schema)

    title: Title | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None

    @field_validator("title", "description", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        """null is not a title: leave the field out to keep what the video has."""
        if value is None:
            raise ValueError("give a text, or leave the field out")
        return value

    @model_validator(mode="after")
    def _something(self) -> VideoEdit:
        if not self.model_fields_set:
            raise ValueError("give a title, a description or both")
        return self

    def changes(self) -> dict[str, str]:
        """The columns this edit sets."""
        return self.model_dump(include=self.model_fields_set)


class WorkUpdate(BaseModel):
    """Where a video's media work stands, as ``GET /video/{name}/events`` tells it."""

    status: WorkStatus
    progress: float = Field(ge=0, le=1)
    status_reason: str | None


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
    return f"{_video_base(request, settings, name)}/poster.jpg"


def _video_base(request: Request, settings: Settings, name: str) -> str:
    return f"{base_url(request, settings)}/video/{quote(name, safe='')}"


def _renditions(record: VideoRecord, request: Request, settings: Settings) -> dict[str, Any]:
    """The fields that say where the renditions are: empty until they are made."""
    made = record.renditions
    if made is None:
        return {}
    base = _video_base(request, settings, record.name)
    return {
        "hls_url": f"{base}/{MASTER}",
        "web_url": f"{base}/{made.web_path}" if made.web_path else None,
        "renditions": [RenditionInfo(width=variant.width, height=variant.height, bandwidth=variant.bandwidth,
                                     average_bandwidth=variant.average_bandwidth, codecs=variant.codecs,
                                     frame_rate=variant.frame_rate,
                                     url=f"{base}/hls/{made.version}/{variant.name}/index.m3u8")
                       for variant in made.variants],
    }


def caption_info(track: Track, request: Request, settings: Settings, name: str) -> CaptionInfo:
    return CaptionInfo(language=track.language, label=track.label, default=track.default,
                       url=f"{_video_base(request, settings, name)}/captions/{track.language}.vtt")


def video_info(record: VideoRecord, request: Request, settings: Settings) -> VideoInfo:
    return VideoInfo(
        **(asdict(record.media) if record.media else {}),
        id=record.identity.id,
        name=record.name,
        title=record.identity.title,
        description=record.identity.description,
        size=record.size,
        content_type=record.content_type,
        video_url=video_url(request, settings, record.name),
        poster_url=poster_url(request, settings, record.name) if record.has_poster else None,
        uploaded=record.uploaded,
        browser_playable=record.browser_playable,
        playback_note=record.playback_note,
        status=record.work.status,
        progress=record.work.progress,
        status_reason=record.work.reason,
        **_renditions(record, request, settings),
        captions=[caption_info(track, request, settings, record.name) for track in record.captions],
        storyboard_url=f"{_video_base(request, settings, record.name)}/storyboard.vtt" if record.storyboard else None,
    )
