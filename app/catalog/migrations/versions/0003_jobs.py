"""The jobs table (the durable queue of media work), and the videos' unused status column dropped:
a video's state is now that of its jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("video", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("etag", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("worker", sa.String(64), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.UniqueConstraint("video", "kind", name="uq_jobs_video_kind"),
    )
    op.create_index("ix_jobs_claim", "jobs", ["status", "priority", "run_after"])
    # Said as SQL: SQLite (3.35 and later) and PostgreSQL both drop a column in place, where Alembic's
    # batch mode would copy the table and rebuild its indexes without their DESC.
    op.execute("ALTER TABLE videos DROP COLUMN status")


def downgrade() -> None:
    op.add_column("videos", sa.Column("status", sa.String(16), nullable=False, server_default="ready"))
    op.drop_index("ix_jobs_claim", "jobs")
    op.drop_table("jobs")
