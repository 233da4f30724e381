"""Making a video's storyboard with PyAV: small pictures at a regular interval, tiled into JPEG sprite sheets,
and a WebVTT track of thumbnails that says which tile shows which time (seek previews).

Runs only in the media worker processes (``workers.py``), like ``probe.py``, and opens the file the same way
(``open_media``: its demuxer and protocol whitelists).

The interval is drawn from the duration (``interval_ms``): the duration split into about
``VIDEO_STORYBOARD_TILES`` (150) tiles, but never closer than ``VIDEO_STORYBOARD_MIN_INTERVAL_MS`` (1 s), never
further apart than 10 s for a video of up to 25 minutes, and never more than 200 tiles; the last tile covers
what is left (from half an interval to one and a half), so no cue is a sliver. Each tile is the first
picture at or after its time, found by seeking (to the keyframe before it) and decoding forward, or by decoding
on when it is a few seconds ahead anyway: one picture is held at a time, so memory stays flat whatever the
video. Tiles are ``VIDEO_STORYBOARD_TILE_WIDTH`` (160) pixels wide (never wider than the picture) and as high
as the picture is shown (rotation and pixel aspect applied), both even; up to 10 x 10 of them a sheet.

What is written, under ``target`` (a local folder the server then publishes)::

    storyboard/<version>/0.jpg, 1.jpg ...    the sprite sheets
    storyboard/<version>/storyboard.vtt      written last: cues from 0 to the duration, end to end, each
                                             ``storyboard/<version>/<n>.jpg#xywh=x,y,w,h``

The cues' URLs are relative to ``/video/{name}/storyboard.vtt``, where the track is served.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av

from app.core.errors import NotAVideo
from app.media.info import STORYBOARD_TRACK as TRACK, StoryboardMade, StoryboardSettings
from app.media.probe import jpeg, media_duration, open_media, unreadable_means_not_a_video
from app.media.upright import Upright, pulled

MAX_TILES = 200
SHEET_SIDE = 10
"""Tiles a row, and rows a sheet, at most."""
LONG_INTERVAL_MS = 10_000
"""The longest interval for a video of up to ``SHORT_VIDEO_MS``: a preview at least every 10 s."""
SHORT_VIDEO_MS = 25 * 60 * 1000
SEEK_AHEAD_SECONDS = 5.0
"""Decode on to a tile up to this far ahead; seek to one further (a keyframe is rarely further apart)."""
_EARLY = 0.001
"""A picture this close before a tile's time is the picture at that time (clocks in milliseconds)."""


