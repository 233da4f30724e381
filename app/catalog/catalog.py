"""What the catalog answers and how it follows the store: pages by keyset, versions as described, scans.

Every write is one statement that checks what it relies on in the database
itself (an upsert by name, a scan's changes only to rows no request wrote
since the scan listed the store), so no transaction reads and then writes:
on SQLite such a transaction can fail when another writer commits between.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.catalog.database import NEWEST_REVISION, answered, migrate, schema_revision, upsert_insert, write
from app.catalog.search import matching
from app.catalog.tables import VideoRow
from app.core.errors import InvalidCursor
from app.storage.base import Entry

_BATCH = 500  # rows per statement of a scan: well under SQLite's limit of bound parameters


@dataclass(frozen=True)
class Version:
    """One described version of a stored video, as the library hands it to the catalog."""

    name: str
    size: int
    modified: float
    etag: str | None  # None: not described yet
    media: dict[str, Any] | None
    problem: str | None
    has_poster: bool


@dataclass(frozen=True)
class Identity:
    """What people know a video by: its stable id, and the title and description they gave it.

    Written once when the catalog learns of a video and then only by an edit: a new version of
    the bytes (an upload, a scan that finds the file changed) describes the video again but keeps these.
    """

    id: str
    title: str
    description: str


@dataclass(frozen=True)
class CatalogPage:
    """Rows of one page, and the cursor of the next page (None on the last)."""

    videos: list[VideoRow]
    next_cursor: str | None


def title_for(name: str) -> str:
    """A video's title until someone gives it one: its file name without the extension."""
    return name.rpartition(".")[0] or name


@dataclass(frozen=True)
class Sort:
    """One order of the library: a column and its direction, ties broken by name (A to Z)."""

    column: Any
    descending: bool

    def key(self, row: VideoRow) -> Any:
        return getattr(row, self.column.key)


SORTS = {
    "newest": Sort(VideoRow.modified, descending=True),
    "title": Sort(VideoRow.title, descending=False),
    "size": Sort(VideoRow.size, descending=True),
    "duration": Sort(VideoRow.duration, descending=True),
}
"""The orders ``GET /video?sort=`` offers: newest first (the default), by title A to Z, largest first,
longest first.

Each has an index of its own (``tables.py``), so a page walks it in any order, at any depth.
"""
DEFAULT_SORT = "newest"


def encode_cursor(sort: str, row: VideoRow) -> str:
    """An opaque cursor that resumes the order ``sort`` right after ``row``."""
    payload = [sort, SORTS[sort].key(row), row.name]
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> tuple[Any, str]:
    """The (key, name) a cursor of ``sort`` resumes after; InvalidCursor for anything this server did not
    hand out for that order (a cursor of another order included)."""
    try:
        given, key, name = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidCursor() from None
    if given != sort or not isinstance(name, str) or not _is_key_of(SORTS[sort], key):
        raise InvalidCursor()
    return key, name


def _is_key_of(sort: Sort, key: Any) -> bool:
    if isinstance(key, bool):
        return False
    python_type = sort.column.type.python_type
    if python_type is float:
        return isinstance(key, (int, float))
    return isinstance(key, python_type)


def page_statement(limit: int, cursor: str | None = None, offset: int = 0, sort: str = DEFAULT_SORT,
                   found: ColumnElement[bool] | None = None) -> Select[tuple[VideoRow]]:
    """The one query of a page in order ``sort``, ties by name, one row more than asked to know if more follow;
    of the videos a search ``found`` (``search.matching``), or of all.

    A cursor page starts with a range search on the order's index (``modified <= m`` newest first),
    so it costs what the page holds at any depth; an offset page (kept for older clients) walks the
    index past ``offset`` rows.
    """
    order = SORTS[sort]
    column = order.column
    query = select(VideoRow).order_by(column.desc() if order.descending else column, VideoRow.name).limit(limit + 1)
    if found is not None:
        query = query.where(found)
    if cursor is None:
        return query.offset(offset)
    key, name = decode_cursor(sort, cursor)
    if order.descending:
        return query.where(column <= key, or_(column < key, VideoRow.name > name))
    return query.where(column >= key, or_(column > key, VideoRow.name > name))


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _BATCH):
        yield items[start:start + _BATCH]


