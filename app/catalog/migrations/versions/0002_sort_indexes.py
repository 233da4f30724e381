"""The indexes of the library's other orders: by title, and largest first.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_videos_title", "videos", ["title", "name"])
    op.create_index("ix_videos_largest", "videos", [sa.text("size DESC"), "name"])


def downgrade() -> None:
    op.drop_index("ix_videos_largest", "videos")
    op.drop_index("ix_videos_title", "videos")
