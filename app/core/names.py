"""What a stored video may be called, and how a client's filename becomes such a name.

A stored name is a single path component that cannot climb out of the store,
cannot hide (names starting with a dot are reserved for the store's own
bookkeeping), carries no control or invisible formatting characters, and fits
in a file name on any common filesystem with room for a ``-N`` suffix.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache

from app.core.errors import InvalidName

MAX_NAME_BYTES = 240


def _is_unprintable(char: str) -> bool:
    """Control, format (bidi overrides, zero-width), surrogate and unassigned characters."""
    return unicodedata.category(char).startswith("C")


def check_stored_name(name: str) -> str:
    """Return ``name`` unchanged if it may name a stored video, else raise InvalidName."""
    if not name or name in {".", ".."}:
        raise InvalidName("the name is empty")
    if any(sep in name for sep in "/\\"):
        raise InvalidName("the name must not contain a path separator")
    if name.startswith("."):
        raise InvalidName("the name must not start with a dot")
    # isprintable() is false for every C category (and for separators): a quick pass for most names.
    if not name.isprintable() and any(_is_unprintable(char) for char in name):
        raise InvalidName("the name must not contain control characters")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"the name is longer than {MAX_NAME_BYTES} bytes")
    return name


def is_stored_name(name: str) -> bool:
    """Whether ``name`` may name a stored video: files named otherwise (hidden, or
    copied in by hand with characters a name may not carry) are not videos of the store."""
    try:
        check_stored_name(name)
    except InvalidName:
        return False
    return True


DERIVED_PATH = re.compile(r"hls/master\.m3u8|hls/[0-9a-f]{16}/(audio|v[0-9]{1,5})/(index\.m3u8|init\.mp4|[0-9]{1,6}\.m4s)"
                          r"|web/[0-9a-f]{16}\.mp4|captions/[A-Za-z0-9-]{1,63}/[0-9a-f]{16}\.vtt"
                          r"|storyboard/[0-9a-f]{16}/([0-9]{1,3}\.jpg|storyboard\.vtt)")
"""The files made from a video (``app/media/renditions.py``, ``app/media/storyboard.py``) or kept with it (its
caption tracks), by their paths below the video's folder of them:
nothing else is ever read or written there, so no path from a request can leave it."""


def check_derived_path(path: str) -> str:
    """Return ``path`` unchanged if it may name a file made from a video, else raise InvalidName."""
    if not DERIVED_PATH.fullmatch(path):
        raise InvalidName("no such file is made from a video")
    return path


def name_from_filename(filename: str) -> str:
    """Derive a stored name from whatever filename a client sent.

    Keeps the last path component only (either slash), drops unprintable
    characters, leading dots and surrounding spaces, keeps every letter of
    every script, and shortens the stem (never the extension) to fit.
    """
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", filename))[-1]
    base = "".join(char for char in base if not _is_unprintable(char))
    base = base.strip().lstrip(".").strip()
    return check_stored_name(_shorten(base, MAX_NAME_BYTES))


def numbered(name: str, number: int) -> str:
    """``clip.mp4`` -> ``clip-2.mp4``: the next candidate when ``name`` is taken."""
    stem, dot, extension = name.rpartition(".")
    if not stem:
        stem, dot, extension = name, "", ""
    suffix = f"-{number}"
    return _shorten(stem, MAX_NAME_BYTES - len(suffix) - len(dot + extension)) + suffix + dot + extension


def _shorten(text: str, limit: int) -> str:
    """Cut the stem of ``text`` so its UTF-8 form fits ``limit`` bytes, keeping a short extension."""
    if len(text.encode()) <= limit:
        return text
    stem, dot, extension = text.rpartition(".")
    if not dot or len(extension) > 16:
        stem, dot, extension = text, "", ""
    room = limit - len((dot + extension).encode())
    return stem.encode()[:room].decode("utf-8", "ignore").rstrip() + dot + extension


@cache
def stored_name_pattern() -> str:
    """The rules of :func:`check_stored_name` but the length, as a regular expression (for the API's schema).

    Built from the same test of each character, so the two cannot drift; the
    characters outside the Basic Multilingual Plane stand in it as themselves,
    which both Python's and ECMAScript's (unicode) expressions read alike.
    """
    allowed = [(first, last) for first, last in _printable_ranges() for first, last in _without(first, last, "/\\")]
    leading = [(first, last) for first, last in allowed for first, last in _without(first, last, ".")]
    return f"^[{_class(leading)}][{_class(allowed)}]*(?![\\s\\S])"


def _printable_ranges() -> list[tuple[int, int]]:
    """Every run of code points that a stored name may hold, as (first, last)."""
    runs: list[tuple[int, int]] = []
    start = None
    for point in range(sys.maxunicode + 2):
        printable = point <= sys.maxunicode and not _is_unprintable(chr(point))
        if printable and start is None:
            start = point
        elif not printable and start is not None:
            runs.append((start, point - 1))
            start = None
    return runs


def _without(first: int, last: int, chars: str) -> list[tuple[int, int]]:
    """The run ``first..last`` with ``chars`` taken out."""
    pieces, start = [], first
    for point in sorted(ord(char) for char in chars if first <= ord(char) <= last):
        if start < point:
            pieces.append((start, point - 1))
        start = point + 1
    return pieces + [(start, last)] if start <= last else pieces


def _class(runs: list[tuple[int, int]]) -> str:
    return "".join(_escape(first) if first == last else f"{_escape(first)}-{_escape(last)}" for first, last in runs)


def _escape(point: int) -> str:
    return f"\\u{point:04x}" if point <= 0xFFFF else chr(point)
