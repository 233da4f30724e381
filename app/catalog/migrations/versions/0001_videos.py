"""The videos table and the index the library is listed by.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "videos",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(1024), nullable=False, unique=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("modified", sa.Float(), nullable=False),
        sa.Column("etag", sa.String(128), nullable=True),
        sa.Column("media", sa.JSON(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("has_poster", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
    )
    op.create_index("ix_videos_newest", "videos", [sa.text("modified DESC"), "name"])


def downgrade() -> None:
    op.drop_index("ix_videos_newest", "videos")
    op.drop_table("videos")
