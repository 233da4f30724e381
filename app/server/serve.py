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
import logging
import resource

import uvicorn

from app.core.settings import Settings
from app.server.protocol import ConnectionLimits, limited_protocol

log = logging.getLogger(__name__)
# Besides its socket, a connection may hold an open video; the rest is for the store, logs and workers.
DESCRIPTORS_PER_CONNECTION = 2
SPARE_DESCRIPTORS = 256


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
    ensure_descriptors(settings.max_connections)
    uvicorn.Server(uvicorn_config(settings, args.host, args.port)).run()
    return 0
