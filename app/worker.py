"""``python -m app worker``: run media jobs apart from any server, until SIGTERM or Ctrl-C.

It reads the same ``VIDEO_*`` settings as the server, so it works on the
catalog's database and the store the servers use; run as many as the work
needs, on any machine that reaches both (with ``VIDEO_DATABASE_URL`` naming
a shared PostgreSQL), and ``VIDEO_EMBEDDED_WORKERS=0`` on the servers keeps
them free of media work. Each runs ``VIDEO_MEDIA_WORKERS`` jobs at a time.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from app.core.settings import Settings
from app.services import Services


async def _work(services: Services) -> None:
    try:
        await services.library.ready()
        running = asyncio.create_task(services.worker(services.settings.media_workers).run())
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop, running.cancel)
        try:
            await running
        except asyncio.CancelledError:
            pass
    finally:
        await services.close()


def main() -> int:
    """Run a worker on the settings' catalog and store until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    print(f"worker: running jobs from {settings.catalog_url}", file=sys.stderr, flush=True)
    asyncio.run(_work(Services.build(settings)))
    return 0
