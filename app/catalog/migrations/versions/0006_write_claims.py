"""The write claims: which writer holds a name while it checks a write's preconditions and acts (``claims.py``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "write_claims",
        sa.Column("name", sa.String(1024), primary_key=True),
        sa.Column("writer", sa.String(64), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("write_claims")
