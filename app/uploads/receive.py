"""Receiving upload bodies (``multipart/form-data`` forms, raw bodies) as a stream, into staging.

The body is fed chunk by chunk to python-multipart's push parser, and the bytes
of the ``file`` field are written to the staged file as they arrive: the
upload is never held in memory and never written twice. The size limit is
enforced on the bytes seen so far, so an oversized upload is cut off as soon
as it crosses the limit; so is one that meets a full disk or the free-space
reserve (StorageFull, from the staged file).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.core.errors import InvalidName, MalformedUpload, UnsupportedUpload, UploadTooLarge
from app.core.names import name_from_filename
from app.storage.base import StagedFile

FILE_FIELD = "file"
# Room for part headers, boundaries and small extra form fields around the file.
FORM_OVERHEAD_BYTES = 1024 * 1024


class _FileFieldWriter:
    """python-multipart callbacks that route the ``file`` part into the staged file.

    Other fields are read past and dropped; a second ``file`` part is ignored.
    """

    def __init__(self, staged: StagedFile, max_bytes: int) -> None:
        self._staged = staged
        self._max_bytes = max_bytes
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._writing = False
        self.filename: str | None = None
        self.file_complete = False
        self.body_complete = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": lambda data, start, end: self._header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self._disposition = b""

    def _on_header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        # Browsers and curl send the filename's UTF-8 bytes as they are.
        params = disposition_params(self._disposition.decode("utf-8", "replace"))
        if params.get("name") != FILE_FIELD or self.filename is not None:
            return
        filename = params.get("filename")
        if filename is None:
            raise MalformedUpload(f"the form field '{FILE_FIELD}' must be a file, not a text value")
        try:
            self.filename = name_from_filename(filename)
        except InvalidName as exc:
            raise MalformedUpload(f"unusable filename {filename!r}: {exc}") from None
        self._writing = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._writing:
            return
        if self._staged.size + (end - start) > self._max_bytes:
            raise UploadTooLarge(self._max_bytes)
        self._staged.write(memoryview(data)[start:end])

    def _on_part_end(self) -> None:
        if self._writing:
            self._writing = False
            self.file_complete = True

    def _on_end(self) -> None:
        self.body_complete = True


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAMETER = re.compile(rf";\s*({_TOKEN})\s*=\s*")
_AFTER_CLOSING_QUOTE = re.compile(rf"\s*(?:;\s*{_TOKEN}\s*=|;?\s*$)")
_QUOTED_PAIR = ('"', "\\")
# The HTML form-data encoding (RFC 7578 section 4.2): browsers and curl 7.81+ send these as escapes.
_FORM_ESCAPE = re.compile("%(22|0D|0A)")


def disposition_params(value: str) -> dict[str, str]:
    """The parameters of a part's ``Content-Disposition``, names in lower case, values as the client meant them.

    python-multipart's ``parse_options_header`` (it has no option for this)
    ends a quoted value at the first quote that is not backslash-escaped, so a
    client that sends a ``"`` of the filename as it is (``filename="a";x;".mp4"``)
    got its name cut to ``a``, extension lost; and it leaves the ``%22``,
    ``%0D``, ``%0A`` of browsers and curl as they are. Here a value ends at the
    last quote that a parameter or the end follows, and those three escapes are
    decoded (a literal ``%22`` in a name cannot be told apart: browsers do not
    escape ``%``). The first of a repeated parameter counts.
    """
    params: dict[str, str] = {}
    position = 0
    while (parameter := _PARAMETER.search(value, position)) is not None:
        text, position = _parameter_value(value, parameter.end())
        params.setdefault(parameter[1].lower(), _FORM_ESCAPE.sub(lambda escape: chr(int(escape[1], 16)), text))
    return params


def _parameter_value(value: str, start: int) -> tuple[str, int]:
    """A token or quoted-string value beginning at ``start``, and where it ends."""
    if value.startswith('"', start):
        return _quoted_value(value, start + 1)
    end = value.find(";", start)
    end = len(value) if end < 0 else end
    return value[start:end].strip(), end


def _quoted_value(value: str, start: int) -> tuple[str, int]:
    """The quoted-string whose content begins at ``start``, unescaped, and the position after its closing quote.

    ``\\"`` and ``\\\\`` are escapes (older curl sends them); any other
    backslash is kept, as a Windows path has it. A quote followed by neither
    another parameter nor the end is the client's own, unescaped, and kept;
    without a closing quote the value runs to the end.
    """
    text: list[str] = []
    position = start
    while position < len(value):
        char = value[position]
        if char == "\\" and value[position + 1:position + 2] in _QUOTED_PAIR:
            text.append(value[position + 1])
            position += 2
            continue
        if char == '"' and _AFTER_CLOSING_QUOTE.match(value, position + 1):
            return "".join(text), position + 1
        text.append(char)
        position += 1
    return "".join(text), position


def _boundary(content_type: str | None) -> bytes:
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise UnsupportedUpload(f"send the video as multipart/form-data with a '{FILE_FIELD}' field")
    boundary = params.get(b"boundary")
    if not boundary:
        raise MalformedUpload("the multipart Content-Type has no boundary")
    return boundary


# ASCII digits only, and few enough for int(): more than 19 is no byte count a store will see.
_DECIMAL = re.compile(r"[0-9]{1,19}")


def byte_count(value: str | None) -> int | None:
    """A header's byte count, or None if it is missing or not one.

    Checked by pattern, not ``str.isdigit``: that accepts digits such as "²"
    that ``int`` refuses, and any number of them, past ``int``'s own limit.
    """
    return int(value) if value is not None and _DECIMAL.fullmatch(value) else None


def declared_length(request: Request) -> int | None:
    """The body length the client announced (Content-Length), if it announced one."""
    return byte_count(request.headers.get("content-length"))


def _refuse_declared_oversize(request: Request, staged: StagedFile, limit: int, max_bytes: int) -> None:
    """Refuse before reading when Content-Length already says the body is too big, or has no room on the disk."""
    declared = declared_length(request)
    if declared is None:
        return
    if declared > limit:
        raise UploadTooLarge(max_bytes)
    staged.require(declared)


async def request_chunks(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that leaves becomes a MalformedUpload."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise MalformedUpload("the client went away before the upload finished") from None


def _refuse_empty(staged: StagedFile) -> None:
    if staged.size == 0:
        raise MalformedUpload("the uploaded file is empty")


async def receive_multipart_file(request: Request, staged: StagedFile, max_bytes: int) -> str:
    """Stream the ``file`` field of the request into ``staged``; return the name to store it as."""
    boundary = _boundary(request.headers.get("content-type"))
    _refuse_declared_oversize(request, staged, max_bytes + FORM_OVERHEAD_BYTES, max_bytes)
    writer = _FileFieldWriter(staged, max_bytes)
    try:
        parser = MultipartParser(boundary, writer.callbacks(), max_size=max_bytes + FORM_OVERHEAD_BYTES)
        async for chunk in request_chunks(request):
            if parser.write(chunk) < len(chunk):
                raise UploadTooLarge(max_bytes)
    except FormParserError as exc:
        raise MalformedUpload(f"malformed multipart body: {exc}") from None
    if not writer.body_complete:
        raise MalformedUpload("the multipart body ended before its closing boundary")
    if writer.filename is None or not writer.file_complete:
        raise MalformedUpload(f"the form has no '{FILE_FIELD}' field")
    _refuse_empty(staged)
    return writer.filename


async def receive_raw_body(request: Request, staged: StagedFile, max_bytes: int) -> None:
    """Stream a raw request body (``curl -T``) into ``staged``, within the size limit."""
    _refuse_declared_oversize(request, staged, max_bytes, max_bytes)
    async for chunk in request_chunks(request):
        if staged.size + len(chunk) > max_bytes:
            raise UploadTooLarge(max_bytes)
        staged.write(chunk)
    _refuse_empty(staged)


async def receive_small_body(request: Request, max_bytes: int, too_large: Callable[[int], Exception]) -> bytes:
    """A raw body that is small by nature (a caption file), in memory: never more than ``max_bytes`` of it,
    refused with ``too_large(max_bytes)`` as soon as Content-Length, or the bytes so far, say it is larger."""
    declared = declared_length(request)
    if declared is not None and declared > max_bytes:
        raise too_large(max_bytes)
    body = bytearray()
    async for chunk in request_chunks(request):
        if len(body) + len(chunk) > max_bytes:
            raise too_large(max_bytes)
        body += chunk
    return bytes(body)
