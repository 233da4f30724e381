"""How every refusal is answered: one table from error to status, words and headers.

Domain code raises the errors of ``app/core/errors.py`` and never builds an
error response itself. Here each kind gets its status and a short JSON
``{"detail": ...}``; where a person in a browser may meet it (a video that is
not there, an address that leads nowhere, a fault of the server) a friendly
HTML page instead. A refusal sent before the request body was read to its end
says ``connection: close``, so that the client stops sending it; any other
answer leaves the connection open for the next request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import errors
from app.file_stream import json_error
from app.uploads.sessions import UploadClosed

log = logging.getLogger(__name__)

ErrorPage = Callable[[Request, int, str, str], Response]
"""Renders a page for people: (request, status, title, message)."""


@dataclass(frozen=True)
class Answer:
    """How one kind of error is answered; ``{}`` in ``detail`` or a header value stands for the error's message."""

    status: int
    detail: str = "{}"
    headers: Mapping[str, str] = field(default_factory=dict)
    page: tuple[str, str] | None = None  # (title, message) for browsers


RETRY_AFTER_SECONDS = 5
"""How soon a client may try again after a part the service stands on did not answer (``Retry-After``)."""

_PRECONDITION = Answer(412, "precondition failed: the video changed or already exists")

ANSWERS: dict[type[errors.ServiceError], Answer] = {
    errors.InvalidName: Answer(400, "invalid video name: {}"),
    errors.InvalidCursor: Answer(400, "not a cursor of this library: ask again from the first page"),
    errors.NotFound: Answer(404, "no video with this name", page=("Video not found", "There is no video with this name.")),
    errors.PreconditionFailed: _PRECONDITION,
    errors.AlreadyExists: _PRECONDITION,
    errors.WriteBusy: Answer(503, headers={"retry-after": "1"}),
    errors.WriteNotAllowed: Answer(401, headers={"www-authenticate": 'Bearer realm="video"'}),
    errors.UnknownHost: Answer(400),
    errors.StorageFull: Answer(507),
    errors.Unavailable: Answer(503, headers={"retry-after": str(RETRY_AFTER_SECONDS)},
                               page=("Try again shortly", "The videos cannot be reached right now.")),
    errors.MalformedUpload: Answer(400),
    errors.UploadTooLarge: Answer(413),
    errors.UnsupportedUpload: Answer(415),
    errors.NotAVideo: Answer(415, "not a video: {}"),
    errors.NoSuchCaptions: Answer(404, "the video has no caption track in this language"),
    errors.InvalidLanguage: Answer(400),
    errors.InvalidLabel: Answer(400),
    errors.NotCaptions: Answer(422, "not captions: {}"),
    errors.CaptionsTooLarge: Answer(413),
    errors.TooManyCaptions: Answer(409),
    errors.UnknownUpload: Answer(404, "no such upload"),
    errors.ExpiredUpload: Answer(410, "the upload expired"),
    errors.AbandonedUpload: Answer(410, "the server stopped while ingesting this upload and its bytes are lost: "
                                        "upload it again"),
    errors.UploadBusy: Answer(409, "another request is appending to this upload"),
    errors.OffsetMismatch: Answer(409),
    UploadClosed: Answer(423, "the upload is complete and its video is being ingested: "
                              "HEAD tells its Video-URL once that is done"),
    errors.ChecksumMismatch: Answer(460, "checksum mismatch: the chunk was discarded"),
    errors.UnsupportedTusVersion: Answer(412, "this server speaks tus {}", {"tus-version": "{}"}),
    errors.ServiceError: Answer(400),
}
"""Looked up along the error's class hierarchy: the most specific entry answers."""


def answer_for(exc: errors.ServiceError) -> Answer:
    return next(ANSWERS[kind] for kind in type(exc).__mro__ if kind in ANSWERS)


class ErrorDetail(BaseModel):
    """The body of every refusal."""

    detail: str


_HEADER_DOCS = {"www-authenticate": "How to authenticate: a bearer token", "tus-version": "The tus version spoken",
                "retry-after": "Seconds to wait before trying again"}
_PAGE = {"text/html": {"schema": {"type": "string"}}}


