"""Looking inside media files with PyAV: is it a whole video, what is in it, a poster.

This module runs only in the media worker processes (see ``workers.py``):
everything here is blocking CPU and disk work on a path, and FFmpeg's
libraries stay out of the server process.
"""

from __future__ import annotations

import io
import logging
import struct
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import av
import av.error

from app.core.errors import NotAVideo
from app.media.info import Description, MediaInfo, UploadCheck

log = logging.getLogger(__name__)
POSTER_POSITION = 0.10
POSTER_MAX_WIDTH = 1280
_IMAGE_FORMATS = {"image2", "gif", "apng", "webp_pipe"}
_ISO_BMFF_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2"
_MATROSKA_FORMATS = "matroska,webm"


# --- reading a local path or a signed URL ------------------------------------------------

class _RangeReader(io.RawIOBase):
    """A seekable file over HTTP range requests: enough to walk a container's top-level layout."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._position = 0
        self._size = self._fetch(0, 0)[1]

    def _fetch(self, first: int, last: int) -> tuple[bytes, int]:
        request = urllib.request.Request(self._url, headers={"Range": f"bytes={first}-{last}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            total = int(response.headers["Content-Range"].rpartition("/")[2])
            return response.read(), total

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        end = self._size if size < 0 else min(self._size, self._position + size)
        if end <= self._position:
            return b""
        data, _ = self._fetch(self._position, end - 1)
        self._position += len(data)
        return data


def _open_binary(location: str | Path):
    """A local path as a file, a URL (an object store's signed URL) through range requests."""
    text = str(location)
    return _RangeReader(text) if text.startswith(("http://", "https://")) else open(text, "rb")


VIDEO_DEMUXERS = ("mov", "matroska", "avi", "mpegts", "mpeg", "flv", "ogg", "asf", "mxf", "dv", "ivf", "h264",
                  "hevc", "m4v", "mpegvideo")
"""The containers of real video files (FFmpeg's demuxer names). None of them opens another file or URL
named inside the upload, as playlists (hls, dash), lists (concat) and image sequences (image2) do."""
IMAGE_DEMUXERS = ("jpeg_pipe", "png_pipe", "webp_pipe", "gif", "apng", "bmp_pipe", "tiff_pipe")
"""Still images: opened only so that the refusal can say what the file is."""


def _protocols(location: str) -> str:
    """What FFmpeg may open: the file itself, or the object store's signed URL over HTTP(S)."""
    return "http,https,tcp,tls" if location.startswith(("http://", "https://")) else "file"


def open_media(location: str | Path) -> av.container.InputContainer:
    """Open an upload or a stored video with PyAV, as one of the containers we mean and nothing else.

    An upload is hostile: FFmpeg would otherwise pick whatever demuxer the
    bytes ask for, and some of those open what the bytes name (an ffconcat
    list read the server's open files). Tags that are not valid UTF-8 are
    decoded with replacement characters: some cameras write such tags, and by
    default PyAV refuses the whole file for them, while FFmpeg's own tools read it.
    """
    text = str(location)
    return av.open(text, metadata_errors="replace", options={
        "format_whitelist": ",".join(VIDEO_DEMUXERS + IMAGE_DEMUXERS),
        "protocol_whitelist": _protocols(text),
    })


@contextmanager
def unreadable_means_not_a_video() -> Iterator[None]:
    """Turn whatever FFmpeg or PyAV throws on a file's bytes into NotAVideo.

    A file is user input: a layout no check foresaw must end as a refusal the
    user can read (a 415), not as a crash of the request. The unexpected ones
    are logged with their traceback, so that they still get looked at.
    """
    try:
        yield
    except NotAVideo:
        raise
    except av.error.FFmpegError as exc:
        raise NotAVideo(f"not a video file FFmpeg can read ({exc.strerror or 'invalid data'})") from None
    except Exception:
        log.warning("unexpected error while reading a media file", exc_info=True)
        raise NotAVideo("not a video file FFmpeg can read (invalid data)") from None


# --- whole-file structure ------------------------------------------------------

def _iso_bmff_boxes(path: str | Path) -> list[tuple[bytes, int, int]]:
    """Top-level boxes of an MP4/MOV as (type, offset, size); a box past the end means truncation."""
    boxes = []
    with _open_binary(path) as file:
        end = file.seek(0, 2)
        offset = 0
        while offset < end:
            file.seek(offset)
            header = file.read(16)
            if len(header) < 8:
                raise NotAVideo("the file is truncated: it ends inside a box header")
            size, kind = struct.unpack(">I4s", header[:8])
            if size == 1 and len(header) == 16:
                size = struct.unpack(">Q", header[8:16])[0]
            elif size == 0:
                size = end - offset
            if size < 8 or offset + size > end:
                raise NotAVideo(f"the file is truncated: its {kind.decode('latin-1')!r} box runs past the end")
            boxes.append((kind, offset, size))
            offset += size
    return boxes


def moov_after_mdat(path: str | Path) -> bool:
    """Whether a browser must fetch the end of this MP4 before it can start playing."""
    kinds = [kind for kind, _, _ in _iso_bmff_boxes(path)]
    return b"moov" in kinds and b"mdat" in kinds and kinds.index(b"moov") > kinds.index(b"mdat")


_EBML_HEADER, _SEGMENT, _VOID, _CRC32 = 0x1A45DFA3, 0x18538067, 0xEC, 0xBF
_MATROSKA_HEADER_BYTES = 12  # the longest element header: a 4-byte ID and an 8-byte size
_MATROSKA_ELEMENTS_BEFORE_SEGMENT = 64  # bounds the walk on crafted files


def _read_vint(data: bytes, position: int, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-size integer: (value, length, whether it is the 'unknown' value)."""
    if position >= len(data):
        raise NotAVideo("the file is truncated: it ends inside a Matroska element header")
    length = 9 - data[position].bit_length()  # the leading zero bits say how long it is
    if length > 8:
        raise NotAVideo("the file is damaged: bad Matroska element")
    if position + length > len(data):
        raise NotAVideo("the file is truncated: it ends inside a Matroska element header")
    value = int.from_bytes(data[position : position + length], "big")
    marker = 1 << (7 * length)
    unknown = value == (marker << 1) - 1  # every value bit set
    return (value if keep_marker else value - marker), length, unknown


def _matroska_element(file: io.RawIOBase, position: int) -> tuple[int, int, int | None]:
    """The element at ``position``: (ID, where its data starts, its size or None if unknown)."""
    file.seek(position)
    head = file.read(_MATROSKA_HEADER_BYTES)
    element, id_length, _ = _read_vint(head, 0, keep_marker=True)
    size, size_length, unknown = _read_vint(head, id_length, keep_marker=False)
    return element, position + id_length + size_length, None if unknown else size


def _check_matroska_size(path: str | Path) -> None:
    """The Segment must be as long as it declares, unless it declares an unknown size.

    Live streams and browser recordings (MediaRecorder) declare an unknown size.
    The EBML header comes first, and between it and the Segment Void and CRC-32
    elements are legal; each is skipped by its declared size, however large.
    """
    with _open_binary(path) as file:
        end = file.seek(0, 2)
        position, allowed = 0, {_EBML_HEADER}
        for _ in range(_MATROSKA_ELEMENTS_BEFORE_SEGMENT):
            element, data_start, size = _matroska_element(file, position)
            if element not in allowed or (size is None and element != _SEGMENT):
                break
            if size is not None and data_start + size > end:
                part = "segment" if element == _SEGMENT else "header"
                raise NotAVideo(f"the file is truncated: the Matroska {part} runs past the end")
            if element == _SEGMENT:
                return
            position, allowed = data_start + size, {_SEGMENT, _VOID, _CRC32}
    raise NotAVideo("the file is damaged: unexpected Matroska layout")


def _check_complete(path: str | Path, container: av.container.InputContainer) -> None:
    """Compare what the container declares with what arrived; else demux every packet."""
    if container.format.name == _ISO_BMFF_FORMATS:
        _iso_bmff_boxes(path)
    elif container.format.name == _MATROSKA_FORMATS:
        _check_matroska_size(path)
    else:
        for _ in container.demux():
            pass
        container.seek(0)


# --- probing ----------------------------------------------------------------------

def container_name(format_name: str, name: str) -> str:
    """A short container name users know: mp4, mov, webm, mkv, or FFmpeg's own."""
    extension = name.rpartition(".")[2].lower()
    if format_name == _ISO_BMFF_FORMATS:
        return "mov" if extension == "mov" else "mp4"
    if format_name == _MATROSKA_FORMATS:
        return "webm" if extension == "webm" else "mkv"
    return format_name.split(",")[0]


def _first_frame_decodes(container: av.container.InputContainer, stream: av.stream.Stream) -> bool:
    for frame in container.decode(stream):
        return frame is not None
    return False


def inspect(path: str | Path, name: str) -> MediaInfo:
    """Probe a file and prove it is a whole video with a decodable picture (or a whole sound recording with
    decodable sound), or raise NotAVideo.

    ``name`` is what the file is (or will be) stored as; its extension tells MP4 from MOV.
    FFmpeg's own errors pass through: the worker operations below turn them into NotAVideo.
    """
    with open_media(path) as container:
        if container.format.name in _IMAGE_FORMATS or container.format.name.endswith("_pipe"):
            raise NotAVideo(f"this is a still image ({container.format.name}), not a video")
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        main = videos[0] if videos else (container.streams.audio[0] if container.streams.audio else None)
        if main is None:
            raise NotAVideo("the file has no video or audio stream")
        _check_complete(path, container)
        if not _first_frame_decodes(container, main):
            raise NotAVideo(f"nothing in the {main.type} stream could be decoded")
        return _describe(name, container, videos[0] if videos else None)


def _describe(name: str, container: av.container.InputContainer,
              video: av.video.stream.VideoStream | None) -> MediaInfo:
    """What the file holds; a sound recording (``video`` None) has no picture size, rate or codec."""
    audio = container.streams.audio[0] if container.streams.audio else None
    duration = media_duration(container, video or audio)
    rate = (video.average_rate or video.guessed_rate) if video else None
    return MediaInfo(
        container=container_name(container.format.name, name),
        duration=duration,
        width=video.codec_context.width if video else None,
        height=video.codec_context.height if video else None,
        frame_rate=round(float(rate), 3) if rate else None,
        video_codec=_codec_name(video) if video else None,
        audio_codec=_codec_name(audio) if audio else None,
        bitrate=container.bit_rate or None,
        created=_creation_time(container.metadata.get("creation_time")),
    )


def _codec_name(stream: av.stream.Stream) -> str:
    """The codec's own name (av1, mp3), not the decoder's that FFmpeg picked for it (libdav1d, mp3float)."""
    return stream.codec_context.codec.canonical_name


def _creation_time(tag: str | None) -> str | None:
    """The container's creation_time tag as ISO 8601, when it holds a real date."""
    if not tag:
        return None
    try:
        moment = datetime.fromisoformat(tag.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.isoformat() if moment.year > 1970 else None


# --- remuxing and posters -----------------------------------------------------------

def faststart(source: Path, target: Path, container: str) -> None:
    """Rewrite an MP4/MOV with ``moov`` first: the same packets, streams and tags, no re-encode.

    The tags matter: phones put the recording time in ``creation_time``. Other
    data streams (a camera's telemetry) are kept when the muxer takes them.
    """
    with open_media(source) as inp:
        kept = [stream for stream in inp.streams if _remuxed(stream)]
        try:
            out = _output_with(target, container, inp, kept)
        except av.error.ArgumentError:  # the muxer refused a stream: a data stream it has no tag for
            kept = [stream for stream in kept if stream.type != "data"]
            out = _output_with(target, container, inp, kept)
        with out:
            copies = dict(zip((stream.index for stream in kept), out.streams))
            for packet in inp.demux(*kept):
                if packet.dts is None:
                    continue
                packet.stream = copies[packet.stream.index]
                out.mux(packet)


def _remuxed(stream: av.stream.Stream) -> bool:
    """Whether the remux copies this stream.

    A timecode track is not copied but made anew: PyAV cannot give the copy the
    frame rate the muxer requires of it, and the muxer builds one from the
    ``timecode`` tag that FFmpeg puts on the video stream, copied with its tags.
    """
    if stream.type == "data":
        return "timecode" not in stream.metadata
    return stream.type in ("video", "audio", "subtitle")


def _output_with(target: Path, container: str, inp: av.container.InputContainer,
                 streams: list[av.stream.Stream]) -> av.container.OutputContainer:
    """An output with copies of ``streams``, theirs and the container's tags, and its header written.

    Writing the header here makes a stream the muxer refuses show up before any packet is copied.
    """
    out = av.open(str(target), "w", format=container, options={"movflags": "faststart"})
    try:
        out.metadata.update(inp.metadata)
        for stream in streams:
            out.add_stream_from_template(stream).metadata.update(stream.metadata)
        out.start_encoding()
    except BaseException:
        out.close()
        raise
    return out


def poster_jpeg(path: str | Path) -> bytes | None:
    """A JPEG of the keyframe near 10% of the duration, at most POSTER_MAX_WIDTH wide."""
    try:
        with unreadable_means_not_a_video(), open_media(path) as container:
            if not container.streams.video:
                return None
            video = container.streams.video[0]
            if container.duration:
                container.seek(int(container.duration * POSTER_POSITION), backward=True, any_frame=False)
            frame = next(container.decode(video), None)
            return _encode_jpeg(frame) if frame is not None else None
    except NotAVideo:
        return None


def media_duration(container: av.container.InputContainer, timed: av.stream.Stream) -> float | None:
    """How long a file plays, in seconds to the millisecond (the container's, else its ``timed`` stream's)."""
    duration = container.duration / av.time_base if container.duration else None
    if duration is None and timed.duration and timed.time_base:
        duration = float(timed.duration * timed.time_base)
    return round(duration, 3) if duration else None


def _encode_jpeg(frame: av.VideoFrame) -> bytes:
    width = min(frame.width, POSTER_MAX_WIDTH)
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    return jpeg(frame, width, height)


def jpeg(frame: av.VideoFrame, width: int, height: int) -> bytes:
    """``frame`` scaled to ``width`` x ``height``, as one JPEG."""
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = frame.time_base or 1
    encoder.options = {"qscale": "3"}
    still = frame.reformat(width=width, height=height, format="yuvj420p")
    still.pts = 0
    packets = encoder.encode(still) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)


# --- the operations the server asks for, one worker round trip each ---------------

FASTSTART_CONTAINERS = {"mp4", "mov"}


def validate_upload(path: str, name: str) -> UploadCheck:
    """The media info of an upload, and whether its index must be moved to the front."""
    with unreadable_means_not_a_video():
        info = inspect(path, name)
        return UploadCheck(info, info.container in FASTSTART_CONTAINERS and moov_after_mdat(path))


def remux_faststart(source: str, target: str, name: str, container: str) -> bool:
    """Write and check the faststart copy; False means: store the original as uploaded."""
    try:
        with unreadable_means_not_a_video():
            faststart(Path(source), Path(target), container)
            inspect(target, name)
            return not moov_after_mdat(target)
    except NotAVideo as exc:
        log.warning("faststart remux of %r failed, storing it as uploaded: %s", name, exc)
        return False


def describe_with_poster(path: str, name: str) -> Description:
    """Metadata (or why there is none) and a poster, for the library."""
    try:
        with unreadable_means_not_a_video():
            info = inspect(path, name)
    except NotAVideo as exc:
        return Description(None, str(exc), None)
    return Description(info, None, poster_jpeg(path))
