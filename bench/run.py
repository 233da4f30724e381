"""Benchmark the service (uvicorn, one worker) against nginx serving the same files.

``make bench`` runs this; ``make bench BENCH_ARGS=--quick`` is the smoke test.
Both servers run side by side for the whole run and take turns: every round
runs every scenario once against each, the one going first alternating, and
the table shows medians over the rounds. bench/README.md explains the
scenarios and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import uvicorn

REPO = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = Path(__file__).with_name("nginx.conf.template")
sys.path.insert(0, str(REPO))

from bench.load import WRK_THREADS, BenchError  # noqa: E402
from bench.procs import RssSampler, nginx_version, rss_mib  # noqa: E402
from bench.s3 import start_s3_contenders  # noqa: E402
from bench.pages import PAGE_LIMIT, PageLibrary  # noqa: E402
from bench.scenarios import MIB, STREAMS, Bench, Measurement, Profile, Scenario, Server, check_server, stages  # noqa: E402
from tests.media import make_video  # noqa: E402
from tests.servers import SERVE, NginxProcess, ServerProcess  # noqa: E402

DEFAULT = Profile(full_bytes=256 * MIB, big_bytes=1024 * MIB, rounds=5, duration_s=5.0, probes=2000,
                  library_sizes=(200, 20_000))
QUICK = Profile(full_bytes=32 * MIB, big_bytes=128 * MIB, rounds=1, duration_s=2.0, probes=200,
                library_sizes=(200, 2_000), ladder_seconds=10)
PAGE_KEYS = {"page_first", "page_deep"}
# The page rows' target: a page of the big library costs at most twice one of the small library.
PAGE_RATIO = 0.5
# Resource ceilings are judged on the worst round, throughputs on the median one.
WORST_CASE_METRICS = {"idle_cpu_s", "peak_rss_mib", "rss_growth_mib", "rss_peak_mib", "rss_after_mib"}
# "No CPU once clients leave", allowing for the event loop's own timers: 2.5% of a core over 2 s.
IDLE_CPU_LIMIT_S = 0.05
# Lets the previous measurement's connections wind down before the next one starts.
SETTLE_S = 0.5
WRITE_CHUNK_BYTES = 8 * MIB


@dataclass(frozen=True)
class Check:
    """One row of the table: a metric of a scenario and the target it must meet.

    ``relative`` targets bound the ratio service/reference, the others bound
    the service's own value.
    """

    scenario: str
    metric: str
    label: str
    unit: str
    op: str  # ">=" or "<="; empty for a row that is measured against no target
    bound: float | None
    relative: bool

    def target(self) -> str:
        if self.bound is None:
            return "-"
        return f"{self.op} {self.bound:g}x" if self.relative else f"{self.op} {self.bound:g} {self.unit}"

    def passes(self, service: float | None, reference: float | None) -> bool | None:
        """Whether the target is met; None when a value it needs is missing or there is no target."""
        value = _ratio(service, reference) if self.relative else service
        if value is None or self.bound is None:
            return None
        return value >= self.bound if self.op == ">=" else value <= self.bound


def checks(profile: Profile) -> list[Check]:
    """The issue's targets, labelled with this run's file sizes."""
    full, big = _size(profile.full_bytes), _size(profile.big_bytes)
    probes = f"abandoned probes: {profile.probes} x bytes=0-, {profile.probe_concurrency} at a time"
    small_library, big_library = profile.library_sizes
    page = f"/video?limit={PAGE_LIMIT} of {big_library:,} videos (ref: {small_library:,})"
    return [
        Check("full_1", "mb_per_s", f"full download of {full}, 1 client", "MB/s", ">=", 0.9, True),
        Check("full_8", "mb_per_s", f"full download of {full}, 8 clients", "MB/s", ">=", 0.9, True),
        Check("ranges", "requests_per_s", f"random 1 MiB ranges of {big}, 32 conns", "req/s", ">=", 0.9, True),
        Check("ranges", "p99_ms", "  p99 latency", "ms", "<=", 1.5, True),
        Check("first_bytes", "requests_per_s", "Range: bytes=0-1, 32 conns", "req/s", ">=", 0.25, True),
        Check("probes", "probes_per_s", probes, "probes/s", ">=", 0.5, True),
        Check("probes", "idle_cpu_s", f"  server CPU in the {profile.idle_s:g} s after", "s", "<=", IDLE_CPU_LIMIT_S, False),
        Check("not_modified", "requests_per_s", "If-None-Match (304), 32 conns", "req/s", ">=", 0.25, True),
        Check("streams", "mb_per_s", f"{STREAMS} concurrent streams of {big}", "MB/s", ">=", 0.9, True),
        Check("streams", "peak_rss_mib", "  server peak RSS", "MiB", "<=", 64, False),
        Check("upload", "mb_per_s", f"multipart upload of {big} (ref: sink)", "MB/s", ">=", 700, False),
        Check("upload", "rss_growth_mib", "  server RSS growth", "MiB", "<=", 16, False),
        Check("ladder", "x_realtime", f"renditions of a {profile.ladder_seconds} s 1080p clip, whole ladder",
              "x realtime", "", None, False),
        Check("ladder", "p99_ms", f"  random 1 MiB ranges p99 while it is made (ref: idle)", "ms", "", None, True),
        Check("s3_ranges", "requests_per_s", f"S3: random 1 MiB ranges of {big}, 32 conns", "req/s", "", None, True),
        Check("s3_ranges", "p99_ms", "  p99 latency", "ms", "", None, True),
        Check("s3_ranges", "rss_peak_mib", "  server peak RSS", "MiB", "", None, False),
        Check("s3_ranges", "rss_after_mib", "  server RSS after", "MiB", "", None, False),
        Check("s3_upload", "mb_per_s", f"S3: multipart upload of {big} (ref: sink)", "MB/s", "", None, False),
        Check("s3_upload", "rss_growth_mib", "  server RSS growth", "MiB", "", None, False),
        Check("s3_upload", "rss_after_mib", "  server RSS after", "MiB", "", None, False),
        Check("page_first", "requests_per_s", f"{page}, first page", "req/s", ">=", PAGE_RATIO, True),
        Check("page_first", "p99_ms", "  p99 latency", "ms", "", None, True),
        Check("page_deep", "requests_per_s", f"{page}, half way", "req/s", ">=", PAGE_RATIO, True),
        Check("page_deep", "p99_ms", "  p99 latency", "ms", "", None, True),
    ]


def _size(size: int) -> str:
    return f"{size // (1024 * MIB)} GiB" if size % (1024 * MIB) == 0 else f"{size // MIB} MiB"


def _ratio(service: float | None, reference: float | None) -> float | None:
    return None if service is None or not reference else service / reference


# --- set-up -------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> tuple[Profile, argparse.Namespace]:
    """The profile to run (default or quick, with --rounds and --duration applied) and the other options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files and short runs: a smoke test under 2 minutes")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default 5, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 5, quick 2)")
    parser.add_argument("--data-dir", type=Path, help="where the test files are made and kept (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write every sample and the table to this file")
    parser.add_argument("--only", type=lambda text: set(text.split(",")), metavar="KEYS",
                        help="run only these scenarios (comma-separated keys, e.g. full_1,probes or "
                             "page_first,page_deep; the table leaves the others out)")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else DEFAULT
    if args.rounds is not None:
        profile = replace(profile, rounds=max(1, args.rounds))
    if args.duration is not None:
        profile = replace(profile, duration_s=max(1.0, args.duration))
    return profile, args


