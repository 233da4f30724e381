"""What storyboard (seek previews) was made of a video (``app/library/storyboards.py``): NULL until it is; and
a ``storyboard`` job for every video described before there were any that has pictures (its media has a
width), in the background (priority 1, as a scan's work), so that a library upgraded in place gets them too.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_VIDEOS = sa.table("videos", sa.column("name", sa.String), sa.column("etag", sa.String),
                   sa.column("problem", sa.Text), sa.column("media", sa.JSON))


def upgrade() -> None:
    op.add_column("videos", sa.Column("storyboard", sa.JSON(), nullable=True))
    connection = op.get_bind()
    described = connection.execute(sa.select(_VIDEOS.c.name, _VIDEOS.c.etag, _VIDEOS.c.media)
                                   .where(_VIDEOS.c.etag.is_not(None), _VIDEOS.c.problem.is_(None))).all()
    # The media JSON is read here rather than in SQL: SQLite and PostgreSQL spell a JSON field apart.
    now = time.time()
    jobs = [{"video": name, "etag": etag, "now": now} for name, etag, media in described
            if media and media.get("width")]
    if jobs:
        connection.execute(sa.text(
            "INSERT INTO jobs (video, kind, etag, status, priority, attempts, run_after, progress, created, updated) "
            "VALUES (:video, 'storyboard', :etag, 'queued', 1, 0, :now, 0.0, :now, :now)"), jobs)


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE kind = 'storyboard'")
    op.drop_column("videos", "storyboard")
