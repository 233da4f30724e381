"""The bitrate ladder: read from its setting, and cut to each source's size without ever scaling up."""

from __future__ import annotations

import pytest

from app.core.ladder import DEFAULT_LADDER, LadderError, parse_ladder, plan
from app.core.settings import Settings, SettingsError

LADDER = parse_ladder(DEFAULT_LADDER)


def sizes(width: int, height: int) -> list[tuple[int, int]]:
    return [(rendition.width, rendition.height) for rendition in plan(width, height, LADDER)]


def test_a_1080p_source_gets_every_rung():
    assert sizes(1920, 1080) == [(426, 240), (640, 360), (852, 480), (1280, 720), (1920, 1080)]


def test_a_portrait_source_gets_the_same_rungs_turned():
    assert sizes(1080, 1920) == [(240, 426), (360, 640), (480, 852), (720, 1280), (1080, 1920)]


def test_a_source_between_rungs_gets_one_at_its_own_size_with_even_sides():
    assert sizes(853, 479) == [(426, 240), (640, 360), (852, 478)]


def test_a_source_just_above_a_rung_gets_no_rung_of_its_own():
    assert sizes(660, 372) == [(424, 240), (638, 360)]


def test_a_source_below_the_smallest_rung_keeps_its_size():
    assert sizes(160, 120) == [(160, 120)]


def test_the_largest_rung_caps_a_larger_source():
    assert sizes(3840, 2160)[-1] == (1920, 1080)


def test_a_rung_of_its_own_gets_a_bitrate_scaled_by_pixels():
    own = plan(853, 479, LADDER)[-1]
    assert 800_000 < own.max_bitrate < 1_600_000


def test_the_ladder_is_read_smallest_first():
    assert [rung.short_side for rung in parse_ladder("720:2800, 240:400")] == [240, 720]


def test_an_empty_ladder_turns_renditions_off():
    assert Settings(rendition_ladder="").ladder == ()


@pytest.mark.parametrize("text", ["720", "720:fast", "8:100", "240:0", "240:400,240:500"])
def test_a_ladder_that_cannot_be_read_is_refused(text):
    with pytest.raises(LadderError):
        parse_ladder(text)


def test_the_setting_names_the_variable_it_refuses():
    with pytest.raises(SettingsError, match="VIDEO_RENDITION_LADDER"):
        Settings(rendition_ladder="720")