def ensure_file(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes, written in chunks; an existing one of that size is reused.

    Random bytes cannot be compressed or deduplicated by anything on the way.
    The file appears under its name only once complete, so an interrupted run
    never leaves a short file to be reused.
    """
    if path.is_file() and path.stat().st_size == size:
        return path
    partial = path.with_name(f".{path.name}.part")
    with open(partial, "wb") as out:
        for offset in range(0, size, WRITE_CHUNK_BYTES):
            out.write(os.urandom(min(WRITE_CHUNK_BYTES, size - offset)))
    partial.rename(path)
    return path


def ensure_clip(path: Path, seconds: int) -> Path:
    """A 1080p H.264/AAC clip of ``seconds`` (a moving pattern and a tone); an existing one is reused.

    Made under a temporary name and renamed once whole, like ``ensure_file``.
    """
    if path.is_file():
        return path
    partial = path.with_name(f".{path.stem}.part.mp4")
    make_video(partial, seconds=seconds, width=1920, height=1080, rate=30,
               container_options={"movflags": "faststart"})
    partial.rename(path)
    return path


def warm_page_cache(path: Path) -> None:
    """Read a file once so neither server pays for the disk on its first turn."""
    buffer = bytearray(WRITE_CHUNK_BYTES)
    with open(path, "rb", buffering=0) as source:
        while source.readinto(buffer):
            pass


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so the servers are stopped on the way out."""
    raise SystemExit(128 + signum)


# --- the run --------------------------------------------------------------------

Samples = dict[str, dict[str, list[Measurement]]]


def measure_once(measure: Callable[[], Measurement]) -> Measurement:
    """One measurement; a failure is recorded as a problem of that sample, not the end of the run."""
    try:
        return measure()
    except (BenchError, subprocess.TimeoutExpired) as exc:
        return Measurement({}, [f"failed: {exc}"])


def service_pid(bench: Bench, scenario: Scenario) -> int:
    """The service process a scenario loads: the one over S3 for the S3 rows, else the local one."""
    return bench.s3.service.pid if scenario.key.startswith("s3_") and bench.s3 else bench.service.pid


def with_service_rss(measure: Callable[[], Measurement], pid: int) -> Measurement:
    """The measurement, with the service's resident memory before, at its peak during, and after it.

    "After" is read once the workload's connections have had ``SETTLE_S`` to wind down, so memory
    the service gives back once a workload ends does not count as kept.
    """
    before = rss_mib(pid)
    with RssSampler(pid) as rss:
        measurement = measure_once(measure)
    time.sleep(SETTLE_S)
    measurement.values.update(rss_before_mib=before, rss_peak_mib=rss.peak_mib, rss_after_mib=rss_mib(pid))
    return measurement


def run_stages(bench: Bench, plan: list[list[Scenario]], processes: dict[str, subprocess.Popen]) -> Samples:
    """Every stage's rounds in turn; a scenario key that runs in several stages gathers all its contenders."""
    samples: Samples = {}
    for stage in plan:
        for key, contenders in run_rounds(bench, stage, processes).items():
            samples.setdefault(key, {}).update(contenders)
    return samples


def run_rounds(bench: Bench, plan: list[Scenario], processes: dict[str, subprocess.Popen]) -> Samples:
    """Every scenario against both contenders, round after round, who goes first alternating."""
    samples: Samples = {scenario.key: {name: [] for name, _ in scenario.runs} for scenario in plan}
    for round_index in range(bench.profile.rounds):
        bench.round = round_index
        for index, scenario in enumerate(plan):
            runs = scenario.runs if (round_index + index) % 2 == 0 else scenario.runs[::-1]
            for name, measure in runs:
                time.sleep(SETTLE_S)
                measurement = (with_service_rss(measure, service_pid(bench, scenario)) if name == "service"
                               else measure_once(measure))
                samples[scenario.key][name].append(measurement)
                shown = ", ".join(f"{metric} {value:.1f}" for metric, value in measurement.values.items())
                print(f"  round {round_index + 1}/{bench.profile.rounds} {scenario.key:<13} {name:<9} {shown}"
                      + "".join(f" [{problem}]" for problem in measurement.problems), file=sys.stderr, flush=True)
            for who, process in processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{who} exited with {process.returncode} during {scenario.key}")
    return samples


def aggregate(measurements: list[Measurement], metric: str) -> float | None:
    """The median over the rounds, or the worst round for resource ceilings; None if no round has it."""
    values = [m.values[metric] for m in measurements if metric in m.values]
    if not values:
        return None
    return max(values) if metric in WORST_CASE_METRICS else statistics.median(values)


def reference_name(scenario: dict[str, list[Measurement]]) -> str:
    """The contender the service is compared with: nginx, or the sink for uploads."""
    return next(name for name in scenario if name != "service")


def rows(table_checks: list[Check], samples: Samples) -> list[dict]:
    """The table's content: per check, the two aggregated values, their ratio and the verdict."""
    result = []
    for check in table_checks:
        scenario = samples[check.scenario]
        service = aggregate(scenario["service"], check.metric)
        reference = aggregate(scenario[reference_name(scenario)], check.metric)
        verdict = check.passes(service, reference)
        result.append({
            "label": check.label, "scenario": check.scenario, "metric": check.metric, "unit": check.unit,
            "service": service, "reference": reference,
            "ratio": None if check.metric in WORST_CASE_METRICS else _ratio(service, reference),
            "target": check.target(),
            "result": "-" if check.bound is None else {True: "PASS", False: "MISS", None: "n/a"}[verdict],
        })
    return result


def problems(samples: Samples, nginx_errors: str) -> list[str]:
    """Every wrk non-2xx count, socket error and failure, by scenario, contender and round."""
    found = []
    for key, contenders in samples.items():
        for name, measurements in contenders.items():
            for round_index, measurement in enumerate(measurements):
                found += [f"{key} / {name} / round {round_index + 1}: {p}" for p in measurement.problems]
    if nginx_errors.strip():
        found.append("nginx error log:\n" + "\n".join("    " + line for line in nginx_errors.strip().splitlines()[:20]))
    return found


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"


def memory_lines(samples: Samples) -> list[str]:
    """The service's resident memory before and after each workload (its first and worst rounds).

    One process serves the whole run, as a user's server lives, so memory that
    a workload keeps shows up in the workloads after it.
    """
    lines = ["Service RSS (MiB) before -> peak -> after each workload, every round:"]
    for key, contenders in samples.items():
        rounds = [m.values for m in contenders.get("service", []) if "rss_after_mib" in m.values]
        if rounds:
            shown = "   ".join(f"{values['rss_before_mib']:6.1f} -> {values['rss_peak_mib']:6.1f} -> "
                               f"{values['rss_after_mib']:6.1f}" for values in rounds)
            lines.append(f"  {key:<13} {shown}")
    return lines


def render(table_rows: list[dict], header: list[str], found: list[str], memory: list[str]) -> str:
    """The printed report: context, the table, and whatever looked wrong."""
    columns = f"{'scenario':<56} {'unit':<8} {'service':>9} {'nginx':>9} {'ratio':>6}  {'target':<14} result"
    lines = [*header, "", columns, "-" * len(columns)]
    for row in table_rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(f"{row['label']:<56} {row['unit']:<8} {_number(row['service']):>9} "
                     f"{_number(row['reference']):>9} {ratio:>6}  {row['target']:<14} {row['result']}")
    lines += ["",
              "ratio = service / nginx. Upload row: the 'nginx' column is the reference instead, curl sending",
              "the same multipart body to a loopback socket that discards it (nginx has no upload to compare).",
              "S3 rows: the service over a SeaweedFS store; its ranges against the same ranges fetched from",
              "SeaweedFS directly (presigned URL), its upload against the sink. The issue sets no targets there.",
              "Page rows: the same service with the big library against itself with the small one ('nginx' column).",
              "Medians over the rounds; CPU and RSS rows show the worst round. MB = 10^6 bytes.", "",
              *memory, ""]
    lines += ["Problems (wrk non-2xx, socket errors, failures):", *("  " + p for p in found)] if found else \
        ["No problems: no wrk non-2xx responses or socket errors, no failed probes or uploads."]
    return "\n".join(lines)


def service_settings(data_dir: Path, token: str) -> dict[str, str]:
    """What the service is told besides the README's defaults: where the files are, that random bytes
    (no video) may be uploaded, and the token for writes."""
    return {"VIDEO_STORAGE_DIR": str(data_dir), "VIDEO_ACCEPT_ANY_FILE": "true", "VIDEO_API_TOKEN": token}


def header(profile: Profile, quick: bool, nginx: str, load_before: tuple[float, float, float],
           settings: list[str]) -> list[str]:
    """What was compared on what machine: without it a table from a noisy 2-core box reads as absolute truth."""
    load_now = os.getloadavg()
    return [
        f"service: python {' '.join(SERVE)} as make run starts it (uvicorn {uvicorn.__version__}, httptools, "
        f"python {platform.python_version()}), one process for the whole run, README defaults but "
        f"{', '.join(settings)}; reference: {nginx}, 1 process, sendfile on, access log off",
        f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), servers not pinned; "
        f"wrk -t{WRK_THREADS} on the same machine; load average {load_before[0]:.2f} before, {load_now[0]:.2f} after",
        f"rounds: {profile.rounds}, {profile.duration_s:g} s per wrk run; files {_size(profile.full_bytes)} and "
        f"{_size(profile.big_bytes)}" + ("; --quick: a smoke test, not a measurement" if quick else ""),
    ]


