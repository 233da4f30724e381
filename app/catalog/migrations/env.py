"""Alembic's environment: migrations run over the catalog's async engine (``app.catalog.database``).

The URL comes from the caller (``config.attributes["url"]``), never from an
ini file, so the service's one setting ``VIDEO_DATABASE_URL`` decides.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.catalog.database import make_engine, one_migration_at_a_time
from app.catalog.tables import Base

URL = context.config.attributes["url"]


def _run(connection: Connection) -> None:
    # Batch mode: SQLite alters a table by copying it, which later revisions will need.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = make_engine(URL)
    try:
        # The current revision is read inside the lock: a process that waited finds the schema made.
        async with one_migration_at_a_time(engine), engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=URL, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
