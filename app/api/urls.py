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


def request_host(request: Request, settings: Settings) -> str:
    """The host (and port) the client addressed: the one URLs built from the request carry."""
    host = request.url.netloc
    if settings.trust_proxy_headers:
        host = _first(request.headers.get("x-forwarded-host")) or host
    return host


def base_url(request: Request, settings: Settings) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    scheme, prefix = request.url.scheme, request.scope.get("root_path", "")
    if settings.trust_proxy_headers:
        headers = request.headers
        scheme = _first(headers.get("x-forwarded-proto")) or scheme
        prefix = _first(headers.get("x-forwarded-prefix")).rstrip("/") or prefix
    return f"{scheme}://{request_host(request, settings)}{prefix}"


def _hostname(host: str) -> str:
    """``Host`` without its port, lower case (``[::1]:8000`` -> ``[::1]``)."""
    name = host.rsplit("]", 1)[0] + "]" if host.startswith("[") else host.split(":", 1)[0]
    return name.lower()


class AllowedHosts:
    """``VIDEO_ALLOWED_HOSTS``: the host names this server answers for; ``*.example.com`` takes subdomains.

    Without ``VIDEO_PUBLIC_BASE_URL`` the client's ``Host`` flows into every
    URL the service hands out (``video_url``, ``Location``, pages), so a
    request naming a host nobody deployed is refused before it is served.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        names = {name.lower() for name in settings.allowed_hosts}
        self._exact = {name for name in names if not name.startswith("*.")}
        self._suffixes = tuple(name[1:] for name in names if name.startswith("*."))

    def allow(self, request: Request) -> bool:
        name = _hostname(request_host(request, self._settings))
        return name in self._exact or (bool(self._suffixes) and name.endswith(self._suffixes))


def video_url(request: Request, settings: Settings, name: str) -> str:
    return f"{base_url(request, settings)}/get_video_by_name/{quote(name, safe='')}"