def write_json(path: Path, profile: Profile, head: list[str], table_rows: list[dict], samples: Samples,
               found: list[str]) -> None:
    """Every sample besides the table, so a later look can tell noise from a real difference."""
    document = {
        "header": head,
        "profile": asdict(profile),
        "cores": os.cpu_count(),
        "rows": table_rows,
        "samples": {key: {name: [asdict(m) for m in measurements] for name, measurements in contenders.items()}
                    for key, contenders in samples.items()},
        "problems": found,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Prepare files, start both servers, run the rounds, print the table; always stop the servers."""
    profile, args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    load_before = os.getloadavg()
    with ExitStack() as stack:
        data_dir = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-data-")))
        data_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-nginx-")))
        print(f"preparing test files in {data_dir} ...", file=sys.stderr, flush=True)
        full_file = ensure_file(data_dir / f"bench-{profile.full_bytes // MIB}MiB.bin", profile.full_bytes)
        big_file = ensure_file(data_dir / f"bench-{profile.big_bytes // MIB}MiB.bin", profile.big_bytes)
        for path in (full_file, big_file):
            warm_page_cache(path)

        token = secrets.token_hex(16)
        settings = service_settings(data_dir, token)
        service = ServerProcess(settings)
        stack.callback(service.stop)
        nginx = NginxProcess(NGINX_TEMPLATE, workdir, root=data_dir.resolve())
        stack.callback(nginx.stop)

        s3 = None
        if args.only is None or any(key.startswith("s3_") for key in args.only):
            print("starting SeaweedFS and a service over it ...", file=sys.stderr, flush=True)
            s3 = start_s3_contenders(stack, big_file, token)
        pages = None
        if args.only is None or args.only & PAGE_KEYS:
            pages = PageLibrary(data_dir, service.url, settings)
            stack.callback(pages.remove)
        ladder_clip = None
        if args.only is None or "ladder" in args.only:
            print("making the 1080p clip for the ladder row (kept in the data folder) ...", file=sys.stderr, flush=True)
            ladder_clip = ensure_clip(data_dir / f"bench-ladder-{profile.ladder_seconds}s-1080p.mp4",
                                      profile.ladder_seconds)
        bench = Bench(profile, Server("service", service.url, service.process.pid),
                      Server("nginx", nginx.url, nginx.process.pid), full_file, big_file, token, s3, pages,
                      ladder_clip=ladder_clip)
        for server in (bench.service, bench.nginx):
            bench.etags[server.name] = check_server(server, bench)
        print(f"running {profile.rounds} round(s) ...", file=sys.stderr, flush=True)
        plan = [[scenario for scenario in stage if args.only is None or scenario.key in args.only]
                for stage in stages(bench)]
        processes = {"service": service.process, "nginx": nginx.process}
        if s3 is not None:
            processes.update({"S3 service": s3.service, "SeaweedFS": s3.seaweed})
        samples = run_stages(bench, plan, processes)
        found = problems(samples, nginx.errors())

    head = header(profile, args.quick, nginx_version(), load_before, list(settings))
    table_rows = rows([check for check in checks(profile) if check.scenario in samples], samples)
    print(render(table_rows, head, found, memory_lines(samples)))
    if args.json:
        write_json(args.json, profile, head, table_rows, samples, found)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the servers were stopped and temporary files removed", file=sys.stderr)
        sys.exit(130)
