"""The web pages: the library with its upload area, and the watch page.

Pages are rendered on the server with Jinja2 so that watching works without
JavaScript; small plain JavaScript modules in ``static/`` add uploading
(through the resumable endpoint), deleting and live updates. The same card
template renders the grid and the fragments the page inserts after an upload.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.api.library import MAX_QUERY_CHARACTERS
from app.api.models import VideoInfo, video_info
from app.api.urls import base_url
from app.core.errors import NotFound
from app.services import Services, get_services

HERE = Path(__file__).parent
PAGE_SIZE = 48
templates = Jinja2Templates(directory=HERE / "templates")
static_files = StaticFiles(directory=HERE / "static")
HLS_JS = HERE.parent.parent / "node_modules" / "hls.js" / "dist"
"""hls.js as ``make run`` installs it from the npm registry; without it, pages play the progressive source."""
vendor_files = StaticFiles(directory=HLS_JS, check_dir=False)
router = APIRouter(include_in_schema=False)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def _size(size: int) -> str:
    """Decimal units, as file managers show them; gigabytes are the largest unit a video needs."""
    amount, unit = float(size), "bytes"
    for larger in ("KB", "MB", "GB"):
        if amount < 1000:
            break
        amount, unit = amount / 1000, larger
    return f"{amount:.0f} bytes" if unit == "bytes" else f"{amount:.1f} {unit}"


def _date(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M") if iso else "–"


templates.env.filters.update(duration=_duration, size=_size, date=_date)


@lru_cache(maxsize=8)
def _page_policy(public_base_url: str) -> dict[str, str]:
    """Scripts, styles and everything else from this origin only (the pages have nothing inline), and no framing.

    Videos and posters may also come from the public base URL, which their links name when it is set;
    images also from data: URLs (the empty favicon that spares a request for /favicon.ico); media also from
    blob: URLs (hls.js plays through Media Source Extensions, whose source is a blob: URL) and data: URLs
    (hls.js gives each subtitle track it makes an empty ``data:,WEBVTT`` source, and adds the cues itself).
    """
    also = f" {public_base_url.rstrip('/')}" if public_base_url else ""
    policy = "; ".join((
        "default-src 'self'", f"img-src 'self' data:{also}", f"media-src 'self' blob: data:{also}",
        f"connect-src 'self'{also}",
        "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ))
    return {"content-security-policy": policy, "x-frame-options": "DENY"}


def render(request: Request, template: str, status_code: int = 200, **context: object) -> HTMLResponse:
    settings = request.app.state.services.settings
    return templates.TemplateResponse(request, template, {"token_required": bool(settings.api_token), **context},
                                      status_code=status_code, headers=_page_policy(settings.public_base_url))


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code, title=title, message=message)


@router.get("/", response_class=HTMLResponse)
async def library_page(request: Request, page: int = Query(1, ge=1),
                       q: str = Query("", max_length=MAX_QUERY_CHARACTERS), services: Services = Depends(get_services)):
    """The library a page at a time, newest first; only what the search ``q`` finds when there is one."""
    query = q.strip() or None
    listing = await services.library.page(PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, query=query)
    videos = [video_info(record, request, services.settings) for record in listing.records]
    return render(request, "index.html", videos=videos, total=listing.total, page=page, query=query or "",
                  has_next=page * PAGE_SIZE < listing.total, max_upload_bytes=services.settings.max_upload_bytes)


async def _info(request: Request, services: Services, name: str) -> VideoInfo | None:
    try:
        return video_info(await services.library.describe(name), request, services.settings)
    except NotFound:
        return None


@router.get("/watch/{name}", response_class=HTMLResponse)
async def watch_page(name: str, request: Request, services: Services = Depends(get_services)):
    video = await _info(request, services, name)
    if video is None:
        return error_page(request, 404, "Video not found",
                          "There is no video with this name. It may have been deleted or renamed.")
    share_url = f"{base_url(request, services.settings)}/watch/{quote(name, safe='')}"
    return render(request, "watch.html", video=video, share_url=share_url)


@router.get("/fragments/card/{name}", response_class=HTMLResponse)
async def card_fragment(name: str, request: Request, services: Services = Depends(get_services)):
    """One library card, for the page to insert when an upload finishes."""
    video = await _info(request, services, name)
    if video is None:
        return HTMLResponse("", status_code=404)
    return render(request, "card.html", video=video)
