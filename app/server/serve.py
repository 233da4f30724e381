"""``python -m app serve``: the service as ``make run`` starts it, hardened.

``uvicorn app.main:app`` serves the same application, but with uvicorn's own
defaults: heads of any size, no time limit for them, every connection
accepted, and proxy headers trusted from 127.0.0.1 whatever
``VIDEO_TRUST_PROXY_HEADERS`` says. This command gives uvicorn the limits of
``app.server.protocol`` and the rest of its configuration from the same
``VIDEO_*`` settings the application reads.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import platform
import resource

import uvicorn

from app.catalog.database import migrate_apart
from app.core.settings import Settings
from app.server.protocol import ConnectionLimits, limited_protocol

log = logging.getLogger(__name__)
# Besides its socket, a connection may hold an open video; the rest is for the store, logs and workers.
DESCRIPTORS_PER_CONNECTION = 2
SPARE_DESCRIPTORS = 256


# mallopt's parameters, from glibc's malloc.h.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
MMAP_THRESHOLD_BYTES = 2 * 1024 * 1024
"""Blocks this large or larger are mapped on their own and unmapped when freed: an S3 part (8 MiB) is one,
a chunk of a stream (128 KiB) or a range read in one piece (at most 1 MiB) is not."""


def bound_malloc() -> bool:
    """Make glibc's malloc give large buffers back and keep few arenas; call before obstore starts its threads.

    By default glibc raises its mmap threshold to the size of the largest block freed (up to 32 MiB), so
    after the first S3 part every 8 MiB part buffer comes from a heap and stays with the process once
    freed; and it gives each thread that allocates an arena of its own (up to 8 per core), where freed
    memory mostly stays too. Over S3 those buffers are allocated on obstore's tokio threads, so the
    process kept growing upload after upload (README, "Memory"). A fixed threshold maps them and
    unmaps them when they are freed (and leaves glibc's 128 KiB of free heap top kept, which it would
    otherwise raise too), and two arenas keep the freed memory of many threads in few heaps. Whether
    this applied: False on other C libraries (musl, macOS), which have no mallopt.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    applied = [mallopt(parameter, value) == 1 for parameter, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_ARENA_MAX, MALLOC_ARENAS))]
    return all(applied)


def limits_of(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(max_head_bytes=settings.max_head_bytes, max_header_count=settings.max_header_count,
                            head_timeout_seconds=settings.head_timeout_seconds,
                            max_connections=settings.max_connections)


def uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    """uvicorn's configuration for ``settings``: the application is imported by uvicorn, built from them."""
    return uvicorn.Config(
        "app.main:app", host=host, port=port, http=limited_protocol(limits_of(settings)), ws="none",
        # The application reads X-Forwarded-* itself when told to trust them (app.api.urls); uvicorn
        # rewrites the client address and scheme only then, whoever the proxy is.
        proxy_headers=settings.trust_proxy_headers, forwarded_allow_ips="*",
        timeout_keep_alive=settings.keep_alive_seconds, access_log=settings.access_log)


def ensure_descriptors(max_connections: int) -> None:
    """Raise the soft limit on open files so that ``max_connections`` can be served, as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections * DESCRIPTORS_PER_CONNECTION + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        if raised < wanted:
            log.warning("open files are limited to %d: fewer than VIDEO_MAX_CONNECTIONS=%d need",
                        raised, max_connections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app serve",
        description="Serve the video service with uvicorn, within the head, time and connection limits of the "
                    "VIDEO_* settings (what make run starts).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    bound_malloc()
    ensure_descriptors(settings.max_connections)
    # Before the app starts, so that its own check finds the catalog up to date and never loads Alembic.
    migrate_apart(settings.catalog_url)
    uvicorn.Server(uvicorn_config(settings, args.host, args.port)).run()
    return 0