class Catalog:
    """The videos table behind an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._insert = upsert_insert(engine)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision, off the event loop (Alembic blocks); a database already
        at it (as ``python -m app serve`` leaves it, having migrated apart) costs one query, not Alembic."""
        if await schema_revision(self.engine) != NEWEST_REVISION:
            await asyncio.to_thread(migrate, self.engine.url.render_as_string(hide_password=False))

    async def page(self, limit: int, cursor: str | None = None, offset: int = 0, sort: str = DEFAULT_SORT,
                   query: str | None = None) -> CatalogPage:
        """A page in order ``sort``; of the videos the search ``query`` finds, when there is one."""
        statement = page_statement(limit, cursor, offset, sort, self._found(query))
        async with self._session() as session:
            rows = list((await session.scalars(statement)).all())
        more = len(rows) > limit
        return CatalogPage(rows[:limit], encode_cursor(sort, rows[limit - 1]) if more else None)

    async def count(self, query: str | None = None) -> int:
        """How many videos the catalog holds, or the search ``query`` finds."""
        statement = select(func.count()).select_from(VideoRow)
        found = self._found(query)
        async with self._session() as session:
            return await session.scalar(statement if found is None else statement.where(found)) or 0

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        """A session whose failures are said in the service's words (``database.answered``)."""
        with answered():
            async with self._sessions() as session:
                yield session

    def _found(self, query: str | None) -> ColumnElement[bool] | None:
        return None if query is None else matching(query, self.engine.dialect.name)

    async def check(self) -> None:
        """Return once the database has answered a query; raise if it cannot be reached."""
        with answered():
            async with self.engine.connect() as connection:
                await connection.execute(select(1))

    async def get(self, name: str) -> VideoRow | None:
        async with self._session() as session:
            return await session.scalar(select(VideoRow).where(VideoRow.name == name))

    async def identity(self, name: str) -> Identity | None:
        """The identity of the video catalogued under ``name``, None if none is."""
        known = await self.get(name)
        return None if known is None else identity_of(known)

    async def record(self, version: Version) -> Identity:
        """Make ``version`` what the catalog holds for its name, adding the video if it is new; its identity.

        The upsert sets only the described columns, so an existing video keeps its id, title and description.
        """
        known = await self.get(version.name)
        if known is not None and _describes(known, version):
            return identity_of(known)
        now = time.time()
        described = _described_columns(version, now)
        statement = self._insert(VideoRow).values({**_new_row(version.name, now), **described})
        returned = await self._execute(statement.on_conflict_do_update(
            index_elements=[VideoRow.name], set_=described).returning(*_IDENTITY))
        return Identity(*returned)  # an upsert always returns its row

    async def redescribe(self, version: Version) -> None:
        """Make ``version`` what the catalog holds for a video it holds; one removed meanwhile stays removed.

        What background work records: a video deleted while its job ran must not come back.
        """
        await self._execute(update(VideoRow).where(VideoRow.name == version.name)
                            .values(_described_columns(version, time.time())))

    async def set_renditions(self, name: str, etag: str, renditions: dict[str, Any]) -> None:
        """Record what was made of version ``etag`` of ``name``, unless the catalog holds another version by now."""
        await self._set_made(name, etag, renditions=renditions)

    async def set_storyboard(self, name: str, etag: str, storyboard: dict[str, Any]) -> None:
        """Record the storyboard made of version ``etag`` of ``name``, unless the catalog holds another by now."""
        await self._set_made(name, etag, storyboard=storyboard)

    async def _set_made(self, name: str, etag: str, **made: dict[str, Any]) -> None:
        await self._execute(update(VideoRow).where(VideoRow.name == name, VideoRow.etag == etag).values(**made))

    async def set_captions(self, name: str, captions: list[dict[str, Any]], only_if_unset: bool = False) -> None:
        """Record the caption tracks of ``name`` (``app.library.captions``); ``only_if_unset``: unless some are
        recorded already (restoring them from the store must not undo a write that came first)."""
        where = [VideoRow.name == name] + ([VideoRow.captions.is_(None)] if only_if_unset else [])
        await self._execute(update(VideoRow).where(*where).values(captions=captions))

    async def edit(self, name: str, changes: Mapping[str, str]) -> Identity | None:
        """Set the title and/or description (``changes``) of the video under ``name``; None if none is catalogued.

        One UPDATE that answers the row it changed. ``updated`` is set like any request's write,
        so a scan that listed the store before the edit leaves the row alone.
        """
        statement = (update(VideoRow).where(VideoRow.name == name)
                     .values(**changes, updated=time.time()).returning(*_IDENTITY))
        returned = await self._execute(statement)
        return None if returned is None else Identity(*returned)

    async def remove(self, name: str) -> None:
        await self._execute(delete(VideoRow).where(VideoRow.name == name))

    async def clear(self) -> None:
        await self._execute(delete(VideoRow))

    async def mirror(self, entries: Iterable[Entry], listed_at: float) -> list[str]:
        """Follow a listing of the store taken at ``listed_at``: add new files, drop gone ones, note changed ones;
        the names of the new and changed, which need describing.

        Rows a request wrote after ``listed_at`` are left alone: the listing may predate that upload or delete.
        A changed file keeps its row (and id) but loses its description until it is described again.
        """
        async with self._session() as session:
            known = {row.name: _listed_as(row.size, row.modified) for row in (await session.execute(
                select(VideoRow.name, VideoRow.size, VideoRow.modified))).all()}
        listed = {entry.name: entry for entry in entries}
        now = time.time()
        added = [entry for name, entry in listed.items() if name not in known]
        changed = [entry for name, entry in listed.items()
                   if name in known and known[name] != _listed_as(entry.size, entry.modified)]
        await self._drop([name for name in known if name not in listed], listed_at)
        await self._add(added, now)
        await self._forget_descriptions(changed, listed_at, now)
        return [entry.name for entry in added + changed]

    async def _drop(self, names: list[str], listed_at: float) -> None:
        for batch in _batches(names):
            await self._execute(delete(VideoRow).where(VideoRow.name.in_(batch), VideoRow.updated < listed_at))

    async def _add(self, entries: list[Entry], now: float) -> None:
        for batch in _batches(entries):
            rows = [{**_new_row(entry.name, now), "size": entry.size, "modified": entry.modified, "duration": 0.0,
                     "etag": None, "media": None, "problem": None, "has_poster": False, "updated": now}
                    for entry in batch]
            await self._execute(self._insert(VideoRow).values(rows).on_conflict_do_nothing(
                index_elements=[VideoRow.name]))

    async def _forget_descriptions(self, entries: list[Entry], listed_at: float, now: float) -> None:
        table = VideoRow.__table__
        statement = (update(table)
                     .where(and_(table.c.name == bindparam("key"), table.c.updated < listed_at))
                     .values(size=bindparam("new_size"), modified=bindparam("new_modified"), duration=0.0, etag=None,
                             media=None, problem=None, has_poster=False, updated=now))
        for batch in _batches(entries):
            with answered():
                async with self.engine.begin() as connection:
                    await connection.execute(statement, [{"key": entry.name, "new_size": entry.size,
                                                          "new_modified": entry.modified} for entry in batch])

    async def _execute(self, statement: Any) -> Row[Any] | None:
        return await write(self.engine, statement)

    async def close(self) -> None:
        await self.engine.dispose()


