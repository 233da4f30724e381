"""Caption tracks: which language tags name them, and how an SRT or WebVTT file becomes the WebVTT we serve.

A caption file is untrusted text that ends up inside pages and players. It is
read strictly (UTF-8, every block a cue with well-formed timings, or a WebVTT
note, style or region block, which are dropped) and written anew, never passed
through: cues sorted by start as WebVTT requires, timings in one form, and cue
text reduced to text plus WebVTT's own inert cue tags (``<b>``, ``<i>``,
``<u>``, ``<c>``, ``<v>``, ``<lang>``, ``<ruby>``, ``<rt>``, timestamps).
Anything else that looks like markup (``<script>``, ``<img onerror=...>``)
is escaped, so a player shows it as the characters it is; SRT's ``<font>`` is
dropped and its text kept. Cue settings and STYLE blocks are dropped too: a
style sheet may fetch URLs.

Language tags are checked against the grammar of BCP 47 (RFC 5646 section 2.1)
and put in its canonical case (section 2.1.1), so ``en-us`` and ``en-US`` name
one track. Primary language subtags of four to eight letters, which the grammar
reserves but the registry has none of, are refused (``english`` is no tag), and
so are the grandfathered tags (``i-klingon``), deprecated all. Whether each subtag is registered is not checked: that needs the
IANA registry (the ``langcodes`` package, which also takes ``en_US``, and
5 MiB in the server), for tags no player would reject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.errors import InvalidLabel, InvalidLanguage, NotCaptions

MAX_TAG_CHARACTERS = 63
MAX_LABEL_CHARACTERS = 100
"""A label is what a player's menu shows for a track: a few words."""
LABEL_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
"""Something to show, on one line: no control characters."""
_LABEL = re.compile(LABEL_PATTERN)

_ALPHA, _ALNUM = "[A-Za-z]", "[A-Za-z0-9]"
LANGUAGE_PATTERN = (
    f"(?:{_ALPHA}{{2,3}}(?:-{_ALPHA}{{3}}){{0,3}}"  # language, with extended language subtags
    f"(?:-{_ALPHA}{{4}})?"  # script
    f"(?:-(?:{_ALPHA}{{2}}|[0-9]{{3}}))?"  # region
    f"(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*"  # variants
    f"(?:-[0-9A-WYZa-wyz](?:-{_ALNUM}{{2,8}})+)*"  # extensions
    f"(?:-[Xx](?:-{_ALNUM}{{1,8}})+)?"  # private use
    f"|[Xx](?:-{_ALNUM}{{1,8}})+)"  # private use alone
)
"""RFC 5646's ``langtag`` and ``privateuse``, in syntax Python and ECMAScript read alike (for the API's schema)."""
_LANGTAG = re.compile(LANGUAGE_PATTERN)


def language_tag(tag: str) -> str:
    """``tag`` in BCP 47's canonical case if it is a well-formed tag, else InvalidLanguage."""
    if len(tag) > MAX_TAG_CHARACTERS or not tag.isascii() or not _LANGTAG.fullmatch(tag):
        raise InvalidLanguage(f"{tag[:MAX_TAG_CHARACTERS]!r} is not a BCP 47 language tag such as en or pt-BR")
    return _canonical_case(tag)


def check_label(label: str) -> str:
    """``label`` unchanged if it may label a track, else InvalidLabel."""
    if len(label) > MAX_LABEL_CHARACTERS or not _LABEL.match(label):
        raise InvalidLabel(f"a label is 1 to {MAX_LABEL_CHARACTERS} characters on one line, not all spaces")
    return label


def _canonical_case(tag: str) -> str:
    """Lower case, but a region (two letters) in upper and a script (four) in title case, until a singleton."""
    first, *rest = tag.lower().split("-")
    subtags = [first]
    for subtag in rest:
        if len(subtags[-1]) == 1:  # after a singleton (an extension, private use), case carries no meaning
            subtags.extend([subtag, *rest[len(subtags):]])
            break
        subtags.append(subtag.upper() if len(subtag) == 2 else subtag.title() if len(subtag) == 4
                       and subtag.isalpha() else subtag)
    return "-".join(subtags)


@dataclass(frozen=True)
class Cue:
    """One cue: from ``start`` to ``end`` (milliseconds), its text already in WebVTT's safe form."""

    start: int
    end: int
    text: str


