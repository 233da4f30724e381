"""Absolute URLs the service hands out (``video_url``, ``Location``).

``VIDEO_PUBLIC_BASE_URL`` wins when set; otherwise the URL is the one the
client used, as seen through a reverse proxy's ``X-Forwarded-*`` headers when
``VIDEO_TRUST_PROXY_HEADERS`` says the proxy in front can be believed.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

from app.core.settings import Settings


def _first(value: str | None) -> str:
    """The client-most entry of a comma-separated forwarded header."""
    return (value or "").split(",")[0].strip()


def base_url(request: Request, settings: Settings) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    scheme, host, prefix = request.url.scheme, request.url.netloc, request.scope.get("root_path", "")
    if settings.trust_proxy_headers:
        headers = request.headers
        scheme = _first(headers.get("x-forwarded-proto")) or scheme
        host = _first(headers.get("x-forwarded-host")) or host
        prefix = _first(headers.get("x-forwarded-prefix")).rstrip("/") or prefix
    return f"{scheme}://{host}{prefix}"


def video_url(request: Request, settings: Settings, name: str) -> str:
    return f"{base_url(request, settings)}/get_video_by_name/{quote(name, safe='')}"
