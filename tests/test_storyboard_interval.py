"""The storyboard's interval rule (``app/media/storyboard.py``): about 150 tiles, at least 1 s apart, at most
10 s apart for videos of up to 25 minutes, never more than 200 tiles."""

from __future__ import annotations

import pytest

from app.media.info import StoryboardSettings
from app.media.storyboard import MAX_TILES, interval_ms

DEFAULT = StoryboardSettings(tiles=150, tile_width=160, min_interval_ms=1000)


@pytest.mark.parametrize(("duration_ms", "expected"), [
    (1_000, 1_000),  # a one-second clip: one tile
    (12_000, 1_000),  # short clips: one tile a second
    (150_000, 1_000),  # 150 tiles of 1 s
    (300_000, 2_000),  # 150 tiles
    (25 * 60_000, 10_000),  # 25 minutes: 150 tiles of 10 s
    (2 * 3600_000, 48_000),  # two hours: 150 tiles
])
def test_the_interval_aims_at_150_tiles_and_no_closer_than_a_second(duration_ms, expected):
    assert interval_ms(duration_ms, DEFAULT) == expected


def test_few_tiles_asked_for_still_give_one_every_10_seconds_up_to_25_minutes():
    assert interval_ms(25 * 60_000, StoryboardSettings(tiles=20, tile_width=160, min_interval_ms=1000)) == 10_000
    assert interval_ms(26 * 60_000, StoryboardSettings(tiles=20, tile_width=160, min_interval_ms=1000)) == 78_000


def test_a_short_minimum_never_makes_more_than_200_tiles():
    settings = StoryboardSettings(tiles=1000, tile_width=160, min_interval_ms=1)
    for duration_ms in (999, 10_000, 333_333, 4 * 3600_000):
        assert -(-duration_ms // interval_ms(duration_ms, settings)) <= MAX_TILES
