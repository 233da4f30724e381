"""Which renditions a video gets: the bitrate ladder, cut to the source's size, and their frame sizes.

Plain arithmetic, without PyAV, so that the server can check the ladder of its
settings at start-up and the tests can check the plan of any size of source.
A rung is named by the short side of its picture (``720`` is 1280x720, and
720x1280 for a portrait video), so that portrait and landscape sources of one
quality get the same rungs. Sources are never scaled up: a rung larger than
the source is left out, and a source between two rungs (or below the
smallest) gets one more rung at its own size, so that no quality is thrown
away. The largest rung is the cap: a larger source gets no rung of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LADDER = "240:400,360:800,480:1400,720:2800,1080:5000"
"""``VIDEO_RENDITION_LADDER``: short side in pixels, and the peak video bitrate in kbit/s, of each rung.
Empty: no renditions are made."""

OWN_SIZE_MARGIN = 1.15
"""How much larger than the ladder's largest rung it fits a source must be to get a rung of its own size."""

MIN_SIDE = 16
"""The smallest side an encoder is given (x264 needs a few macroblocks)."""


class LadderError(ValueError):
    """A ladder setting that cannot be read."""


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder: its short side and peak video bitrate (bit/s)."""

    short_side: int
    max_bitrate: int


@dataclass(frozen=True)
class Rendition:
    """One video rendition to make: its name (``v360``), frame size and peak bitrate (bit/s)."""

    name: str
    width: int
    height: int
    max_bitrate: int


def parse_ladder(text: str) -> tuple[Rung, ...]:
    """The rungs of a ``240:400,360:800`` ladder, smallest first; LadderError if it cannot be read."""
    rungs = []
    for item in filter(None, (item.strip() for item in text.split(","))):
        side, _, kbits = item.strip().partition(":")
        try:
            rung = Rung(int(side), int(kbits) * 1000)
        except ValueError:
            raise LadderError(f"{item.strip()!r} is not short-side:kbit/s (as in 720:2800)") from None
        if rung.short_side < MIN_SIDE or rung.max_bitrate <= 0:
            raise LadderError(f"{item.strip()!r}: the side must be at least {MIN_SIDE} and the bitrate positive")
        rungs.append(rung)
    sides = [rung.short_side for rung in rungs]
    if len(set(sides)) != len(sides):
        raise LadderError("two rungs have the same size")
    return tuple(sorted(rungs, key=lambda rung: rung.short_side))


def plan(width: int, height: int, ladder: tuple[Rung, ...]) -> list[Rendition]:
    """The renditions of a source shown at ``width`` x ``height`` (after rotation), smallest first.

    Every rung no larger than the source; and the source's own size too when it is below the largest rung
    and well above the largest of those (or below the smallest rung), at a bitrate scaled from its nearest
    rung by pixel count.
    """
    short = min(width, height)
    fitting = [rung for rung in ladder if rung.short_side <= short]
    renditions = [_scaled(width, height, rung.short_side, rung.max_bitrate) for rung in fitting]
    between = short < ladder[-1].short_side and (not fitting or short > fitting[-1].short_side * OWN_SIZE_MARGIN)
    if between:
        nearest = fitting[-1] if fitting else ladder[0]
        bitrate = round(nearest.max_bitrate * (short / nearest.short_side) ** 2)
        renditions.append(_scaled(width, height, short, bitrate))
    return renditions


def _scaled(width: int, height: int, short_side: int, max_bitrate: int) -> Rendition:
    """The rendition whose short side is ``short_side``, the aspect ratio kept and both sides even (4:2:0)."""
    scale = short_side / min(width, height)
    scaled_width = max(MIN_SIDE, _even(width * scale))
    scaled_height = max(MIN_SIDE, _even(height * scale))
    return Rendition(f"v{min(scaled_width, scaled_height)}", scaled_width, scaled_height, max_bitrate)


def _even(length: float) -> int:
    """The even number of pixels nearest ``length``, never above it by rounding (853 -> 852)."""
    return int(round(length, 6)) // 2 * 2
