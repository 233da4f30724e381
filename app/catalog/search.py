"""Searching the library by words of titles and file names: FTS5 on SQLite, full-text search on PostgreSQL.

Both answer the same question: the videos whose title or name holds every
word of the query, each as a word or the start of one, letters compared
without regard to case (``holi beach`` finds "Holiday at the beach.mp4").
A query's words are its runs of letters and digits; everything else in it
separates them and is never passed to the database's query language, so no
query can be an FTS5 or tsquery syntax error. A query without any word finds
nothing.

On SQLite the words of each row live in ``videos_fts``, an FTS5 table over
the videos table's name and title that triggers keep in step (migration
0005); on PostgreSQL a GIN index holds ``to_tsvector('simple', name || ' ' ||
title)``, the very expression the search compares, so the index serves it.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, bindparam, false, func, literal_column, select, table
from sqlalchemy.sql import column

from app.catalog.tables import VideoRow

_WORD = re.compile(r"[^\W_]+")

_FTS = table("videos_fts", column("rowid"))


def _words_pg() -> ColumnElement[str]:
    """Exactly the expression of the GIN index ``ix_videos_search`` (migration 0005), so the planner uses it.

    Made when a search runs, not when this module is loaded: ``to_tsvector`` is typed only once SQLAlchemy's
    PostgreSQL dialect is loaded (it is, by then, by the engine), and that dialect is not loaded for SQLite.
    """
    return func.to_tsvector(literal_column("'simple'"),
                            VideoRow.name.op("||")(literal_column("' '")).op("||")(VideoRow.title))


def matching(query: str, dialect: str) -> ColumnElement[bool]:
    """The condition a video must meet to be found by ``query`` on the database ``dialect``."""
    words = _WORD.findall(query)
    if not words:
        return false()
    if dialect == "postgresql":
        terms = " & ".join(f"{word}:*" for word in words)
        return _words_pg().op("@@")(func.to_tsquery(literal_column("'simple'"), bindparam("search", terms)))
    terms = " ".join(f'"{word}"*' for word in words)
    found = select(_FTS.c.rowid).where(literal_column("videos_fts").op("MATCH")(bindparam("search", terms)))
    return literal_column("videos.rowid").in_(found)