def interval_ms(duration_ms: int, settings: StoryboardSettings) -> int:
    """The interval between two tiles of a video that plays ``duration_ms`` (see the module's text)."""
    interval = -(-duration_ms // settings.tiles)
    if duration_ms <= SHORT_VIDEO_MS:
        interval = min(interval, LONG_INTERVAL_MS)
    return max(interval, settings.min_interval_ms, -(-duration_ms // MAX_TILES))


def make(location: str, name: str, target: str, version: str, settings: StoryboardSettings) -> StoryboardMade | None:
    """Write the storyboard of the video ``name`` (at ``location``) under ``target``; None when it has no
    picture, or no known duration, to make one of; NotAVideo if it cannot be read."""
    with unreadable_means_not_a_video(), open_media(location) as source:
        videos = [s for s in source.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos or settings.tiles < 1:
            return None
        duration = media_duration(source, videos[0])
        if not duration:
            return None
        duration_ms = round(duration * 1000)
        interval = interval_ms(duration_ms, settings)
        count = max(1, (duration_ms + interval // 2) // interval)  # the last tile covers what is left
        folder = Path(target) / "storyboard" / version
        folder.mkdir(parents=True)
        pictures = _pictures(source, videos[0], (index * interval / 1000 for index in range(count)))
        made = _tile(pictures, videos[0], folder, count, settings.tile_width, interval, duration_ms)
        _write_track(folder, version, made)
        return made


def _pictures(source: av.container.InputContainer, video: av.video.stream.VideoStream,
              times: Iterable[float]) -> Iterator[av.VideoFrame]:
    """For each of ``times`` (seconds from the start of the pictures, ascending), the first picture at or after
    it, or the last picture when there is none."""
    start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
    decoded: Iterator[av.VideoFrame] | None = None
    last: av.VideoFrame | None = None
    for seconds in times:
        at = start + seconds
        if decoded is None or (last is not None and last.time is not None and at - last.time > SEEK_AHEAD_SECONDS):
            source.seek(int(at / video.time_base), stream=video, backward=True, any_frame=False)
            decoded = source.decode(video)
        while last is None or (last.time is not None and last.time < at - _EARLY):
            frame = next(decoded, None)
            if frame is None:
                break
            last = frame
        if last is None:
            raise NotAVideo("no picture in the video stream could be decoded")
        yield last


def _tile(pictures: Iterator[av.VideoFrame], video: av.video.stream.VideoStream, folder: Path, count: int,
          tile_width: int, interval: int, duration_ms: int) -> StoryboardMade:
    """Tile ``count`` pictures into sheets in ``folder``: ``0.jpg``, ``1.jpg`` ..."""
    first = next(pictures)
    upright = Upright(first.rotation)
    width, height = _tile_size(first, video.sample_aspect_ratio, upright.quarter_turn, tile_width)
    scaled = (height, width) if upright.quarter_turn else (width, height)
    columns = min(SHEET_SIDE, count)
    per_sheet = SHEET_SIDE * columns
    sheets = -(-count // per_sheet)
    pictures = itertools.chain([first], pictures)
    for sheet in range(sheets):
        tiles = min(per_sheet, count - sheet * per_sheet)
        graph = _sheet_graph(width, height, columns, -(-tiles // columns))
        for index in range(tiles):
            small = next(pictures).reformat(*scaled, "yuvj420p")
            small.pts, small.time_base = index, Fraction(1, 1)
            for turned in upright(small):
                graph.push(turned)
        graph.push(None)
        sheet_frame = next(pulled(graph))
        (folder / f"{sheet}.jpg").write_bytes(jpeg(sheet_frame, sheet_frame.width, sheet_frame.height))
    return StoryboardMade(width, height, interval, duration_ms, count, sheets, columns)


def _tile_size(first: av.VideoFrame, aspect: Fraction | None, quarter_turn: bool, tile_width: int) -> tuple[int, int]:
    """A tile's width and height: ``tile_width`` (at most the picture's), as high as the picture is shown, even."""
    shown_width = first.width * float(aspect) if aspect else float(first.width)
    shown_height = float(first.height)
    if quarter_turn:
        shown_width, shown_height = shown_height, shown_width
    width = max(2, min(tile_width, int(shown_width)) // 2 * 2)
    return width, max(2, round(width * shown_height / shown_width / 2) * 2)


def _sheet_graph(width: int, height: int, columns: int, rows: int) -> av.filter.Graph:
    """FFmpeg's ``tile`` filter: ``columns`` x ``rows`` pictures of ``width`` x ``height`` in one, row by row
    (black where a last row is short)."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=width, height=height, format="yuvj420p", time_base=Fraction(1, 1))
    graph.link_nodes(source, graph.add("tile", f"{columns}x{rows}"), graph.add("buffersink")).configure()
    return graph


def _write_track(folder: Path, version: str, made: StoryboardMade) -> None:
    """The WebVTT thumbnails track, written to a temporary name and renamed, last of all files."""
    per_sheet = SHEET_SIDE * made.columns
    lines = ["WEBVTT", ""]
    for index in range(made.tiles):
        start = index * made.interval_ms
        end = made.duration_ms if index == made.tiles - 1 else start + made.interval_ms
        sheet, place = divmod(index, per_sheet)
        row, column = divmod(place, made.columns)
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}",
                  f"storyboard/{version}/{sheet}.jpg#xywh={column * made.tile_width},{row * made.tile_height},"
                  f"{made.tile_width},{made.tile_height}", ""]
    temporary = folder / (TRACK + ".tmp")
    temporary.write_text("\n".join(lines))
    os.replace(temporary, folder / TRACK)


def _timestamp(milliseconds: int) -> str:
    """``HH:MM:SS.mmm``, as WebVTT writes times."""
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"
