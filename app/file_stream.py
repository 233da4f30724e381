"""HTTP semantics of serving stored bytes: validators, preconditions, ranges, body.

The order follows RFC 9110: the validators (ETag, Last-Modified) describe one
version of the bytes; the preconditions of section 13.2.2 are evaluated in the
RFC's order and may end the exchange with 412 or 304; then the Range header
(section 14) picks the bytes; and the body is streamed from the same opened
source the validators came from, so headers and bytes never describe two
different versions.

This module knows nothing about where bytes live: anything that satisfies
:class:`ByteSource` can be served, be it a local file or an object in a store.
"""

from __future__ import annotations

import asyncio
import calendar
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send


class ByteSource(Protocol):
    """One opened version of some stored bytes, with its validators."""

    size: int
    etag: str
    last_modified: float

    def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        """Yield the bytes ``[start, stop)`` of this version, in order."""
        ...

    async def read(self, start: int, stop: int) -> bytes:
        """The bytes ``[start, stop)`` of this version in one piece (for small bodies)."""
        ...

    def close(self) -> None:
        """Release what the source holds open; called once the response is done."""
        ...


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range, as HTTP writes them: ``first`` to ``last``."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.first}-{self.last}/{size}"


# --- validators -------------------------------------------------------------

@lru_cache(maxsize=4096)
def http_date(timestamp: float) -> str:
    """IMF-fixdate in GMT, the only form RFC 9110 lets a server send (cached: formatting is slow)."""
    return formatdate(timestamp, usegmt=True)


_HTTP_DATE_FORMATS = (
    "%a, %d %b %Y %H:%M:%S GMT",  # IMF-fixdate
    "%A, %d-%b-%y %H:%M:%S GMT",  # obsolete RFC 850 form
    "%a %b %d %H:%M:%S %Y",  # obsolete asctime form
)


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch for any of the three date forms a recipient must accept."""
    if value is None:
        return None
    text = " ".join(value.split()) if "," in value else value.strip()
    for form in _HTTP_DATE_FORMATS:
        try:
            return calendar.timegm(time.strptime(text, form))
        except ValueError:
            continue
    return None


_ENTITY_TAG = re.compile(r'(W/)?("[^"]*")|(\*)')


def _etag_matches(header: str, etag: str | None, *, weak: bool) -> bool:
    """Whether a list of entity-tags names ``etag`` (always strong here; None: nothing exists).

    The weak comparison ignores a ``W/`` prefix; the strong one never matches a
    weak tag (RFC 9110 section 8.8.3.2). ``*`` matches any current representation.
    """
    if etag is None:
        return False
    for is_weak, opaque, star in _ENTITY_TAG.findall(header):
        if star or (opaque == etag and (weak or not is_weak)):
            return True
    return False


# --- preconditions (RFC 9110 section 13.2.2, in that order) ----------------

def _fails_if_match(headers: Mapping[str, str], etag: str | None) -> bool:
    value = headers.get("if-match")
    return value is not None and not _etag_matches(value, etag, weak=False)


def _fails_if_unmodified_since(headers: Mapping[str, str], modified: int | None) -> bool:
    if "if-match" in headers or modified is None:
        return False
    since = parse_http_date(headers.get("if-unmodified-since"))
    return since is not None and modified > since


def _matches_if_none_match(headers: Mapping[str, str], etag: str | None) -> bool:
    value = headers.get("if-none-match")
    return value is not None and _etag_matches(value, etag, weak=True)


def _not_modified_since(headers: Mapping[str, str], modified: int | None, method: str) -> bool:
    if "if-none-match" in headers or method not in ("GET", "HEAD") or modified is None:
        return False
    since = parse_http_date(headers.get("if-modified-since"))
    return since is not None and modified <= since


def evaluate_preconditions(
    method: str, headers: Mapping[str, str], etag: str | None, last_modified: float | None
) -> int | None:
    """The status a failed or satisfied precondition imposes (412 or 304), else None.

    ``etag`` and ``last_modified`` are None when there is no current
    representation, as for a PUT that would create one.
    """
    modified = None if last_modified is None else int(last_modified)
    if _fails_if_match(headers, etag) or _fails_if_unmodified_since(headers, modified):
        return 412
    if _matches_if_none_match(headers, etag):
        return 304 if method in ("GET", "HEAD") else 412
    if _not_modified_since(headers, modified, method):
        return 304
    return None


def if_range_allows_range(headers: Mapping[str, str], etag: str, last_modified: float) -> bool:
    """Whether a Range may be honoured given If-Range (RFC 9110 section 13.1.5).

    An entity-tag must match strongly; a date must equal Last-Modified exactly.
    """
    value = headers.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    return parse_http_date(value) == int(last_modified)


# --- ranges (RFC 9110 section 14) ------------------------------------------

_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")


class Unsatisfiable(Exception):
    """No range of a valid Range header overlaps the representation."""


def parse_range_header(value: str, size: int, max_ranges: int) -> list[ByteRange] | None:
    """The ranges to send, or None when the header must be ignored (serve the whole).

    Unknown units, bad syntax and requests for more than ``max_ranges`` separate
    ranges are ignored, as the RFC allows. Overlapping and adjacent ranges are
    merged, so the bytes sent never exceed the representation's size.
    Raises :class:`Unsatisfiable` when the header is valid but selects nothing.
    """
    if value.startswith("bytes=") and "," not in value:  # one range, as players ask: no list to merge
        return _single_range(value[6:].strip(), size)
    unit, equals, range_set = value.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in range_set.split(",")]
    parsed = [_parse_range_spec(spec, size) for spec in specs if spec]
    if not parsed or any(item is _INVALID for item in parsed):
        return None
    wanted = [item for item in parsed if isinstance(item, ByteRange)]
    if not wanted:
        raise Unsatisfiable
    merged = _coalesce(wanted)
    return merged if len(merged) <= max_ranges else None


_INVALID = object()


def _single_range(spec: str, size: int) -> list[ByteRange] | None:
    """What the general path makes of a header holding one range-spec, without its lists."""
    parsed = _parse_range_spec(spec, size)
    if parsed is _INVALID:
        return None
    if parsed is None:
        raise Unsatisfiable
    return [parsed]


def _parse_range_spec(spec: str, size: int) -> ByteRange | object | None:
    """One range-spec: a ByteRange, None if unsatisfiable, or _INVALID."""
    match = _RANGE_SPEC.fullmatch(spec)
    if match is None or match.group(1) == match.group(2) == "":
        return _INVALID
    first_text, last_text = match.groups()
    try:
        if first_text == "":
            suffix = int(last_text)
            return ByteRange(max(0, size - suffix), size - 1) if suffix and size else None
        first = int(first_text)
        last = int(last_text) if last_text else None
    except ValueError:  # more digits than int() accepts: not a usable number
        return _INVALID
    if last is not None and last < first:
        return _INVALID
    if first >= size:
        return None
    return ByteRange(first, size - 1 if last is None else min(last, size - 1))


def _coalesce(ranges: Sequence[ByteRange]) -> list[ByteRange]:
    """Merge overlapping or adjacent ranges, keeping the request's order otherwise."""
    groups: list[list[int]] = []  # [order, first, last]
    for order, byte_range in sorted(enumerate(ranges), key=lambda item: item[1].first):
        if groups and byte_range.first <= groups[-1][2] + 1:
            group = groups[-1]
            group[0] = min(group[0], order)
            group[2] = max(group[2], byte_range.last)
        else:
            groups.append([order, byte_range.first, byte_range.last])
    groups.sort()
    return [ByteRange(first, last) for _, first, last in groups]


