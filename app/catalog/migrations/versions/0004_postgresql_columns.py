"""On PostgreSQL, the columns SQLite already has: sizes in 64 bits, and names and titles compared by code point
(the jobs' video names too, which are compared with the videos' names).

PostgreSQL's INTEGER is 32 bits, too few for a video of 2 GiB or more. A
PostgreSQL database compares text by its locale unless a column says
otherwise, so titles (and names, which break ties) would list in another
order than on SQLite and than the README promises, and one that moves with
the server's locale. SQLite's INTEGER is already 64 bits and its text is
compared by code point, so this revision leaves a SQLite catalog as it is
(rebuilding its table for nothing would cost a large catalog's start-up).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("videos", "size", type_=sa.BigInteger(), existing_type=sa.Integer())
    op.alter_column("videos", "name", type_=sa.String(1024, collation="C"), existing_type=sa.String(1024))
    op.alter_column("videos", "title", type_=sa.Text(collation="C"), existing_type=sa.Text())
    op.alter_column("jobs", "video", type_=sa.String(1024, collation="C"), existing_type=sa.String(1024))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("jobs", "video", type_=sa.String(1024), existing_type=sa.String(1024, collation="C"))
    op.alter_column("videos", "title", type_=sa.Text(), existing_type=sa.Text(collation="C"))
    op.alter_column("videos", "name", type_=sa.String(1024), existing_type=sa.String(1024, collation="C"))
    op.alter_column("videos", "size", type_=sa.Integer(), existing_type=sa.BigInteger())
