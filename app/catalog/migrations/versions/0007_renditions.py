"""What renditions were made of a video (``app/library/renditions.py``): NULL until they are; and a
``renditions`` job for every video described before there were any, in the background (priority 1, as a
scan's work), so that a library upgraded in place gets its renditions too.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("videos", sa.Column("renditions", sa.JSON(), nullable=True))
    op.execute(sa.text(
        "INSERT INTO jobs (video, kind, etag, status, priority, attempts, run_after, progress, created, updated) "
        "SELECT name, 'renditions', etag, 'queued', 1, 0, :now, 0.0, :now, :now FROM videos "
        "WHERE etag IS NOT NULL AND problem IS NULL").bindparams(now=time.time()))


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE kind = 'renditions'")
    op.drop_column("videos", "renditions")
