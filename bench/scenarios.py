"""The benchmark's scenarios, one function each, measuring one contender once.

A scenario function takes the run's :class:`Bench` and the server to load and
returns a :class:`Measurement`. The runner calls it for the service and for
the reference in alternation, round after round, and takes medians.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from bench.load import BenchError, DiscardingSink, abandoned_probes, check_first_bytes, curl_upload, wrk
from bench.pages import PageLibrary
from bench.procs import RssSampler, cpu_seconds, rss_mib
from bench.s3 import S3Contenders

MIB = 1024 * 1024
RANGE_BYTES = MIB
SMALL_REQUEST_CONNECTIONS = 32
STREAMS = 64
UPLOAD_FILENAME = "bench-upload.bin"
LADDER_FILENAME = "bench-ladder.mp4"
LADDER_TIME_LIMIT_S = 1800.0
PROBES_TIME_LIMIT_S = 60.0


@dataclass(frozen=True)
class Profile:
    """How big and how long: the default run, or ``--quick``'s smoke test."""

    full_bytes: int
    big_bytes: int
    rounds: int
    duration_s: float
    probes: int
    library_sizes: tuple[int, int]  # the small library the page rows compare with, and the big one
    ladder_seconds: int = 60  # the length of the 1080p clip whose renditions are made
    probe_concurrency: int = 8
    probe_read_bytes: int = 64 * 1024
    idle_s: float = 2.0


@dataclass(frozen=True)
class Server:
    """A contender as the load sees it: where it listens and which process does the work."""

    name: str
    url: str
    pid: int

    def video_url(self, path: Path) -> str:
        return f"{self.url}/get_video_by_name/{path.name}"


@dataclass
class Bench:
    """Everything the scenarios share for the whole run."""

    profile: Profile
    service: Server
    nginx: Server
    full_file: Path
    big_file: Path
    token: str
    s3: S3Contenders | None = None
    pages: PageLibrary | None = None
    ladder_clip: Path | None = None
    etags: dict[str, str] = field(default_factory=dict)
    round: int = 0


@dataclass
class Measurement:
    """One contender's numbers for one scenario in one round, and anything that looked wrong."""

    values: dict[str, float]
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    """One scenario bound to its contenders: (name, measure once) for the service and its reference."""

    key: str
    runs: tuple[tuple[str, Callable[[], Measurement]], ...]


def full_download(bench: Bench, server: Server, clients: int) -> Measurement:
    """Whole-file GETs back to back: raw streaming throughput, where nginx uses sendfile."""
    result = wrk(server.video_url(bench.full_file), clients, bench.profile.duration_s, timeout_s=60)
    return Measurement({"mb_per_s": result.mb_per_s}, result.problems())


def random_ranges(bench: Bench, server: Server) -> Measurement:
    """1 MiB at random offsets of the big file, like players seeking: per-request cost plus copying."""
    return random_ranges_at(bench, server.video_url(bench.big_file))


def random_ranges_at(bench: Bench, url: str) -> Measurement:
    """Random 1 MiB ranges of the big file at ``url``; the same sequence for every contender of a round."""
    args = ("ranges", str(bench.big_file.stat().st_size), str(RANGE_BYTES), str(bench.round + 1))
    result = wrk(url, SMALL_REQUEST_CONNECTIONS, bench.profile.duration_s, script_args=args)
    return Measurement({"requests_per_s": result.requests_per_s, "p99_ms": result.p99_ms}, result.problems())


def first_bytes(bench: Bench, server: Server) -> Measurement:
    """``Range: bytes=0-1``: nearly no body, so this is the fixed cost of one request."""
    result = wrk(server.video_url(bench.big_file), SMALL_REQUEST_CONNECTIONS, bench.profile.duration_s,
                 headers=("Range: bytes=0-1",))
    return Measurement({"requests_per_s": result.requests_per_s}, result.problems())


def probes_then_idle(bench: Bench, server: Server) -> Measurement:
    """Clients that start a whole-file stream and hang up; then the server's CPU while nobody is connected.

    A server that does not notice the hang-ups keeps reading and sending the
    rest of each file, which shows as CPU after the clients are gone.
    """
    profile = bench.profile
    result = abandoned_probes(server.video_url(bench.big_file), profile.probes, profile.probe_concurrency,
                              profile.probe_read_bytes, PROBES_TIME_LIMIT_S)
    before = cpu_seconds(server.pid)
    time.sleep(profile.idle_s)
    idle_cpu = cpu_seconds(server.pid) - before
    return Measurement({"probes_per_s": result.per_s, "idle_cpu_s": idle_cpu}, result.failures[:5])


