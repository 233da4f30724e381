"""A real PostgreSQL server for the tests: Debian's binaries, a throwaway cluster, an empty database per test.

The cluster lives in a temporary folder and answers on a free loopback port,
trusting every local connection, with fsync off (nothing in it outlives the
session). Its databases compare text by a language's rules (ICU's English), as
a server set up with a locale does, not by code point as SQLite does: so the
tests see whether the catalog's orders depend on the server's locale.
PostgreSQL refuses to run as root, so when the tests do (as CI does) the
folder is handed to ``nobody`` and the server's programs run as that user; the
tests themselves connect over TCP, as the service does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

from tests.servers import free_port

BINARIES = Path("/usr/lib/postgresql")
"""Where Debian installs each major version's programs (``<major>/bin/initdb``, ``pg_ctl``)."""
UNPRIVILEGED = "nobody"
"""Who runs the server when the tests run as root."""
_SETTINGS = ("listen_addresses = '127.0.0.1'", "fsync = off", "synchronous_commit = off",
             "full_page_writes = off")


def installed_binaries() -> Path | None:
    """The ``bin`` folder of the newest PostgreSQL installed, None if there is none."""
    found = sorted(BINARIES.glob("*/bin/pg_ctl"), key=lambda path: int(path.parent.parent.name))
    return found[-1].parent if found else None


class PostgresServer:
    """One cluster made by ``initdb`` and run by ``pg_ctl``, until ``stop()``."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = free_port()
        # Not under pytest's folder: as root that is private to root, and the server runs as another user.
        self.root = Path(tempfile.mkdtemp(prefix="catalog-postgres-"))
        self.data = self.root / "data"
        self._user = pwd.getpwnam(UNPRIVILEGED) if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._names = count()
        self._server("initdb", "--pgdata", str(self.data), "--auth", "trust", "--username", "postgres",
                     "--encoding", "UTF8", "--locale", "C", "--locale-provider", "icu", "--icu-locale", "en",
                     "--no-sync", "--no-instructions")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join((*_SETTINGS, f"port = {self.port}", f"unix_socket_directories = '{self.root}'", "")))
        self._server("pg_ctl", "--pgdata", str(self.data), "--log", str(self.root / "server.log"), "--wait", "start")

    def _server(self, program: str, *args: str) -> None:
        """Run one of the server's programs, as the unprivileged user when the tests run as root."""
        user = {} if self._user is None else {"user": self._user.pw_uid, "group": self._user.pw_gid,
                                              "extra_groups": []}
        _run([str(self.binaries / program), *args], cwd=self.root, **user)

    def create_database(self) -> str:
        """A new, empty database; the URL the catalog opens it by."""
        name = f"catalog_{next(self._names)}"
        _run([str(self.binaries / "createdb"), "--host", "127.0.0.1", "--port", str(self.port),
              "--username", "postgres", name])
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The server stalled for the block: its postmaster stopped (SIGSTOP), so a new connection is accepted by
        the kernel but never answered."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(postmaster, signal.SIGCONT)

    @contextmanager
    def down(self) -> Iterator[None]:
        """The server stopped at once for the block (connections refused), and started again at its end."""
        self._server("pg_ctl", "--pgdata", str(self.data), "--mode", "immediate", "--wait", "stop")
        try:
            yield
        finally:
            self._server("pg_ctl", "--pgdata", str(self.data), "--log", str(self.root / "server.log"), "--wait",
                         "start")

    def stop(self) -> None:
        """Stop the server at once (nothing in it is kept) and remove its folder."""
        try:
            self._server("pg_ctl", "--pgdata", str(self.data), "--mode", "immediate", "--wait", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _run(command: list[str], **popen: object) -> None:
    """Run a PostgreSQL program to its end; what it said, if it failed."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, **popen)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stdout}{done.stderr}")
