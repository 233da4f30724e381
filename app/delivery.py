"""How stored bytes reach the client: streamed by this process through file_stream."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.file_stream import ByteSource, range_requests_response
from app.media_types import content_type_for
from app.settings import Settings


def serve(request: Request, source: ByteSource, filename: str, settings: Settings) -> Response:
    """A GET/HEAD answer for an opened source, typed by ``filename``'s extension."""
    try:
        return range_requests_response(
            request,
            source,
            content_type=content_type_for(filename),
            filename=filename,
            cache_control=settings.cache_control,
            max_ranges=settings.max_ranges,
        )
    except BaseException:
        source.close()
        raise
