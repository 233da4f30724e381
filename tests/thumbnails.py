"""Reading WebVTT thumbnails tracks (storyboards) strictly, as the tests check them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin

VERSIONED = re.compile(r"storyboard/([0-9a-f]{16})/([0-9]+)\.jpg#xywh=([0-9]+),([0-9]+),([0-9]+),([0-9]+)")
TIMING = re.compile(r"([0-9]{2,}):([0-5][0-9]):([0-5][0-9])\.([0-9]{3}) --> ([0-9]{2,}):([0-5][0-9]):([0-5][0-9])\.([0-9]{3})")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    sprite: str  # the sprite's absolute URL
    x: int
    y: int
    width: int
    height: int


def parse_track(text: str, url: str) -> list[Cue]:
    """A strict reading of a WebVTT thumbnails track: the header, then blocks of one timing line and one
    ``<sprite>#xywh=x,y,w,h`` line, each block ended by a blank line; cue URLs resolved against ``url``."""
    lines = text.split("\n")
    assert lines[:2] == ["WEBVTT", ""], lines[:2]
    cues, blocks = [], lines[2:]
    while blocks and blocks != [""]:
        timing, target, blank, *blocks = blocks
        assert blank == "", blank
        times = TIMING.fullmatch(timing)
        assert times, timing
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, times.groups())
        sprite, _, fragment = urljoin(url, target).partition("#xywh=")
        assert VERSIONED.fullmatch(target), target
        x, y, width, height = map(int, fragment.split(","))
        cues.append(Cue(((h1 * 60 + m1) * 60 + s1) * 1000 + ms1, ((h2 * 60 + m2) * 60 + s2) * 1000 + ms2,
                        sprite, x, y, width, height))
    return cues