def documented(*kinds: type[errors.ServiceError]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the refusals a route can give, read from the table.

    Each status lists the refusals that answer with it, in their own words. Every route documented here
    reads or writes the store or the catalog's database, so each may also meet ``Unavailable``.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for kind in (*kinds, errors.Unavailable):
        answer = ANSWERS[kind]
        entry = responses.setdefault(answer.status, {"model": ErrorDetail, "description": ""})
        reason = (kind.__doc__ or kind.__name__).strip().splitlines()[0]
        entry["description"] = f"{entry['description']} {reason}".strip()
        for header in answer.headers:
            entry.setdefault("headers", {})[header] = {"description": _HEADER_DOCS[header],
                                                       "schema": {"type": "string"}}
        if answer.page is not None:
            entry["content"] = _PAGE
    if 422 in responses:
        responses[422] = _shared_with_validation(responses[422])
    return responses


def _shared_with_validation(entry: dict[str, Any]) -> dict[str, Any]:
    """A refusal answered 422 shares the status with FastAPI's own answer to a malformed parameter."""
    either = [{"$ref": "#/components/schemas/ErrorDetail"}, {"$ref": "#/components/schemas/HTTPValidationError"}]
    return {**{key: value for key, value in entry.items() if key != "model"},
            "content": {"application/json": {"schema": {"anyOf": either}}}}


# --- was the request body read? ----------------------------------------------

_BODY_READ = "video.body_read"


def _declares_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class BodyWatch:
    """ASGI middleware: notes in the scope whether the request body has been read to its end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _declares_body(scope["headers"]):
            await self.app(scope, receive, send)
            return
        read = scope[_BODY_READ] = [False]  # shared by reference with every copy of the scope

        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                read[0] = True
            return message

        await self.app(scope, watched, send)


def _body_left_unread(request: Request) -> bool:
    read = request.scope.get(_BODY_READ)
    return read is not None and not read[0]


# --- the answers ----------------------------------------------------------------

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _methods_at(request: Request) -> list[str]:
    """Every method some route answers at the request's address (asked of each route, as the router does)."""
    return [method for method in _METHODS
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
                   for route in request.app.router.routes)]


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


class ErrorAnswers:
    """Builds the response for an error, with the page renderer the web layer provides."""

    def __init__(self, page: ErrorPage) -> None:
        self.page = page

    def refusal(self, request: Request, exc: errors.ServiceError) -> Response:
        """The answer to a refusal of the service."""
        answer = answer_for(exc)
        headers = {name: value.format(exc) for name, value in answer.headers.items()}
        if _body_left_unread(request):
            headers["connection"] = "close"
        if answer.page is not None and _wants_html(request):
            response = self.page(request, answer.status, *answer.page)
            response.headers.update(headers)
            return response
        return json_error(answer.status, answer.detail.format(exc), headers)

    async def handle_refusal(self, request: Request, exc: errors.ServiceError) -> Response:
        return self.refusal(request, exc)

    async def handle_http_error(self, request: Request, exc: HTTPException) -> Response:
        """Framework errors (no such route, wrong method): a page for browsers on 404, else FastAPI's JSON.

        A 405 names every method of the address (RFC 9110 section 15.5.6), not
        only those of the first route the router tried.
        """
        if exc.status_code == 404 and _wants_html(request):
            return self.page(request, 404, "Page not found", "There is nothing at this address.")
        if exc.status_code == 405:
            exc = HTTPException(405, exc.detail, headers={"allow": ", ".join(_methods_at(request))})
        return await http_exception_handler(request, exc)

    async def handle_fault(self, request: Request, exc: Exception) -> Response:
        """A fault of the server: logged with its trace, answered without one."""
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        if _wants_html(request):
            return self.page(request, 500, "Something went wrong",
                             "The server could not finish this request. Please try again in a moment.")
        return json_error(500, "internal error")


def install(app: FastAPI, page: ErrorPage) -> ErrorAnswers:
    """Answer every error of ``app`` from the table; ``page`` renders the pages for browsers."""
    answers = ErrorAnswers(page)
    app.add_exception_handler(errors.ServiceError, answers.handle_refusal)
    app.add_exception_handler(HTTPException, answers.handle_http_error)
    app.add_exception_handler(Exception, answers.handle_fault)
    app.add_middleware(BodyWatch)
    return answers
