"""The catalog's database: the async engine for ``VIDEO_DATABASE_URL``, and bringing its schema up to date.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) serves
several instances over one store. Connections are not pooled: a pooled
connection belongs to the event loop that opened it, while an app may be
driven from several (in-process tests). On SQLite opening one is a file open;
on PostgreSQL it is a new server session (a pooler such as PgBouncer in front
of the server keeps that cheap).
The journal stays SQLite's default (a rollback journal, made only by a write):
in WAL mode every unpooled connection would make the WAL and its index anew,
and a reader would fail where the disk is full. A busy timeout lets writers,
and two processes sharing one file (two instances over one store), take turns.
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Row, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.errors import StorageFull, Unavailable

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
NEWEST_REVISION = "0009"
"""The newest revision in ``migrations/versions`` (a test keeps it so): a database at it needs no migration,
which is told without loading Alembic."""
_SQLITE_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PROTOCOL")
"""The SQLite failures that mean "not now" (another writer, the file or its disk away), not a fault of ours."""
_BUSY_TIMEOUT_SECONDS = 10
"""How long a SQLite connection without a timeout of its own waits for another's write to end."""
# Migrations of one process run one at a time: two first requests of an app started without
# its lifespan must not both create the schema.
_migrating = threading.Lock()
_MIGRATION_LOCK_KEY = 0x636174616C6F67
"""The PostgreSQL advisory lock that migrations of every process hold: "catalog" in ASCII, a fixed key."""


def make_engine(url: str, timeout: float | None = None) -> AsyncEngine:
    """The async engine of the catalog at ``url``; each connection and statement bounded by ``timeout`` seconds
    when given (not for migrations, which may build an index over a large table). Run its statements inside
    ``answered`` to have its failures said in the service's words."""
    postgresql = make_url(url).get_backend_name() == "postgresql"
    limits = {"timeout": timeout, "command_timeout": timeout} if postgresql and timeout is not None else {}
    engine = create_async_engine(url, poolclass=NullPool, connect_args=limits)
    if engine.dialect.name == "sqlite":
        busy_ms = int(1000 * (timeout or _BUSY_TIMEOUT_SECONDS))
        event.listen(engine.sync_engine, "connect", lambda connection, _record: _sqlite_pragmas(connection, busy_ms))
    return engine


def upsert_insert(engine: AsyncEngine) -> Callable[..., Any]:
    """The ``insert`` of the engine's dialect, the one with ``on_conflict_do_...`` (SQLite and PostgreSQL
    alike). Imported for that dialect alone: SQLAlchemy's PostgreSQL dialect is about 1.2 MiB that a
    process over SQLite would otherwise hold for nothing."""
    return importlib.import_module(f"sqlalchemy.dialects.{engine.dialect.name}").insert


def _sqlite_pragmas(connection: Any, busy_ms: int) -> None:
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()


@contextmanager
def answered() -> Iterator[None]:
    """Say what a failed statement of the block means to users: no room (``StorageFull``), or a database that
    cannot be reached, lost its connection, stayed locked or did not answer in time (``Unavailable``).

    Translated once SQLAlchemy has cleaned up after the failure, not from inside it: raising from its
    ``handle_error`` hook left an app whose disk had filled up unable to shut down.
    """
    try:
        yield
    except OperationalError as exc:
        if "disk is full" in str(exc.orig):
            raise StorageFull() from exc
        if getattr(exc.orig, "sqlite_errorname", _SQLITE_UNAVAILABLE[0]) not in _SQLITE_UNAVAILABLE:
            raise  # a fault of ours (no such table, bad SQL): a 500 that says so, not "try again"
        raise _unavailable(exc) from exc
    except DBAPIError as exc:
        if not (exc.connection_invalidated or isinstance(exc, InterfaceError)):
            raise
        raise _unavailable(exc) from exc
    except (OSError, TimeoutError) as exc:  # refused, cut, or not answered while connecting
        raise _unavailable(exc) from exc


def _unavailable(failure: BaseException) -> Unavailable:
    log.warning("the catalog's database failed: %s", str(failure).partition("\n")[0] or type(failure).__name__)
    return Unavailable("the database cannot be reached: try again shortly")


async def write(engine: AsyncEngine, statement: Any) -> Row[Any] | None:
    """Run one write in its own transaction, and give the first row it returns (if it returns any)."""
    with answered():
        async with engine.begin() as connection:
            result = await connection.execute(statement)
            return result.first() if result.returns_rows else None


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (the newest unless told), creating a SQLite file's folder
    first.

    Blocking (Alembic runs its own event loop): call it in a thread. Safe to call from several
    processes at once: the migrations take turns (``one_migration_at_a_time``, held by ``migrations/env.py``).
    Alembic (and Mako, which it imports) is loaded here, not with this module: about 10 MiB that would
    otherwise stay with every process that reads the catalog, most of which never migrate.
    """
    from alembic import command
    from alembic.config import Config

    file = _sqlite_file(url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    with _migrating:
        command.upgrade(config, revision)


_MIGRATE_FROM_STDIN = "import sys; from app.catalog.database import migrate; migrate(sys.stdin.read())"


def migrate_apart(url: str) -> None:
    """``migrate`` in a child process (the URL on its standard input, not its command line, which anyone
    may read): a long-lived process that migrates this way never holds Alembic, nor what a migration left
    in its heaps. Raises ``CalledProcessError`` if the migration failed; the child's errors go to stderr."""
    subprocess.run([sys.executable, "-c", _MIGRATE_FROM_STDIN], input=url, text=True, check=True)


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The revision the database's schema is at, None before any migration; read without Alembic."""
    file = _sqlite_file(engine.url)
    if file is not None and not file.exists():
        return None  # not made by connecting either: its folder may not exist yet
    with answered():
        async with engine.connect() as connection:
            if not await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
                return None
            return await connection.scalar(text("SELECT version_num FROM alembic_version"))


def _sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite database at ``url``; None for another backend or an in-memory database."""
    database = make_url(url)
    if database.get_backend_name() != "sqlite" or database.database in (None, "", ":memory:"):
        return None
    return Path(database.database)


@asynccontextmanager
async def one_migration_at_a_time(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold, on PostgreSQL, the lock that makes migrations of several processes take turns.

    Instances started together over one empty database would otherwise all create the schema,
    and all but one fail. The lock is PostgreSQL's advisory lock on a fixed key, held by a
    connection of its own (autocommit, so the migration's transactions are its own business);
    a process that dies while holding it releases it with its connection. A SQLite file needs
    no lock of this kind: its writers take turns by the file's own lock.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as connection:
        locked = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await locked.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            await locked.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
