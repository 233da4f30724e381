"""What the benchmark reads about server processes: versions, CPU time and memory from /proc.

Both servers are started with the launchers the live tests use
(``tests.servers``); nginx gets a config of its own in a temporary directory
so the machine's nginx set-up is neither used nor touched.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from tests.servers import NGINX

RSS_SAMPLE_INTERVAL_S = 0.05
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def nginx_version() -> str:
    """``nginx/1.22.1``: nginx prints its version on stderr."""
    result = subprocess.run([NGINX, "-v"], capture_output=True, text=True, timeout=10)
    return result.stderr.strip().removeprefix("nginx version: ")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (utime + stime of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; the fields after it are fixed: utime is the 14th field.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_mib(pid: int) -> float:
    """Resident memory of the process now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssSampler:
    """Peak VmRSS of a process while the ``with`` block runs, sampled every 50 ms.

    VmHWM would be exact but holds the peak of the process's whole life, so it
    cannot tell one scenario from the ones before it; sampling can.
    """

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_mib = 0.0

    def __enter__(self) -> RssSampler:
        self.peak_mib = rss_mib(self._pid)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, rss_mib(self._pid))

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_INTERVAL_S):
            self.peak_mib = max(self.peak_mib, rss_mib(self._pid))