def not_modified(bench: Bench, server: Server) -> Measurement:
    """``If-None-Match`` with the current ETag: a revalidating cache, answered 304 without a body."""
    result = wrk(server.video_url(bench.big_file), SMALL_REQUEST_CONNECTIONS, bench.profile.duration_s,
                 headers=(f"If-None-Match: {bench.etags[server.name]}",))
    return Measurement({"requests_per_s": result.requests_per_s}, result.problems())


def many_streams(bench: Bench, server: Server) -> Measurement:
    """64 clients each downloading the big file at once: fairness under load, and memory per stream.

    The RSS before the streams start is kept too, to tell what the streams cost
    from what the process holds anyway.
    """
    before = rss_mib(server.pid)
    with RssSampler(server.pid) as rss:
        result = wrk(server.video_url(bench.big_file), STREAMS, bench.profile.duration_s, timeout_s=60)
    values = {"mb_per_s": result.mb_per_s, "peak_rss_mib": rss.peak_mib, "rss_before_mib": before}
    return Measurement(values, result.problems())


def upload_to_service(bench: Bench, server: Server) -> Measurement:
    """The big file as a multipart upload to ``POST /video``, with the memory it costs the server.

    The time is curl's total, so it includes the service storing the file
    durably (a synced local file, or a completed S3 multipart upload) before it
    answers 201. The stored copy is deleted again afterwards.
    """
    auth = f"Authorization: Bearer {bench.token}"
    before = rss_mib(server.pid)
    with RssSampler(server.pid) as rss:
        result = curl_upload(f"{server.url}/video", bench.big_file, UPLOAD_FILENAME, headers=(auth,))
    if result.status != 201:
        raise BenchError(f"upload answered {result.status}: {result.body[:200]}")
    stored = json.loads(result.body)["name"]
    deleted = httpx.delete(f"{server.url}/video/{stored}", headers={"Authorization": f"Bearer {bench.token}"})
    problems = [] if deleted.status_code == 204 else [f"DELETE of the upload answered {deleted.status_code}"]
    values = {"mb_per_s": bench.big_file.stat().st_size / result.seconds / 1e6,
              "rss_growth_mib": rss.peak_mib - before}
    return Measurement(values, problems)


def upload_to_sink(bench: Bench) -> Measurement:
    """The same curl upload into a loopback socket that discards it: the ceiling for any server."""
    with DiscardingSink() as sink:
        result = curl_upload(f"{sink.url}/video", bench.big_file, UPLOAD_FILENAME)
    if result.status != 201 or sink.error is not None:
        raise BenchError(f"the discarding sink failed: status {result.status}, {sink.error!r}")
    return Measurement({"mb_per_s": bench.big_file.stat().st_size / result.seconds / 1e6})


def ranges_while_making_a_ladder(bench: Bench, server: Server) -> Measurement:
    """Random ranges while the service makes the renditions of a 1080p clip just uploaded; and how fast it
    makes them (the clip's length over the time from the upload's answer to the video being ready).

    The job runs in the server's own worker, as ``make run`` has it: the ranges show what transcoding
    beside streaming costs the streams, against the same ranges with no work running (the reference).
    """
    assert bench.ladder_clip is not None
    auth = {"Authorization": f"Bearer {bench.token}"}
    result = curl_upload(f"{server.url}/video", bench.ladder_clip, LADDER_FILENAME, headers=tuple(
        f"{key}: {value}" for key, value in auth.items()))
    if result.status != 201:
        raise BenchError(f"the clip's upload answered {result.status}: {result.body[:200]}")
    answered = time.monotonic()
    name = json.loads(result.body)["name"]
    ranges = random_ranges(bench, server)
    with httpx.Client(base_url=server.url, timeout=LADDER_TIME_LIMIT_S) as client:
        with client.stream("GET", f"/video/{name}/events") as events:
            for _ in events.iter_lines():
                pass
        made = time.monotonic() - answered
        described = client.get(f"/video/{name}").json()
        client.delete(f"/video/{name}", headers=auth)
    problems = ranges.problems + ([] if described["status"] == "ready" else [f"renditions: {described['status']}"])
    return Measurement({**ranges.values, "x_realtime": bench.profile.ladder_seconds / made}, problems)


