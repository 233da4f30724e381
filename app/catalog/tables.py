"""The catalog's schema, as SQLAlchemy 2 declarative tables; Alembic migrations create it (``migrations/``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass


class VideoRow(Base):
    """One stored video.

    ``size`` and ``modified`` are the store's view of the current version and
    order the library. ``etag`` is the version that ``media``, ``problem``
    and ``has_poster`` describe; None until that version has been described
    (a file copied in by hand, or changed by hand, as a scan found it).
    ``status`` is ``ready`` until media work becomes jobs (then also
    ``processing`` and ``failed``). ``updated`` (seconds since the epoch)
    lets a scan leave alone what a request wrote after the scan listed the store.
    """

    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(1024), unique=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int]
    modified: Mapped[float]
    etag: Mapped[str | None] = mapped_column(String(128))
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    problem: Mapped[str | None] = mapped_column(Text)
    has_poster: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    created: Mapped[float]
    updated: Mapped[float]


NEWEST_FIRST = Index("ix_videos_newest", VideoRow.modified.desc(), VideoRow.name)
"""The library's order (newest first, ties by name): a page, at any depth, is a walk of this index."""
BY_TITLE = Index("ix_videos_title", VideoRow.title, VideoRow.name)
"""Pages by title, A to Z (as the database compares text: by code point)."""
LARGEST_FIRST = Index("ix_videos_largest", VideoRow.size.desc(), VideoRow.name)
"""Pages by size, largest first."""
