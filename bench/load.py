"""The clients that put load on a server: wrk, abandoning probes, curl uploads, and a discarding sink.

Every client here is bounded in count and in time and stops by itself, and
every one targets 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import uvloop

WRK_SCRIPT = Path(__file__).with_name("wrk.lua")
# One load-generating thread for every server and scenario: on a 2-core machine
# that leaves a core for the server under test, and keeps the comparison fair.
WRK_THREADS = 1
# How long past its planned end a client may run before it is treated as hung.
GRACE_S = 30.0


class BenchError(Exception):
    """A server answered differently from what the scenario expects, or a client failed."""


def check_first_bytes(url: str, path: Path, who: str) -> None:
    """``Range: bytes=0-1`` of ``url`` must answer 206 with the first two bytes of ``path``.

    Checked before measuring: a server that answers an error, or ignores
    Range, would otherwise look fast.
    """
    with open(path, "rb") as source:
        first_two = source.read(2)
    answer = httpx.get(url, headers={"Range": "bytes=0-1"}, timeout=30)
    if answer.status_code != 206 or answer.content != first_two:
        raise BenchError(f"{who}: bytes=0-1 answered {answer.status_code} with {answer.content[:10]!r}")


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reports through ``done()`` in wrk.lua."""

    seconds: float
    requests: int
    bytes: int
    p99_ms: float
    errors: dict[str, int]

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def mb_per_s(self) -> float:
        """Bytes read (bodies of unfinished responses included) per second, in 10^6 bytes."""
        return self.bytes / self.seconds / 1e6

    def problems(self) -> list[str]:
        """wrk's "Non-2xx or 3xx responses" and "Socket errors", when there were any."""
        found = []
        if self.errors["status"]:
            found.append(f"wrk: {self.errors['status']} non-2xx/3xx responses")
        sockets = {kind: self.errors[kind] for kind in ("connect", "read", "write", "timeout")}
        if any(sockets.values()):
            found.append("wrk socket errors: " + ", ".join(f"{kind} {count}" for kind, count in sockets.items()))
        return found


def wrk(
    url: str,
    connections: int,
    duration_s: float,
    *,
    headers: tuple[str, ...] = (),
    script_args: tuple[str, ...] = (),
    timeout_s: float = 10.0,
) -> WrkResult:
    """Run wrk against ``url`` for ``duration_s``; ``timeout_s`` is the slowest response it records.

    Responses slower than ``timeout_s`` count as wrk "timeout" errors, so big
    downloads need a long one.
    """
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration_s:g}s", f"--timeout={timeout_s:g}s",
               "-s", str(WRK_SCRIPT)]
    for header in headers:
        command += ["-H", header]
    command += [url, "--", *script_args]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + GRACE_S)
    summary = next((line for line in finished.stdout.splitlines() if line.startswith("BENCH ")), None)
    if finished.returncode != 0 or summary is None:
        raise BenchError(f"wrk failed ({finished.returncode}): {finished.stderr.strip() or finished.stdout.strip()}")
    raw = json.loads(summary.removeprefix("BENCH "))
    return WrkResult(
        seconds=raw["duration_us"] / 1e6,
        requests=int(raw["requests"]),
        bytes=int(raw["bytes"]),
        p99_ms=raw["p99_us"] / 1000,
        errors={kind: int(raw[kind]) for kind in ("connect", "read", "write", "status", "timeout")},
    )


@dataclass(frozen=True)
class ProbeResult:
    completed: int
    failures: list[str]
    seconds: float

    @property
    def per_s(self) -> float:
        return self.completed / self.seconds


def abandoned_probes(url: str, count: int, concurrency: int, read_bytes: int, time_limit_s: float) -> ProbeResult:
    """``count`` clients that each ask for ``bytes=0-``, read the head and ``read_bytes``, and hang up.

    This is what a player does when it sniffs a file or seeks away: the server
    must notice the client is gone and stop sending the rest.
    """
    return uvloop.run(_probe_all(url, count, concurrency, read_bytes, time_limit_s))