def library_page(bench: Bench, size: int, deep: bool) -> Measurement:
    """``GET /video?limit=20`` of a library of ``size`` videos: the first page, or one half way through it.

    The catalog answers a page by an indexed range search (and the total by a count), so this is what
    a page costs as the library grows; wrk's non-2xx count catches a page that fails.
    """
    assert bench.pages is not None
    result = wrk(bench.pages.page_url(size, deep), SMALL_REQUEST_CONNECTIONS, bench.profile.duration_s)
    return Measurement({"requests_per_s": result.requests_per_s, "p99_ms": result.p99_ms}, result.problems())


def stages(bench: Bench) -> list[list[Scenario]]:
    """Every scenario in run order, each with its contenders, in stages that each run all their rounds.

    The page rows compare the service with a big library against itself with a small one, and the
    library only grows (it is laid out once for each size), so the big library's measurements come last,
    in a stage of their own, and no other workload runs with it in the store. The small library's
    come after every other scenario of the first stage; from the second round on, the others run with
    its 200 videos in the store, which costs them nothing (a file is opened by name; an upload adds one
    row to the catalog).
    """
    small, big = bench.profile.library_sizes
    return [[*scenarios(bench), *_page_scenarios(bench, small, "reference")],
            _page_scenarios(bench, big, "service")]


def _page_scenarios(bench: Bench, size: int, contender: str) -> list[Scenario]:
    """The first and the deep page of a library of ``size``, measured as ``contender`` of the page rows."""
    if bench.pages is None:
        return []
    return [Scenario(key, ((contender, partial(library_page, bench, size, deep)),))
            for key, deep in (("page_first", False), ("page_deep", True))]


def scenarios(bench: Bench) -> list[Scenario]:
    """Every scenario but the page rows in run order, each with its two contenders."""

    def against_nginx(key: str, measure: Callable[[Bench, Server], Measurement]) -> Scenario:
        return Scenario(key, (("service", partial(measure, bench, bench.service)),
                              ("nginx", partial(measure, bench, bench.nginx))))

    return [
        against_nginx("full_1", partial(full_download, clients=1)),
        against_nginx("full_8", partial(full_download, clients=8)),
        against_nginx("ranges", random_ranges),
        against_nginx("first_bytes", first_bytes),
        against_nginx("probes", probes_then_idle),
        against_nginx("not_modified", not_modified),
        against_nginx("streams", many_streams),
        Scenario("upload", (("service", partial(upload_to_service, bench, bench.service)),
                            ("reference", partial(upload_to_sink, bench)))),
        *_ladder_scenarios(bench),
        *_s3_scenarios(bench),
    ]


def _ladder_scenarios(bench: Bench) -> list[Scenario]:
    """Ranges while a ladder is made, against the same ranges of the same service with nothing to make."""
    if bench.ladder_clip is None:
        return []
    return [Scenario("ladder", (("service", partial(ranges_while_making_a_ladder, bench, bench.service)),
                                ("reference", partial(random_ranges, bench, bench.service))))]


def _s3_scenarios(bench: Bench) -> list[Scenario]:
    """The service over S3: ranges against SeaweedFS answering them directly, and an upload."""
    if bench.s3 is None:
        return []
    service = Server("service", bench.s3.service_url, bench.s3.service.pid)
    return [
        Scenario("s3_ranges", (("service", partial(random_ranges, bench, service)),
                               ("seaweedfs", partial(random_ranges_at, bench, bench.s3.direct_url)))),
        Scenario("s3_upload", (("service", partial(upload_to_service, bench, service)),
                               ("reference", partial(upload_to_sink, bench)))),
    ]


def check_server(server: Server, bench: Bench) -> str:
    """Fail before measuring if a server does not answer as the scenarios assume; return the big file's ETag.

    Without this, a server answering 404 or ignoring Range would look fast.
    """
    big_url = server.video_url(bench.big_file)
    check_first_bytes(big_url, bench.big_file, server.name)
    with httpx.Client(timeout=10) as client:
        for path in (bench.full_file, bench.big_file):
            head = client.head(server.video_url(path))
            if head.status_code != 200 or head.headers.get("content-length") != str(path.stat().st_size):
                raise BenchError(f"{server.name}: HEAD {path.name} answered {head.status_code} {dict(head.headers)}")
        etag = client.head(big_url).headers.get("etag")
        if not etag:
            raise BenchError(f"{server.name} sends no ETag")
        cached = client.get(big_url, headers={"If-None-Match": etag})
        if cached.status_code != 304:
            raise BenchError(f"{server.name}: If-None-Match answered {cached.status_code}, not 304")
    return etag
