"""A video's caption tracks: stored beside it, listed in the catalog, offered to HLS players with its renditions.

Each track is one language (a BCP 47 tag, ``app/core/captions.py``) with a
label, one of them perhaps the default. Its WebVTT file lives in the folder of
files made from the video, under a version drawn from its bytes
(``captions/<tag>/<version>.vtt``), so that a track replaced while a player
reads it is never half one file and half the other. What tracks there are is
a JSON sidecar of the store (the truth, from which a new catalog learns them)
mirrored in the catalog's ``videos.captions`` (what requests read). A write
puts the file, then the sidecar, then the catalog, and only then removes the
file it replaced, so a failure at any step leaves the tracks as they were or
as they were asked to be, never a list naming a file that is not there.

Tracks belong to the name, like its title: replacing the video's bytes keeps
them, deleting the video removes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from app.catalog.catalog import Catalog
from app.core.captions import language_tag, to_webvtt
from app.core.errors import NoSuchCaptions, NotFound, TooManyCaptions
from app.storage.base import Store, StoredFile

SIDECAR = "captions"
FOLDER = "captions/"
SUBTITLES_GROUP = "subtitles"


@dataclass(frozen=True)
class Track:
    """One caption track: its language, label, whether players show it unasked, and the version of its file."""

    language: str
    label: str
    default: bool
    version: str
    updated: float

    @property
    def path(self) -> str:
        return f"{FOLDER}{self.language}/{self.version}.vtt"


def tracks_of(raw: list[dict[str, Any]] | None) -> tuple[Track, ...]:
    """The tracks a catalog row or sidecar records (None: none recorded)."""
    return tuple(Track(**track) for track in raw or ())


def _recorded(tracks: tuple[Track, ...]) -> list[dict[str, Any]]:
    return [asdict(track) for track in tracks]


class Captions:
    """Adds, replaces, removes and opens the caption tracks of the videos of one store."""

    def __init__(self, store: Store, catalog: Catalog, max_bytes: int, max_tracks: int) -> None:
        self._store = store
        self._catalog = catalog
        self.max_bytes = max_bytes
        self._max_tracks = max_tracks

    async def tracks(self, name: str) -> tuple[Track, ...]:
        """The tracks of the catalogued video ``name`` (NotFound if there is none)."""
        row = await self._catalog.get(name)
        if row is None:
            raise NotFound(name)
        return tracks_of(row.captions)

    async def put(self, name: str, language: str, label: str | None, default: bool,
                  data: bytes) -> tuple[Track, bool]:
        """Add or replace the track of ``language`` with the SRT or WebVTT ``data``; the track, and whether it is new.

        Everything is checked before anything is written (NotCaptions, InvalidLanguage, TooManyCaptions).
        Run under the video's write claim: the list is read, changed and written back.
        """
        language = language_tag(language)
        current = await self.tracks(name)
        vtt = await asyncio.to_thread(to_webvtt, data)
        is_new = all(track.language != language for track in current)
        if is_new and len(current) >= self._max_tracks:
            raise TooManyCaptions(self._max_tracks)
        track = Track(language, label or language, default, hashlib.sha256(vtt).hexdigest()[:16], time.time())
        kept = [replace(other, default=False) if default else other for other in current]
        tracks = [track if other.language == language else other for other in kept] + ([track] if is_new else [])
        await self._put_file(name, track.path, vtt)
        await self._record(name, tuple(tracks))
        await self._remove_files(name, language, keep=track.path)
        return track, is_new

    async def delete(self, name: str, language: str) -> None:
        """Remove the track of ``language`` (NotFound if the video has none)."""
        language = language_tag(language)
        current = await self.tracks(name)
        self.find(current, language)
        await self._record(name, tuple(track for track in current if track.language != language))
        await self._remove_files(name, language)

    async def open(self, name: str, language: str) -> StoredFile:
        """The WebVTT file of the track of ``language``, opened (NotFound if there is none)."""
        track = self.find(await self.tracks(name), language_tag(language))
        return await self._store.open_derived(name, track.path)

    @staticmethod
    def find(tracks: tuple[Track, ...], language: str) -> Track:
        for track in tracks:
            if track.language == language:
                return track
        raise NoSuchCaptions(language)

    async def restore(self, name: str) -> None:
        """Give the catalog the tracks the store's sidecar lists, if it has none recorded (a new catalog)."""
        data = await self._store.read_sidecar(name, SIDECAR)
        if data is not None:
            await self._catalog.set_captions(name, json.loads(data), only_if_unset=True)

    async def _put_file(self, name: str, path: str, vtt: bytes) -> None:
        async with self._store.staged_folder() as folder:
            staged = folder / "track.vtt"
            await asyncio.to_thread(staged.write_bytes, vtt)
            await self._store.put_derived(name, path, staged)

    async def _remove_files(self, name: str, language: str, keep: str | None = None) -> None:
        """The files of ``language`` but ``keep``: the one replaced, and any a failed write left."""
        stale = [path for path in await self._store.derived_paths(name)
                 if path.startswith(f"{FOLDER}{language}/") and path != keep]
        if stale:
            await self._store.delete_derived(name, stale)

    async def _record(self, name: str, tracks: tuple[Track, ...]) -> None:
        recorded = _recorded(tracks)
        await self._store.write_sidecar(name, SIDECAR, json.dumps(recorded).encode())
        await self._catalog.set_captions(name, recorded)


def with_subtitles(master: str, tracks: tuple[Track, ...]) -> str:
    """The master playlist ``master`` offering ``tracks`` as a SUBTITLES group (RFC 8216, 4.3.4.1 and 4.3.4.2),
    each through its own playlist (:func:`subtitle_playlist`) at ``subtitles/<language>.m3u8`` beside it."""
    if not tracks:
        return master
    names: set[str] = set()
    media = []
    for track in tracks:
        name = _unique(_quotable(track.label), track.language, names)
        media.append(f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLES_GROUP}",NAME="{name}",'
                     f'LANGUAGE="{track.language}",DEFAULT={"YES" if track.default else "NO"},AUTOSELECT=YES,'
                     f'URI="subtitles/{track.language}.m3u8"')
    lines = []
    for line in master.splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            if media:
                lines += media
                media = []
            line += f',SUBTITLES="{SUBTITLES_GROUP}"'
        lines.append(line)
    return "\n".join(lines) + "\n"


def subtitle_playlist(language: str, duration: float) -> str:
    """The media playlist of one track for a video of ``duration`` seconds: its whole WebVTT file, one segment."""
    return "\n".join(["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration))}",
                      "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", f"#EXTINF:{duration:.3f},",
                      f"../../captions/{language}.vtt", "#EXT-X-ENDLIST"]) + "\n"


def _quotable(label: str) -> str:
    """A label as an HLS quoted-string may carry it: no double quote, no line break."""
    return label.replace('"', "'")


def _unique(label: str, language: str, taken: set[str]) -> str:
    """NAME must differ within a group: a label used already gets its language added."""
    name = label if label not in taken else f"{label} ({language})"
    taken.add(name)
    return name
