"""What renditions were made of a video (``app/library/renditions.py``): NULL until they are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("videos", sa.Column("renditions", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("videos", "renditions")
