"""Making a video's renditions with PyAV: an HLS ladder in CMAF segments, and a web MP4 when needed.

Runs only in the media worker processes (``workers.py``), like ``probe.py``.
The source is decoded once; each picture is turned upright, scaled to every
rung of the plan (``ladder.py``) and encoded with x264, and the sound is
encoded once to AAC. FFmpeg's ``hls`` muxer cuts each into fMP4 segments of
``segment_seconds``: every rung is forced to an IDR frame at the same instants
(multiples of the segment length from the first picture), so the segments of
all rungs start together and a player can switch between them at any segment.
The sound is a rendition of its own (an ``EXT-X-MEDIA`` audio group), shared
by every rung, and is the only one of an audio-only source. Both start on one
clock whose 0 is the first picture, whatever the source's clock said (an
MPEG-TS often starts seconds in), so that players keep them in step.

What is written, under ``target`` (a local folder the server then publishes)::

    hls/<version>/<rendition>/index.m3u8, init.mp4, 0.m4s, 1.m4s ...
    hls/<version>/audio/...          the sound, when there is any
    web/<version>.mp4                the web MP4, when the source does not play as it is
    hls/master.m3u8                  written last, its URIs under <version>/

``version`` names this set of renditions in every URI, so that a segment's URL
never serves other bytes and can be cached for good.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av

from app.core.errors import NotAVideo
from app.media.info import Made, RenditionSettings, Variant, plays_in_browsers
from app.core.ladder import Rendition, plan
from app.media.probe import container_name, open_media, unreadable_means_not_a_video
from app.media.upright import Upright, upright_size

log = logging.getLogger(__name__)

AUDIO_BITRATE = 128_000
AUDIO_RATE = 48_000
AUDIO_CODECS = "mp4a.40.2"  # AAC-LC, as RFC 6381 names it
CRF = "23"
MAX_FRAME_RATE = 60


def make(location: str, name: str, target: str, version: str, settings: RenditionSettings,
         progress: Callable[[float], None]) -> Made:
    """Write the renditions of the video ``name`` (at ``location``) under ``target``; NotAVideo if it cannot be
    read. The name's extension tells WebM from Matroska, which browsers do not all play."""
    with unreadable_means_not_a_video(), open_media(location) as source:
        return _Transcode(source, name, Path(target), version, settings, progress).run()


