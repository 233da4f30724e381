"""What the service knows about a video's media, and what browsers are likely to play.

Plain data, shared by the worker processes that find it out (``probe.py``)
and the server that keeps and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class MediaInfo:
    """What a video holds, as the library reports it."""

    container: str
    duration: float | None
    width: int
    height: int
    frame_rate: float | None
    video_codec: str
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


_BROWSER_VIDEO = {"h264", "vp8", "vp9", "av1"}
_BROWSER_AUDIO = {None, "aac", "mp3", "opus", "vorbis", "flac"}
_BROWSER_CONTAINERS = {"mp4", "webm", "mov", "mkv", "ogg"}


def browser_playback(info: MediaInfo) -> tuple[bool, str | None]:
    """Whether Chromium, Firefox and Safari are all likely to play it, and a note when not."""
    if info.container not in _BROWSER_CONTAINERS:
        return False, f"browsers do not play the {info.container} container"
    if info.video_codec not in _BROWSER_VIDEO:
        audible = info.audio_codec in _BROWSER_AUDIO - {None}
        tail = "; some will play the sound only" if audible else ""
        return False, f"many browsers cannot decode {info.video_codec} video{tail}"
    if info.audio_codec not in _BROWSER_AUDIO:
        return False, f"many browsers cannot decode {info.audio_codec} audio"
    return True, None
