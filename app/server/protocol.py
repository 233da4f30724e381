"""uvicorn's httptools protocol with the limits a server facing the internet needs.

uvicorn on httptools parses as fast as any Python server but bounds nothing
before the application sees a request: a head of any size is buffered (the
parser joins header fragments, so a 182 MiB header cost 43 s and 361 MiB), a
client may take forever to send it, and every connection is accepted. Here,
per connection:

- the head (request line and headers) may hold at most ``max_head_bytes`` and
  ``max_header_count`` header lines, else 431 and the connection is closed;
- it must arrive within ``head_timeout_seconds`` of the connection opening or
  of the previous response ending (a slowloris client trickling bytes is cut
  off; one that sent part of a head gets 408), while a response being sent or
  a body being received is never timed;
- at most ``max_connections`` are open: one more is answered 503 and closed
  at once, before it can hold a descriptor for long;
- a request line that is not HTTP/1.0 or 1.1 (such as ``GET /`` without a
  version) is answered 505 instead of being served as HTTP/1.1.

Bytes are counted before they reach the parser, so at most one read (256 KiB)
beyond the limit is ever buffered. The head's end is found by looking for the
blank line in each read: a terminator split across two reads only counts the
first read fully, which errs towards the limit, never past one read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

HEAD_END = b"\r\n\r\n"
SUPPORTED_VERSIONS = ("1.0", "1.1")


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may cost the server before the application is involved."""

    max_head_bytes: int
    max_header_count: int
    head_timeout_seconds: float
    max_connections: int


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """One connection, as uvicorn's httptools protocol serves it, within ``limits``.

    ``limits`` is set on a subclass made by :func:`limited_protocol`, because
    uvicorn builds a protocol per connection from a class and its own config.
    A parser callback refuses a head by answering and then raising, which
    stops the parser; uvicorn's own 400 for a parser error is then not sent.
    """

    limits: ClassVar[ConnectionLimits]

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_deadline: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "Too many connections: try again shortly.", b"retry-after: 1\r\n")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head and self._head_too_large(data):
            self._refuse(431, "Request header fields too large.")
            return
        super().data_received(data)

    def _head_too_large(self, data: bytes) -> bool:
        """Whether the head now being received has grown past the limit, counting this read."""
        end = data.find(HEAD_END)
        self._head_bytes += len(data) if end < 0 else end + len(HEAD_END)
        return self._head_bytes > self.limits.max_head_bytes

    def on_headers_complete(self) -> None:
        """Refuse what the head holds that is beyond the limits, before the application sees it.

        Header lines are counted here, once, rather than one by one as they are
        parsed: the byte limit already bounds what a head may make the parser hold.
        """
        self._awaiting_head = False
        self._head_bytes = 0
        self._head_deadline = None
        if len(self.headers) > self.limits.max_header_count:
            self._stop_parsing(431, "Too many request header fields.")
        elif self.parser.get_http_version() not in SUPPORTED_VERSIONS:
            self._stop_parsing(505, "HTTP/1.1 or HTTP/1.0 is required.")
        else:
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """Start timing the next head, unless a pipelined request is already being answered."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._arm_head_timer()

    def _stop_parsing(self, status: int, message: str) -> None:
        """Refuse the head now: stops the parser, whose error uvicorn answers with ``send_400_response``."""
        self._refuse(status, message)
        raise httptools.HttpParserError(message)

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # not already refused by _stop_parsing
            super().send_400_response(msg)

    def _arm_head_timer(self) -> None:
        """Give the next head its time from now.

        One timer per connection, re-armed only when it fires early: a
        keep-alive connection answering thousands of requests must not create
        and cancel a timer for each of them.
        """
        self._head_deadline = self.loop.time() + self.limits.head_timeout_seconds
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(self._head_deadline, self._head_timer_fired)

    def _disarm_head_timer(self) -> None:
        self._head_deadline = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timer_fired(self) -> None:
        self._head_timer = None
        if self._head_deadline is None:  # a request is being answered; the next response re-arms
            return
        if self.loop.time() < self._head_deadline:  # a later head's time is not up yet
            self._head_timer = self.loop.call_at(self._head_deadline, self._head_timer_fired)
        elif self._head_bytes:
            self._refuse(408, "The request head took too long to arrive.")
        elif not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: int, message: str, extra_headers: bytes = b"") -> None:
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(self._refusal_bytes(status, message, extra_headers))
            self.transport.close()

    def _refusal_bytes(self, status: int, message: str, extra_headers: bytes) -> bytes:
        """A complete plain-text answer that closes the connection, with the server's usual headers."""
        body = message.encode("ascii")
        usual = b"".join(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
        return b"".join([STATUS_LINE[status], usual, b"content-type: text/plain; charset=utf-8\r\n",
                         b"content-length: %d\r\n" % len(body), extra_headers, b"connection: close\r\n\r\n",
                         body])


def limited_protocol(limits: ConnectionLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn is given: :class:`LimitedHttpToolsProtocol` bound to ``limits``."""
    return type("LimitedHttpTools", (LimitedHttpToolsProtocol,), {"limits": limits})