class _Transcode:
    """One pass over the source, feeding every encoder; then the playlists."""

    def __init__(self, source: av.container.InputContainer, name: str, target: Path, version: str,
                 settings: RenditionSettings, progress: Callable[[float], None]) -> None:
        self._source = source
        self._name = name
        self._root = target / "hls" / version
        self._target = target
        self._version = version
        self._settings = settings
        self._progress = progress
        videos = [s for s in source.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        self._video_in = videos[0] if videos else None
        if self._video_in is not None:
            self._video_in.codec_context.thread_type = "AUTO"  # decoding keeps pace with five encoders
        self._audio_in = source.streams.audio[0] if source.streams.audio else None
        if self._video_in is None and self._audio_in is None:
            raise NotAVideo("the file has neither pictures nor sound")
        self._duration = source.duration / av.time_base if source.duration else 0.0

    def run(self) -> Made:
        first = self._first_frame()
        renditions = plan(*upright_size(first), self._settings.ladder) if first is not None else []
        outputs = [_VideoOutput(self._root / r.name, r, self._video_in, self._settings) for r in renditions]
        audio = _AudioOutput(self._root / "audio", self._settings) if self._audio_in is not None else None
        origin = first.time if first is not None and first.time is not None else 0.0
        if audio is not None:
            audio.starts_at(_start_seconds(self._audio_in) - origin)
        self._source.seek(0)
        upright = Upright(first.rotation if first is not None else 0)
        for frame in self._frames():
            if isinstance(frame, av.AudioFrame):
                audio.encode(frame)
                continue
            for picture in upright(frame):
                if picture.pts is not None:
                    picture.pts -= round(origin / picture.time_base)
                for output in outputs:
                    output.encode(picture)
                self._report(picture)
        for output in (*outputs, *([audio] if audio else [])):
            output.close()
        web = bool(outputs) and self._web_needed()
        if web:
            _remux_web(outputs[-1].directory, audio.directory if audio else None,
                       self._target / "web" / f"{self._version}.mp4")
        variants = tuple(output.described(audio) for output in outputs)
        _write_master(self._target / "hls" / "master.m3u8", self._version, variants, audio is not None)
        return Made(variants, audio is not None, web)

    def _first_frame(self) -> av.VideoFrame | None:
        if self._video_in is None:
            return None
        frame = next(self._source.decode(self._video_in), None)
        if frame is None:
            raise NotAVideo("no picture in the video stream could be decoded")
        return frame

    def _frames(self) -> Iterator[av.VideoFrame | av.AudioFrame]:
        streams = [s for s in (self._video_in, self._audio_in) if s is not None]
        for packet in self._source.demux(*streams):
            yield from packet.decode()

    def _report(self, picture: av.VideoFrame) -> None:
        if self._duration and picture.pts is not None and picture.time_base:
            self._progress(min(1.0, float(picture.pts * picture.time_base) / self._duration))

    def _web_needed(self) -> bool:
        video, audio = self._video_in, self._audio_in
        return not plays_in_browsers(
            container_name(self._source.format.name, self._name),
            video.codec_context.codec.canonical_name,
            video.codec_context.format.name if video.codec_context.format else None,
            audio.codec_context.codec.canonical_name if audio else None)


def _start_seconds(stream: av.stream.Stream) -> float:
    """When a stream starts on the source's clock (an MPEG-TS often starts seconds in)."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _hls_output(directory: Path, segment_seconds: int) -> av.container.OutputContainer:
    """An ``hls`` muxer writing a VOD playlist of fMP4 segments into ``directory``, and nothing else."""
    directory.mkdir(parents=True)
    return av.open(str(directory / "index.m3u8"), "w", format="hls", options={
        "hls_time": str(segment_seconds),
        "hls_playlist_type": "vod",
        "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": "init.mp4",
        "hls_segment_filename": str(directory / "%d.m4s"),
        "hls_flags": "independent_segments",
        "protocol_whitelist": "file",
    })


class _VideoOutput:
    """One video rendition: a scaler, an x264 encoder and its HLS muxer."""

    def __init__(self, directory: Path, rendition: Rendition, source: av.video.stream.VideoStream,
                 settings: RenditionSettings) -> None:
        self.directory = directory
        self.rendition = rendition
        self._segment = settings.segment_seconds
        self._container = _hls_output(directory, settings.segment_seconds)
        rate = source.average_rate or source.guessed_rate or Fraction(30)
        self.frame_rate = min(float(rate), MAX_FRAME_RATE)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = rendition.width, rendition.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = source.time_base
        group = max(1, round(self.frame_rate * settings.segment_seconds))
        self._stream.codec_context.options = {
            "preset": settings.preset, "profile": "high", "crf": CRF, "forced-idr": "1",
            "maxrate": str(rendition.max_bitrate), "bufsize": str(2 * rendition.max_bitrate),
            "x264-params": f"keyint={group}:min-keyint={group}:scenecut=0",
            "threads": str(settings.threads),
        }
        self._next_key = 0.0
        self._start: float | None = None
        self._last_pts: int | None = None

    def encode(self, picture: av.VideoFrame) -> None:
        if picture.pts is None or (self._last_pts is not None and picture.pts <= self._last_pts):
            return  # a picture out of order or without a time cannot be placed: x264 would refuse it
        self._last_pts = picture.pts
        scaled = picture.reformat(self.rendition.width, self.rendition.height, "yuv420p")
        scaled.pts, scaled.time_base = picture.pts, picture.time_base
        scaled.pict_type = self._picture_type(float(picture.pts * picture.time_base))
        self._mux(self._stream.encode(scaled))

    def _picture_type(self, seconds: float) -> av.video.frame.PictureType:
        """An IDR at each segment boundary (from the first picture), so that every rung cuts at the same times."""
        if self._start is None:
            self._start = seconds
        if seconds - self._start >= self._next_key - 1e-6:
            self._next_key += self._segment
            return av.video.frame.PictureType.I
        return av.video.frame.PictureType.NONE

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        self._mux(self._stream.encode(None))
        self._codecs = _avc_codecs(self._stream.codec_context.extradata)
        self._container.close()

    def described(self, audio: _AudioOutput | None) -> Variant:
        """This rendition for the master playlist: its bitrates include the sound it is played with."""
        peak, average = _bitrates(self.directory)
        if audio is not None:
            audio_peak, audio_average = _bitrates(audio.directory)
            peak, average = peak + audio_peak, average + audio_average
        codecs = f"{self._codecs},{AUDIO_CODECS}" if audio is not None else self._codecs
        return Variant(self.rendition.name, self.rendition.width, self.rendition.height, peak, average, codecs,
                       round(self.frame_rate, 3))


class _AudioOutput:
    """The sound: resampled to 48 kHz stereo and encoded once to AAC, in an HLS rendition of its own."""

    def __init__(self, directory: Path, settings: RenditionSettings) -> None:
        self.directory = directory
        self._container = _hls_output(directory, settings.segment_seconds)
        self._stream = self._container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self._stream.bit_rate = AUDIO_BITRATE
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE,
                                            frame_size=self._stream.codec_context.frame_size or 1024)
        self._samples = 0

    def starts_at(self, seconds: float) -> None:
        """Where the sound starts on the renditions' clock (whose 0 is the first picture): sound that starts
        later than the pictures is placed as late; sound from before the first picture begins with it."""
        self._samples = max(0, round(seconds * AUDIO_RATE))

    def encode(self, frame: av.AudioFrame | None) -> None:
        for resampled in self._resampler.resample(frame):
            resampled.pts, resampled.time_base = self._samples, Fraction(1, AUDIO_RATE)
            self._samples += resampled.samples
            for packet in self._stream.encode(resampled):
                self._container.mux(packet)

    def close(self) -> None:
        self.encode(None)
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()


def _avc_codecs(extradata: bytes | None) -> str:
    """The RFC 6381 name of an H.264 stream (``avc1.64001f``) from its sequence parameter set."""
    if not extradata:
        raise NotAVideo("the encoder gave no parameter sets")
    if extradata[0] == 1:  # avcC: profile, constraints and level are its bytes 1 to 3
        return "avc1." + extradata[1:4].hex()
    for unit in extradata.split(b"\x00\x00\x01"):
        if unit and unit[0] & 0x1F == 7:  # a sequence parameter set: its three bytes after the header
            return "avc1." + unit[1:4].hex()
    raise NotAVideo("the encoder gave no sequence parameter set")


def _bitrates(directory: Path) -> tuple[int, int]:
    """The peak and average bitrate (bit/s) of a rendition's segments, from their sizes and playlist durations."""
    durations = _segment_durations(directory / "index.m3u8")
    sizes = [(directory / uri).stat().st_size for uri in durations]
    seconds = sum(durations.values()) or 1.0
    peak = max((size * 8 / max(durations[uri], 0.001) for uri, size in zip(durations, sizes)), default=0.0)
    return round(peak), round(sum(sizes) * 8 / seconds)


def _segment_durations(playlist: Path) -> dict[str, float]:
    """Each segment's URI and ``EXTINF`` duration, from a playlist the ``hls`` muxer just wrote."""
    durations: dict[str, float] = {}
    duration = None
    for line in playlist.read_text().splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:"):].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            durations[line] = duration
            duration = None
    return durations


def _write_master(path: Path, version: str, variants: tuple[Variant, ...], audio: bool) -> None:
    """The master playlist (RFC 8216, 4.3.4): each rendition, and the sound as an audio group; the sound alone
    for a sound recording.

    Written to a temporary name and renamed, last of all files, so that it never names what is not there.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio and variants:
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Sound",DEFAULT=YES,AUTOSELECT=YES,'
                     f'URI="{version}/audio/index.m3u8"')
    for variant in variants:
        attributes = [f"BANDWIDTH={variant.bandwidth}", f"AVERAGE-BANDWIDTH={variant.average_bandwidth}",
                      f'CODECS="{variant.codecs}"', f"RESOLUTION={variant.width}x{variant.height}"]
        if variant.frame_rate:
            attributes.append(f"FRAME-RATE={variant.frame_rate:.3f}")
        if audio:
            attributes.append('AUDIO="audio"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), f"{version}/{variant.name}/index.m3u8"]
    if not variants and audio:
        peak, average = _bitrates(path.parent / version / "audio")
        lines += [f'#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},CODECS="{AUDIO_CODECS}"',
                  f"{version}/audio/index.m3u8"]
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    os.replace(temporary, path)


def _remux_web(video: Path, audio: Path | None, target: Path) -> None:
    """The web MP4: the top rendition's pictures and the sound, as one faststart MP4 (no second encode)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    inputs = [_joined(video)] + ([_joined(audio)] if audio is not None else [])
    opened = [av.open(str(path), format="mp4", options={"protocol_whitelist": "file"}) for path in inputs]
    try:
        with av.open(str(target), "w", format="mp4", options={"movflags": "faststart"}) as out:
            copies = [out.add_stream_from_template(container.streams[0]) for container in opened]
            packets = [_timed_packets(container) for container in opened]
            for packet, copy in _interleaved(packets, copies):
                packet.stream = copy
                out.mux(packet)
    finally:
        for container in opened:
            container.close()
        for path in inputs:
            path.unlink()


def _joined(directory: Path) -> Path:
    """A rendition's init segment and media segments in one fragmented MP4 file, to be remuxed."""
    joined = directory.with_suffix(".joined.mp4")
    with open(joined, "wb") as out:
        for part in ["init.mp4", *_segment_durations(directory / "index.m3u8")]:
            with open(directory / part, "rb") as segment:
                while chunk := segment.read(1 << 20):
                    out.write(chunk)
    return joined


def _timed_packets(container: av.container.InputContainer) -> Iterator[av.Packet]:
    return (packet for packet in container.demux(container.streams[0]) if packet.dts is not None)


def _interleaved(sources: list[Iterator[av.Packet]], streams: list[av.stream.Stream]
                 ) -> Iterator[tuple[av.Packet, av.stream.Stream]]:
    """Packets of every source in order of their decoding time, each with the stream it goes to."""
    heads = [next(source, None) for source in sources]
    while any(head is not None for head in heads):
        index = min((i for i, head in enumerate(heads) if head is not None),
                    key=lambda i: heads[i].dts * heads[i].time_base)
        yield heads[index], streams[index]
        heads[index] = next(sources[index], None)
