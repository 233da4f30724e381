"""``python -m app migrate`` and ``python -m app reindex``: the catalog's upkeep from the command line.

Both read the same ``VIDEO_*`` settings as the server, so they act on the
catalog and the store it would use.
"""

from __future__ import annotations

import asyncio
import sys

from app.core.settings import Settings
from app.services import Services


async def _run(command: str, services: Services) -> None:
    library = services.library
    try:
        await (library.reindex() if command == "reindex" else library.ready())
    finally:
        await services.close()


def main(command: str) -> int:
    """Migrate the catalog (and bring it in step with the store), or rebuild it from the store alone."""
    settings = Settings.from_env()
    asyncio.run(_run(command, Services.build(settings)))
    print(f"{command}: the catalog at {settings.catalog_url} is up to date with the store", file=sys.stderr)
    return 0
