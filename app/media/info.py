"""What the service knows about a video's media, and what browsers are likely to play.

Plain data, shared by the worker processes that find it out (``probe.py``)
and the server that keeps and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from app.core.ladder import Rung


@dataclass(frozen=True)
class MediaInfo:
    """What a video holds, as the library reports it."""

    container: str
    duration: float | None
    width: int | None  # None for a sound recording, as are frame_rate and video_codec
    height: int | None
    frame_rate: float | None
    video_codec: str | None
    audio_codec: str | None
    bitrate: int | None
    created: str | None


class UploadCheck(NamedTuple):
    """What checking an upload found: its media, and whether its MP4 index must move to the front."""

    info: MediaInfo
    needs_faststart: bool


class Description(NamedTuple):
    """What the library keeps about a stored video: its media or why there is none, and a poster JPEG."""

    media: MediaInfo | None
    problem: str | None
    poster: bytes | None


@dataclass(frozen=True)
class RenditionSettings:
    """How renditions are made: the ladder, segment length, encoder threads per rendition and x264's preset."""

    ladder: tuple[Rung, ...]
    segment_seconds: int
    threads: int
    preset: str


@dataclass(frozen=True)
class Variant:
    """A video rendition as made, as the master playlist and the library describe it."""

    name: str
    width: int
    height: int
    bandwidth: int  # the peak segment bitrate, bit/s, sound included
    average_bandwidth: int
    codecs: str
    frame_rate: float | None


@dataclass(frozen=True)
class Made:
    """What ``renditions.make`` wrote: the video renditions (none for sound only), whether there is sound, and
    whether there is a web MP4."""

    variants: tuple[Variant, ...]
    audio: bool
    web: bool


STORYBOARD_TRACK = "storyboard.vtt"
"""The file name of a storyboard's WebVTT thumbnails track (``storyboard.py``)."""


@dataclass(frozen=True)
class StoryboardSettings:
    """How storyboards are made: about how many tiles (0: none), how wide each is (pixels), and the shortest
    interval between two (milliseconds)."""

    tiles: int
    tile_width: int
    min_interval_ms: int


@dataclass(frozen=True)
class StoryboardMade:
    """What ``storyboard.make`` wrote: ``tiles`` tiles of ``tile_width`` x ``tile_height``, one every
    ``interval_ms`` milliseconds of the ``duration_ms`` the video plays, in ``sprites`` JPEG sheets of
    ``columns`` tiles a row (and up to as many rows)."""

    tile_width: int
    tile_height: int
    interval_ms: int
    duration_ms: int
    tiles: int
    sprites: int
    columns: int


_BROWSER_VIDEO = {"h264", "vp8", "vp9", "av1"}
_BROWSER_AUDIO = {None, "aac", "mp3", "opus", "vorbis", "flac"}
_BROWSER_CONTAINERS = {"mp4", "webm", "mov", "mkv", "ogg"}


_PROGRESSIVE = {
    "mp4": ({"h264"}, {None, "aac", "mp3"}),
    "mov": ({"h264"}, {None, "aac", "mp3"}),
    "webm": ({"vp8", "vp9"}, {None, "opus", "vorbis"}),
}
"""What every common browser (Chromium, Firefox, Safari) plays progressively: per container, its pictures and
sound. Narrower than the tables above: a file outside it gets a web MP4 (``renditions.py``)."""
_BROWSER_PIXELS = {"yuv420p", "yuvj420p"}  # 8-bit 4:2:0: 10-bit and 4:2:2 H.264 do not decode everywhere


def plays_in_browsers(container: str, video_codec: str, pixel_format: str | None, audio_codec: str | None) -> bool:
    """Whether a file plays as it is in every common browser, or needs a web MP4 made of it."""
    videos, audios = _PROGRESSIVE.get(container, (set(), set()))
    return video_codec in videos and pixel_format in _BROWSER_PIXELS and audio_codec in audios


def browser_playback(info: MediaInfo) -> tuple[bool, str | None]:
    """Whether Chromium, Firefox and Safari are all likely to play it, and a note when not."""
    if info.container not in _BROWSER_CONTAINERS:
        return False, f"browsers do not play the {info.container} container"
    if info.video_codec is not None and info.video_codec not in _BROWSER_VIDEO:
        audible = info.audio_codec in _BROWSER_AUDIO - {None}
        tail = "; some will play the sound only" if audible else ""
        return False, f"many browsers cannot decode {info.video_codec} video{tail}"
    if info.audio_codec not in _BROWSER_AUDIO:
        return False, f"many browsers cannot decode {info.audio_codec} audio"
    return True, None