async def _probe_all(url: str, count: int, concurrency: int, read_bytes: int, time_limit_s: float) -> ProbeResult:
    parts = urlsplit(url)
    request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nRange: bytes=0-\r\n\r\n").encode()
    remaining = iter(range(count))
    completed = 0
    failures: list[str] = []

    async def worker() -> None:
        nonlocal completed
        for _ in remaining:
            try:
                await _probe(parts.hostname, parts.port, request, read_bytes)
                completed += 1
            except (OSError, asyncio.IncompleteReadError, BenchError) as exc:
                failures.append(f"probe: {exc!r}")

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), time_limit_s)
    except asyncio.TimeoutError:
        failures.append(f"probes: stopped after {time_limit_s:g} s with {completed} of {count} done")
    return ProbeResult(completed, failures, time.perf_counter() - started)


async def _probe(host: str, port: int, request: bytes, read_bytes: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line = head.partition(b"\r\n")[0]
        if b" 206 " not in status_line:
            raise BenchError(f"answered {status_line.decode(errors='replace')!r} instead of 206")
        await reader.readexactly(read_bytes)
    finally:
        # Unread bytes in the receive buffer make the kernel reset the connection,
        # as when a browser tab is closed mid-download.
        writer.transport.abort()


@dataclass(frozen=True)
class UploadResult:
    status: int
    seconds: float
    body: str


def curl_upload(url: str, path: Path, filename: str, headers: tuple[str, ...] = (), time_limit_s: float = 300.0) -> UploadResult:
    """POST ``path`` as the multipart field ``file`` with curl, which streams it from disk.

    ``Expect: 100-continue`` is switched off: browsers never send it, and the
    discarding sink would otherwise have to answer it too.
    """
    command = ["curl", "-sS", "--max-time", f"{time_limit_s:g}", "-H", "Expect:",
               "-F", f"file=@{path};filename={filename}", "--write-out", r"\n%{http_code} %{time_total}"]
    for header in headers:
        command += ["-H", header]
    finished = subprocess.run([*command, url], capture_output=True, text=True, timeout=time_limit_s + GRACE_S)
    if finished.returncode != 0:
        raise BenchError(f"curl failed ({finished.returncode}): {finished.stderr.strip()}")
    body, _, summary = finished.stdout.rpartition("\n")
    status, seconds = summary.split()
    return UploadResult(int(status), float(seconds), body)


class DiscardingSink:
    """A loopback endpoint that reads one HTTP request's body into nothing and answers 201.

    The upload reference: what curl reaches against it is the most any server
    can take from curl over loopback on this machine, measured in the same run.
    """

    _BUFFER_BYTES = 1024 * 1024

    def __init__(self, time_limit_s: float = 300.0) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(time_limit_s)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.received = 0
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._serve_one, daemon=True)
        self._thread.start()

    def _serve_one(self) -> None:
        try:
            connection, _ = self._listener.accept()
            with connection:
                connection.settimeout(self._listener.gettimeout())
                self._receive(connection)
                connection.sendall(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        except (OSError, ValueError) as exc:
            self.error = exc

    def _receive(self, connection: socket.socket) -> None:
        """Read the request head, then exactly Content-Length body bytes into one reused buffer."""
        buffer = bytearray(self._BUFFER_BYTES)
        head = b""
        while b"\r\n\r\n" not in head:
            got = connection.recv(65536)
            if not got:
                raise ValueError("connection closed inside the request head")
            head += got
        head, _, body_start = head.partition(b"\r\n\r\n")
        length = _content_length(head)
        self.received = len(body_start)
        while self.received < length:
            got = connection.recv_into(buffer)
            if not got:
                raise ValueError(f"connection closed after {self.received} of {length} body bytes")
            self.received += got

    def close(self) -> None:
        # shutdown() wakes an accept() still waiting in the thread; close() alone would not.
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(timeout=GRACE_S)

    def __enter__(self) -> DiscardingSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("the request has no Content-Length")
