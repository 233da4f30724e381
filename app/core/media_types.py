"""The Content-Type and Content-Disposition a stored file is served with.

Only video, audio and image types (and the text of HLS playlists and WebVTT tracks) are ever named; everything else is
``application/octet-stream``, so an uploaded page or script can never be
rendered or run by a browser from this origin.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote

OCTET_STREAM = "application/octet-stream"

_BY_EXTENSION = {
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "ogv": "video/ogg",
    "avi": "video/x-msvideo",
    "ts": "video/mp2t",
    "mpg": "video/mpeg",
    "mpeg": "video/mpeg",
    "3gp": "video/3gpp",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "m3u8": "application/vnd.apple.mpegurl",  # HLS playlists (RFC 8216)
    "m4s": "video/iso.segment",  # their CMAF media segments
    "vtt": "text/vtt; charset=utf-8",  # WebVTT: caption tracks, storyboards' thumbnails (cues, never a page)
}


def content_type_for(name: str) -> str:
    """The media type for a stored name, judged by its extension."""
    _, dot, extension = name.rpartition(".")
    return _BY_EXTENSION.get(extension.lower(), OCTET_STREAM) if dot else OCTET_STREAM


@lru_cache(maxsize=4096)
def content_disposition(filename: str) -> str:
    """``inline`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