def _listed_as(size: int, modified: float) -> tuple[int, int]:
    """What tells a scan that a file changed: its size and the whole second it was modified in.

    Not finer: an S3 listing says milliseconds where opening the object (a HEAD) says whole seconds,
    and a version the catalog learnt by opening it must not look changed to every scan. A change
    within the same second and size is still caught when the video is next described.
    """
    return size, int(modified)


_IDENTITY = (VideoRow.id, VideoRow.title, VideoRow.description)
"""The columns of an Identity, as a write returns them."""


def identity_of(row: VideoRow) -> Identity:
    return Identity(row.id, row.title, row.description)


def _describes(row: VideoRow, version: Version) -> bool:
    return (row.etag, row.size, row.modified, row.media, row.problem, row.has_poster) == (
        version.etag, version.size, version.modified, version.media, version.problem, version.has_poster)


def _described_columns(version: Version, now: float) -> dict[str, Any]:
    """The columns a description of a version sets (and ``updated``, as any request's write)."""
    duration = (version.media or {}).get("duration") or 0.0
    return {"size": version.size, "modified": version.modified, "duration": duration, "etag": version.etag,
            "media": version.media, "problem": version.problem, "has_poster": version.has_poster, "updated": now}


def _new_row(name: str, now: float) -> dict[str, Any]:
    """The columns a video gets once, when the catalog first learns of it."""
    return {"id": secrets.token_urlsafe(8), "name": name, "title": title_for(name), "description": "",
            "created": now}
