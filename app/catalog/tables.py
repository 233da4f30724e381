"""The catalog's schema, as SQLAlchemy 2 declarative tables; Alembic migrations create it (``migrations/``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def by_code_point(text: String) -> String:
    """``text`` as PostgreSQL too compares it by code point (collation "C"), as SQLite does (migration 0004)."""
    return text.with_variant(type(text)(text.length, collation="C"), "postgresql")


class Base(DeclarativeBase):
    pass


class VideoRow(Base):
    """One stored video.

    ``size`` and ``modified`` are the store's view of the current version and
    order the library. ``etag`` is the version that ``media``, ``problem``
    and ``has_poster`` describe; None until that version has been described
    (a file copied in by hand, or changed by hand, as a scan found it).
    ``renditions`` says what was made of a version (``app.library.renditions``) and names that version:
    it is left as it is when a new version is recorded, and no longer describes the video once ``etag``
    names another; so is ``storyboard`` (``app.library.storyboards``).
    ``captions`` lists the video's caption tracks (``app.library.captions``), which stay across versions;
    None until they were first written or read from the store.
    ``updated`` (seconds since the epoch) lets a scan leave alone what a
    request wrote after the scan listed the store. Whether its media work is
    done is the state of its jobs (``JobRow``), not a column here.
    """

    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(by_code_point(String(1024)), unique=True)
    title: Mapped[str] = mapped_column(by_code_point(Text()))
    description: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(BigInteger)
    modified: Mapped[float]
    duration: Mapped[float] = mapped_column(default=0.0)
    etag: Mapped[str | None] = mapped_column(String(128))
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    problem: Mapped[str | None] = mapped_column(Text)
    has_poster: Mapped[bool] = mapped_column(default=False)
    renditions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    captions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    storyboard: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created: Mapped[float]
    updated: Mapped[float]


NEWEST_FIRST = Index("ix_videos_newest", VideoRow.modified.desc(), VideoRow.name)
"""The library's order (newest first, ties by name): a page, at any depth, is a walk of this index."""
BY_TITLE = Index("ix_videos_title", VideoRow.title, VideoRow.name)
"""Pages by title, A to Z (by code point, on either backend)."""
LARGEST_FIRST = Index("ix_videos_largest", VideoRow.size.desc(), VideoRow.name)
"""Pages by size, largest first."""
LONGEST_FIRST = Index("ix_videos_longest", VideoRow.duration.desc(), VideoRow.name)
"""Pages by duration, longest first (a video whose duration is not known yet counts as 0 s).

The search's own structures are not declared here: they are one backend's each (an FTS5 table and its
triggers on SQLite, an expression index on PostgreSQL), made by migration 0005 (see ``search.py``)."""


class JobRow(Base):
    """One piece of media work on a video: the queue of the durable jobs (``app.jobs``).

    One row per video and kind, reused when the work is asked for again (a new version), so the table
    holds what is being done and what was last done, never a history. ``etag`` names the version the
    work is for (None: whatever version is stored when it runs). ``status`` is ``queued`` (waiting for
    ``run_after``), ``running`` (``worker`` holds it until ``lease_until`` unless it renews the lease),
    ``done`` or ``failed`` (for good, ``error`` says why; a retried job keeps its last error until it
    succeeds). ``priority``: lower first, so that an upload's work overtakes a scan's backlog.
    """

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("video", "kind", name="uq_jobs_video_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    video: Mapped[str] = mapped_column(by_code_point(String(1024)))  # compared with videos.name
    kind: Mapped[str] = mapped_column(String(32))
    etag: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int]
    attempts: Mapped[int]
    run_after: Mapped[float]
    lease_until: Mapped[float | None]
    worker: Mapped[str | None] = mapped_column(String(64))
    progress: Mapped[float]
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[float]
    updated: Mapped[float]


CLAIM_ORDER = Index("ix_jobs_claim", JobRow.status, JobRow.priority, JobRow.run_after)
"""What a worker looks for first: queued work that is due, most urgent first."""


class WriteClaimRow(Base):
    """A write to one name in progress (``claims.py``): who holds it, and until when unless renewed.

    Every write that replaces or deletes a video through the service holds its name's claim while it
    checks ``If-Match`` / ``If-None-Match`` against the store and acts, so that the check and the act are
    one step across all instances that share this database. ``name`` need not be a catalogued video: a
    create holds the claim of a name nothing has yet. ``until`` is seconds since the epoch.
    """

    __tablename__ = "write_claims"

    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    writer: Mapped[str] = mapped_column(String(64))
    until: Mapped[float]
