"""Turning pictures upright as their rotation metadata says (phones record portrait video as turned landscape).

Runs only in the media worker processes, like ``probe.py``: renditions (players ignore rotation in segments)
and storyboards (their tiles are pictures in a sprite) both need their pictures the way they are shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import av.error

_UPRIGHT = {90: (("transpose", "cclock"),), 180: (("hflip", ""), ("vflip", "")), 270: (("transpose", "clock"),)}
"""The filters that turn a picture upright, by its rotation (FFmpeg's: degrees counter-clockwise)."""


def upright_size(frame: av.VideoFrame) -> tuple[int, int]:
    """The size the picture is shown at: a quarter turn swaps its sides."""
    return (frame.height, frame.width) if frame.rotation % 180 else (frame.width, frame.height)


class Upright:
    """Turns pictures (all of one size) as their rotation metadata says."""

    def __init__(self, rotation: int) -> None:
        self._filter = _UPRIGHT.get(rotation % 360)
        self._graph: av.filter.Graph | None = None

    @property
    def quarter_turn(self) -> bool:
        """Whether it swaps the sides of a picture."""
        return self._filter is not None and self._filter[0][0] == "transpose"

    def __call__(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        if self._filter is None:
            return [frame]
        if self._graph is None:
            self._graph = self._build(frame)
        self._graph.push(frame)
        return list(pulled(self._graph))

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                  time_base=frame.time_base or Fraction(1, 90000))
        turns = [graph.add(name, arguments) for name, arguments in self._filter]
        graph.link_nodes(source, *turns, graph.add("buffersink")).configure()
        return graph


def pulled(graph: av.filter.Graph) -> Iterator[av.VideoFrame]:
    """Every frame a filter graph has ready now."""
    while True:
        try:
            yield graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
