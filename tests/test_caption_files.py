"""How an SRT or WebVTT file becomes the WebVTT track we serve, and which language tags name tracks.

Pure functions (``app/core/captions.py``): the HTTP side is ``tests/test_captions.py``.
"""

from __future__ import annotations

import pytest

from app.core.captions import check_label, language_tag, parse, to_webvtt
from app.core.errors import InvalidLabel, InvalidLanguage, NotCaptions

SRT = """1
00:00:01,000 --> 00:00:02,500
Grüße aus Köln, 東京 and <i>Zürich</i>

2
00:00:03,000 --> 00:00:04,000
<script>alert("caption")</script>
"""


def webvtt(text: str) -> str:
    return to_webvtt(text.encode()).decode()


def test_an_srt_becomes_webvtt_with_its_text_kept():
    assert webvtt(SRT) == ("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nGrüße aus Köln, 東京 and <i>Zürich</i>\n\n"
                           "00:00:03.000 --> 00:00:04.000\n&lt;script&gt;alert(\"caption\")&lt;/script&gt;\n")


def test_markup_that_could_run_is_escaped_to_text():
    converted = webvtt("1\n00:00:01,000 --> 00:00:02,000\n<img src=x onerror=alert(1)> & <b onclick=x>hi</b>\n")
    assert "<img" not in converted and "<b onclick" not in converted
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b onclick=x&gt;hi</b>" in converted


def test_webvtt_cue_tags_are_kept():
    cue = "<v.loud Roger>Hi</v> <c.yellow>there</c> <lang fr>salut</lang> <00:00:01.500>now <ruby>字<rt>ji</rt></ruby>"
    assert cue in webvtt(f"WEBVTT\n\n00:01.000 --> 00:02.000\n{cue}\n")


def test_srt_font_tags_are_dropped_and_their_text_kept():
    assert "\nred words\n" in webvtt('1\n00:00:01,000 --> 00:00:02,000\n<font color="#ff0000">red</font> words\n')


def test_webvtt_escapes_stay_escapes_and_srt_ampersands_become_them():
    assert "\nTom &amp; Jerry &lt;3\n" in webvtt("WEBVTT\n\n00:01.000 --> 00:02.000\nTom &amp; Jerry &lt;3\n")
    assert "\nTom &amp; Jerry\n" in webvtt("1\n00:00:01,000 --> 00:00:02,000\nTom & Jerry\n")


def test_style_note_and_region_blocks_and_cue_settings_are_dropped():
    converted = webvtt("WEBVTT\n\nSTYLE\n::cue { background: url(https://example.com/x) }\n\nNOTE by hand\n\n"
                       "REGION\nid:r1\n\nintro\n00:01.000 --> 00:02.000 align:start line:0\nHello\n")
    assert converted == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n"


def test_cues_are_sorted_by_their_start():
    cues = parse(b"1\n00:00:05,000 --> 00:00:06,000\nlater\n\n2\n00:00:01,000 --> 00:00:02,000\nsooner\n")
    assert [cue.text for cue in cues] == ["sooner", "later"]


def test_overlapping_cues_are_kept_as_webvtt_allows():
    cues = parse(b"1\n00:00:01,000 --> 00:00:04,000\none\n\n2\n00:00:02,000 --> 00:00:03,000\ntwo\n")
    assert [(cue.start, cue.end) for cue in cues] == [(1000, 4000), (2000, 3000)]


def test_windows_line_ends_a_byte_order_mark_and_long_hours_are_read():
    cues = parse("\ufeff1\r\n100:00:01,000 --> 100:00:02,000\r\nfar in\r\n".encode())
    assert (cues[0].start, cues[0].text) == (360_001_000, "far in")


@pytest.mark.parametrize("data, where", [
    ("Grüße".encode("latin-1"), "line 1: the file is not UTF-8"),
    (b"just some words\nof a letter\n", "line 1: expected a cue timing"),
    (b"1\n00:00:02,000 --> 00:00:01,000\nbackwards\n", "line 2: the cue ends before it starts"),
    (b"1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n00:00:03 --> 00:00:04\ngarbage\n", "line 6: expected a cue"),
    (b"1\n00:00:01,000 --> 00:00:02,000\nfine\n\n\x00\x01\x02\n", "NUL characters"),
    (b"WEBVTT\n\nNOTE nothing else\n", "holds no cues"),
    (b"", "holds no cues"),
])
def test_a_file_that_is_not_captions_is_refused_saying_where(data, where):
    with pytest.raises(NotCaptions, match=where):
        to_webvtt(data)


@pytest.mark.parametrize("tag, canonical", [
    ("en", "en"), ("EN-us", "en-US"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419"),
    ("de-CH-1996", "de-CH-1996"), ("ja-JP-u-ca-japanese", "ja-JP-u-ca-japanese"), ("x-Klingon", "x-klingon"),
])
def test_language_tags_are_taken_in_their_canonical_case(tag, canonical):
    assert language_tag(tag) == canonical


@pytest.mark.parametrize("tag", ["en_US", "english", "e", "en-", "-en", "i-klingon", "en.vtt", "a" * 64, "日本"])
def test_what_is_not_a_bcp_47_tag_is_refused(tag):
    with pytest.raises(InvalidLanguage):
        language_tag(tag)


@pytest.mark.parametrize("label", ["", "   ", "two\nlines", "x" * 101])
def test_a_label_must_be_one_short_line(label):
    with pytest.raises(InvalidLabel):
        check_label(label)
