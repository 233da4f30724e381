"""Background work that lives exactly as long as a block: renewing a lease or a claim while its holder works."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any

log = logging.getLogger(__name__)


@asynccontextmanager
async def running_beside(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``work`` as a task while the block runs; cancel it, and wait until it has stopped, when the block
    ends however it ends (so that nothing it does comes after what follows the block). A failure of the work is
    logged, not raised: the block's own outcome is the one that counts."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            try:
                await task
            except Exception:
                log.exception("background work beside a block failed")