_TIME = r"(?:(\d{1,5}):)?([0-5]\d):([0-5]\d)[.,](\d{3})"
_TIMING = re.compile(rf"{_TIME}[ \t]+-->[ \t]+{_TIME}(?:[ \t].*)?")
_VTT_SIGNATURE = re.compile(r"WEBVTT(?:[ \t].*)?")
_SKIPPED_VTT_BLOCKS = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t].*)?")
_CLASSES = r"(?:\.[\w-]+)*"
_CUE_TAG = re.compile(rf"</?(?:b|i|u|ruby|rt){_CLASSES}>|</(?:c|v|lang)>|<c{_CLASSES}>"
                      rf"|<v{_CLASSES}[ \t][^<>&\n]+>|<lang{_CLASSES}[ \t][A-Za-z0-9-]+>|<\d{{2,}}:\d{{2}}:\d{{2}}\.\d{{3}}>")
_FONT_TAG = re.compile(r"</?font(?:[ \t][^<>]*)?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:amp|lt|gt|nbsp|lrm|rlm);")
_MARKUP = re.compile(r"<[^<>\n]*>|&[a-z]*;|[<>&]")


def to_webvtt(data: bytes) -> bytes:
    """The WebVTT track of the SRT or WebVTT file ``data``; NotCaptions, saying where, if it is neither."""
    return render(parse(data))


def parse(data: bytes) -> list[Cue]:
    """The cues of an SRT or WebVTT file, sorted by start."""
    lines = _text_lines(data)
    is_vtt = bool(lines) and _VTT_SIGNATURE.fullmatch(lines[0]) is not None
    cues = []
    for number, block in _blocks(lines):
        if is_vtt and (number == 1 or _SKIPPED_VTT_BLOCKS.fullmatch(block[0])):
            continue  # the header, and blocks that are not cues
        cues.append(_cue(number, block, is_vtt))
    if not cues:
        raise NotCaptions("the file holds no cues: it is not an SRT or WebVTT file")
    return sorted(cues, key=lambda cue: cue.start)


def render(cues: list[Cue]) -> bytes:
    body = "".join(f"\n{_timestamp(cue.start)} --> {_timestamp(cue.end)}\n{cue.text}\n" for cue in cues)
    return f"WEBVTT\n{body}".encode()


def _text_lines(data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise NotCaptions(f"line {line}: the file is not UTF-8 text") from None
    if "\0" in text:
        raise NotCaptions("the file holds NUL characters: it is not text")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """The runs of non-blank lines, each with the number of its first line."""
    blocks: list[tuple[int, list[str]]] = []
    after_blank = True
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            after_blank = True
            continue
        if after_blank:
            blocks.append((number, [line]))
        else:
            blocks[-1][1].append(line)
        after_blank = False
    return blocks


def _cue(number: int, block: list[str], is_vtt: bool) -> Cue:
    """A cue block: an identifier (an SRT counter, or a WebVTT cue id), its timing line, its text."""
    timing_at = 0 if "-->" in block[0] else 1
    timing = _TIMING.fullmatch(block[timing_at].strip()) if len(block) > timing_at else None
    if timing is None:
        malformed = len(block) > timing_at and "-->" in block[timing_at]  # else there is no timing at all
        raise NotCaptions(f"line {number + timing_at if malformed else number}: expected a cue timing such as 00:00:01.000 --> 00:00:02.500")
    start, end = _milliseconds(timing.groups()[:4]), _milliseconds(timing.groups()[4:])
    if end <= start:
        raise NotCaptions(f"line {number + timing_at}: the cue ends before it starts")
    text = "\n".join(_cue_text(line, is_vtt) for line in block[timing_at + 1:])
    return Cue(start, end, text)


def _milliseconds(parts: tuple[str | None, ...]) -> int:
    hours, minutes, seconds, millis = (int(part or 0) for part in parts)
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


def _timestamp(milliseconds: int) -> str:
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _cue_text(line: str, is_vtt: bool) -> str:
    """One line of cue text with WebVTT's cue tags and escapes kept, SRT's ``<font>`` dropped, the rest escaped."""
    return _MARKUP.sub(lambda found: _markup(found.group(), is_vtt), line)


def _markup(piece: str, is_vtt: bool) -> str:
    if _CUE_TAG.fullmatch(piece) or (is_vtt and _ENTITY.fullmatch(piece)):
        return piece
    if _FONT_TAG.fullmatch(piece):
        return ""
    return piece.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
