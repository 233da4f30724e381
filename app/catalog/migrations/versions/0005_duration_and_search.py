"""A video's duration (0 until known) and its index, longest first; and the search by words of titles and names:
an FTS5 table kept in step by triggers on SQLite, a GIN index of the words on PostgreSQL (``app/catalog/search.py``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE videos_fts USING fts5(name, title, content='videos', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER videos_fts_insert AFTER INSERT ON videos BEGIN "
    "INSERT INTO videos_fts(rowid, name, title) VALUES (new.rowid, new.name, new.title); END",
    "CREATE TRIGGER videos_fts_delete AFTER DELETE ON videos BEGIN "
    "INSERT INTO videos_fts(videos_fts, rowid, name, title) VALUES ('delete', old.rowid, old.name, old.title); END",
    "CREATE TRIGGER videos_fts_update AFTER UPDATE OF name, title ON videos BEGIN "
    "INSERT INTO videos_fts(videos_fts, rowid, name, title) VALUES ('delete', old.rowid, old.name, old.title); "
    "INSERT INTO videos_fts(rowid, name, title) VALUES (new.rowid, new.name, new.title); END",
    "INSERT INTO videos_fts(videos_fts) VALUES ('rebuild')",
)
_KNOWN_DURATION = {
    "sqlite": "UPDATE videos SET duration = coalesce(json_extract(media, '$.duration'), 0)",
    "postgresql": "UPDATE videos SET duration = coalesce((media->>'duration')::float, 0)",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("videos", sa.Column("duration", sa.Float(), nullable=False, server_default="0"))
    op.execute(_KNOWN_DURATION[dialect])
    op.create_index("ix_videos_longest", "videos", [sa.text("duration DESC"), "name"])
    if dialect == "postgresql":
        op.execute("CREATE INDEX ix_videos_search ON videos USING gin (to_tsvector('simple', name || ' ' || title))")
    else:
        for statement in _SQLITE_SEARCH:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_videos_search", "videos")
    else:
        for trigger in ("videos_fts_insert", "videos_fts_delete", "videos_fts_update"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE videos_fts")
    op.drop_index("ix_videos_longest", "videos")
    op.execute("ALTER TABLE videos DROP COLUMN duration")
