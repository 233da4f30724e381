"""Real, small media files made on demand with PyAV (FFmpeg's libraries)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    rate: int = 25,
    video_codec: str = "libx264",
    audio_codec: str | None = "aac",
    container_options: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    telemetry: bool = False,
    noise: bool = False,
) -> Path:
    """Encode a moving test pattern (and a tone) into ``path``; the container follows the suffix.

    ``metadata`` are container tags (title, creation_time, timecode...);
    ``telemetry`` adds a data stream of sensor readings, as action cameras record.
    """
    with av.open(str(path), "w", options=container_options or {}) as container:
        container.metadata.update(metadata or {})
        video = container.add_stream(video_codec, rate=rate)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        if video_codec == "libx265":
            video.codec_tag = "hvc1"  # as iPhones write HEVC, the tag Apple's players require
            video.codec_context.options = {"x265-params": "log-level=error"}
        audio = container.add_stream(audio_codec, rate=48000) if audio_codec else None
        if telemetry:
            _mux_telemetry(container, seconds)
        frames = int(seconds * rate)
        if noise:
            video.codec_context.options = {"preset": "ultrafast", "crf": "12"}
        random = np.random.default_rng(7)
        for index in range(frames):
            frame = _pattern(index, width, height, random if noise else None)
            _encode(container, video, frame)
        if audio is not None:
            _encode_tone(container, audio, seconds)
        _encode(container, video, None)
        if audio is not None:
            _encode(container, audio, None)
    return path


def make_rotated(source: Path, path: Path, degrees: int) -> Path:
    """A copy of ``source`` whose pictures players must turn by ``degrees`` clockwise, as phones record portrait
    video (Debian's ffmpeg 5.1 writes the rotation from the old ``rotate`` tag)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy",
                    "-metadata:s:v:0", f"rotate={degrees}", str(path)], check=True)
    return path


def make_offset_ts(path: Path, seconds: float = 2.0, offset: float = 5.0) -> Path:
    """An MPEG-TS (MPEG-2 video, MP2 sound) whose clock starts ``offset`` seconds in, as broadcast and camera
    recordings do (Debian's ffmpeg)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
                    "-c:v", "mpeg2video", "-c:a", "mp2", "-output_ts_offset", str(offset), str(path)], check=True)
    return path


def make_webm_with_undecodable_title(path: Path) -> Path:
    """A WebM whose title tag is not valid UTF-8, as some cameras and taggers write them."""
    placeholder = "T" * 16
    make_video(path, seconds=0.5, video_codec="libvpx-vp9", audio_codec=None, metadata={"title": placeholder})
    path.write_bytes(path.read_bytes().replace(placeholder.encode(), b"\xff\xfe" * 8))
    return path


def make_audio(path: Path, seconds: float = 1.0, codec: str = "aac") -> Path:
    """A sound-only file: a container with an audio stream and no picture."""
    with av.open(str(path), "w") as container:
        audio = container.add_stream(codec, rate=48000)
        _encode_tone(container, audio, seconds)
        _encode(container, audio, None)
    return path


def _pattern(index: int, width: int, height: int, random: np.random.Generator | None) -> av.VideoFrame:
    """A moving gradient; with ``random``, grain that compresses badly (for big files)."""
    x = np.arange(width, dtype=np.uint16)[None, :]
    y = np.arange(height, dtype=np.uint16)[:, None]
    red, green, blue = np.broadcast_arrays((x + index * 4) % 256, (y + index * 2) % 256, ((x + y) // 2) % 256)
    rgb = np.stack([red, green, blue], axis=-1)
    if random is not None:
        rgb = rgb + random.integers(0, 64, size=rgb.shape, dtype=np.uint16)
    return av.VideoFrame.from_ndarray((rgb % 256).astype(np.uint8), format="rgb24")


def _mux_telemetry(container: av.container.OutputContainer, seconds: float) -> None:
    """A ``bin_data`` stream with one reading per tenth of a second."""
    stream = container.add_data_stream("bin_data")
    stream.time_base = Fraction(1, 1000)
    for tenth in range(int(seconds * 10)):
        packet = av.Packet(f"reading {tenth}".encode())
        packet.stream = stream
        packet.pts = packet.dts = tenth * 100
        packet.time_base = stream.time_base
        container.mux(packet)


def _encode_tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    samples_per_frame = stream.codec_context.frame_size or 1024
    total = int(seconds * stream.rate)
    for start in range(0, total, samples_per_frame):
        t = (np.arange(start, start + samples_per_frame) / stream.rate).astype(np.float32)
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = stream.rate
        frame.pts = start
        frame.time_base = Fraction(1, stream.rate)
        _encode(container, stream, frame)


def _encode(container, stream, frame) -> None:
    for packet in stream.encode(frame):
        container.mux(packet)