# --- the response -----------------------------------------------------------

Segment = bytes | ByteRange
# Bodies up to this size are read in one piece and sent as one message, without
# watching for a disconnect: a seeking player's 1 MiB range then costs one read
# and one send instead of a chunk loop (about 1.3x the requests per second), at
# the price of holding up to this much per response in flight.
ONE_MESSAGE_BYTES = 1024 * 1024


class RangeResponse(Response):
    """Streams segments of a :class:`ByteSource` as one ASGI response.

    Reads happen on the event loop in large chunks (no thread hop per chunk).
    A body over ``ONE_MESSAGE_BYTES`` stops as soon as the client disconnects,
    which ASGI servers only report through ``receive`` while their ``send``
    keeps accepting data; a smaller one is sent whole in one message.
    """

    def __init__(
        self,
        source: ByteSource,
        status_code: int,
        headers: list[tuple[bytes, bytes]],
        segments: Sequence[Segment] = (),
        length: int = 0,
    ) -> None:
        self.source = source
        self.status_code = status_code
        self.raw_headers = headers
        self.segments = segments
        self.length = length
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if self.length > ONE_MESSAGE_BYTES:
                await self._send_segments(receive, send)
            else:  # small bodies (probes, short ranges): one message, nothing to watch
                await send({"type": "http.response.body", "body": await self._collect()})
        finally:
            self.source.close()

    async def _collect(self) -> bytes:
        if not self.segments:  # 304, HEAD, an empty file
            return b""
        parts = [
            segment if isinstance(segment, bytes) else await self.source.read(segment.first, segment.last + 1)
            for segment in self.segments
        ]
        return b"".join(parts)  # a single part is returned as it is, not copied

    async def _send_segments(self, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            for segment in self.segments:
                if isinstance(segment, bytes):
                    await send({"type": "http.response.body", "body": segment, "more_body": True})
                    continue
                async with aclosing(self.source.chunks(segment.first, segment.last + 1)) as chunks:
                    async for chunk in chunks:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        # Yield once per chunk: lets the disconnect watcher run and
                        # keeps one fast client from starving the others.
                        await asyncio.sleep(0)
                        if disconnected.done():
                            return
            await send({"type": "http.response.body", "body": b""})
        finally:
            disconnected.cancel()


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _multipart_segments(
    ranges: Sequence[ByteRange], size: int, content_type: str
) -> tuple[str, list[Segment], int]:
    """The multipart/byteranges body (RFC 9110 section 14.6) and its exact length."""
    boundary = secrets.token_hex(16)
    segments: list[Segment] = []
    for byte_range in ranges:
        head = (
            f"--{boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Range: {byte_range.content_range(size)}\r\n\r\n"
        ).encode("latin-1")
        segments += [head, byte_range, b"\r\n"]
    segments.append(f"--{boundary}--\r\n".encode("latin-1"))
    length = sum(len(s) if isinstance(s, bytes) else s.length for s in segments)
    return f"multipart/byteranges; boundary={boundary}", segments, length


_CONSULTED_FIELDS = frozenset(
    {b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since", b"if-range", b"range"}
)


def consulted_headers(scope: Scope) -> dict[str, str]:
    """The request fields this module reads, in one pass over the raw headers.

    A field sent on several lines is joined with commas (RFC 9110 section 5.3),
    so every entity-tag of a split If-None-Match list counts.
    """
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        if raw_name in _CONSULTED_FIELDS:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _encode(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def json_error(status_code: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    """A short JSON refusal, ``{"detail": ...}``: the one shape every error of the service takes."""
    return JSONResponse({"detail": detail}, status_code=status_code, headers=dict(headers or {}))


def precondition_response(request: Request, source: ByteSource, cache_control: str) -> Response | None:
    """The 304 or 412 the request's preconditions impose on ``source`` (owning it then), else None."""
    cache_headers = {"etag": source.etag, "cache-control": cache_control}
    status = evaluate_preconditions(request.method, consulted_headers(request.scope), source.etag,
                                    source.last_modified)
    if status == 304:
        return RangeResponse(source, 304, _encode(cache_headers))
    if status == 412:
        source.close()
        return json_error(412, "precondition failed", cache_headers)
    return None


def range_requests_response(
    request: Request,
    source: ByteSource,
    *,
    content_type: str,
    content_disposition: str,
    cache_control: str,
    max_ranges: int,
) -> Response:
    """Answer a GET or HEAD for ``source`` as RFC 9110 says: 200, 206, 304, 412 or 416.

    The response owns ``source`` and closes it once sent; error responses close it
    at once.
    """
    refused = precondition_response(request, source, cache_control)
    if refused is not None:
        return refused
    headers = consulted_headers(request.scope)
    method = request.method
    cache_headers = {"etag": source.etag, "cache-control": cache_control}
    representation = {
        **cache_headers,
        "last-modified": http_date(source.last_modified),
        "accept-ranges": "bytes",
    }
    ranges = None
    range_header = headers.get("range")
    if range_header is not None and if_range_allows_range(
        headers, source.etag, source.last_modified
    ):
        try:
            ranges = parse_range_header(range_header, source.size, max_ranges)
        except Unsatisfiable:
            source.close()
            return json_error(416, "range not satisfiable", {**representation, "content-range": f"bytes */{source.size}"})

    full = {
        **representation,
        "content-type": content_type,
        "content-disposition": content_disposition,
        "x-content-type-options": "nosniff",
    }
    status, segments, length = _body(full, source.size, ranges, content_type)
    full["content-length"] = str(length)
    if method == "HEAD":  # the GET's status and headers, without its body (RFC 9110 section 9.3.2)
        return RangeResponse(source, status, _encode(full))
    return RangeResponse(source, status, _encode(full), segments, length)


def _body(headers: dict[str, str], size: int, ranges: list[ByteRange] | None,
          content_type: str) -> tuple[int, Sequence[Segment], int]:
    """The status, body segments and body length for the ranges chosen (None: the whole)."""
    if not ranges:
        return 200, [ByteRange(0, size - 1)] if size else [], size
    if len(ranges) == 1:
        headers["content-range"] = ranges[0].content_range(size)
        return 206, ranges, ranges[0].length
    headers["content-type"], segments, length = _multipart_segments(ranges, size, content_type)
    return 206, segments, length
