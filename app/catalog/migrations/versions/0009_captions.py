"""The caption tracks of a video (``app/library/captions.py``): NULL until written, or read from the store by
the video's next description (a catalog rebuilt over a store that has tracks learns them then).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("videos", sa.Column("captions", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("videos", "captions")
