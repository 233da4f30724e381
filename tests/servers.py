"""Real server processes on free loopback ports: the service under uvicorn, its workers, and nginx.

Shared by the test fixtures and the benchmark so both talk to servers the way
users do: over TCP, through the programs that run them in production.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from string import Template

import httpx

REPO = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


START_TIMEOUT = 60.0
"""Seconds a process may take to become ready: far above the second or two it takes, so that only a process
that hangs fails a test, not one slowed down by a busy machine."""


class ManagedProcess:
    """A child process that counts as started once ``ready()`` is true, and stops on request.

    A Python child runs with ``PYTHONFAULTHANDLER`` set: one that does not become ready in time is stopped
    with SIGABRT, so that its stderr shows where every thread of it was stuck.
    """

    def __init__(self, command: list[str], ready: Callable[[], bool], *, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = START_TIMEOUT, **popen: object) -> None:
        env = {**(os.environ if env is None else env), "PYTHONFAULTHANDLER": "1"}
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, **popen)
        started = time.monotonic()
        while not ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {self.process.returncode}")
            if time.monotonic() - started > timeout:
                self._abort()
                raise RuntimeError(f"{command[0]} did not become ready in {timeout} s (its threads' stacks are in "
                                   "its stderr)")
            time.sleep(0.05)

    def _abort(self) -> None:
        """Stop a process that hangs, with a dump of its threads' stacks where it is a Python one."""
        self.process.send_signal(signal.SIGABRT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def answers(url: str) -> bool:
    """Whether a GET of ``url`` is answered with 200: the server there is up."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


SERVE = ("-m", "app", "serve")
"""How ``make run`` starts the service."""
PLAIN_UVICORN = ("-m", "uvicorn", "app.main:app")
"""The application under uvicorn's own defaults, which must keep working."""


class ServerProcess(ManagedProcess):
    """The service as ``make run`` starts it (or as ``runner`` says), with ``VIDEO_*`` settings of the caller's choosing."""

    def __init__(self, env: dict[str, str], port: int | None = None, runner: tuple[str, ...] = SERVE) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, *runner, "--host", "127.0.0.1", "--port", str(self.port)]
        super().__init__(command, lambda: answers(self.url + "/healthz"), cwd=REPO, env={**os.environ, **env})


class WorkerProcess(ManagedProcess):
    """``python -m app worker`` with ``VIDEO_*`` settings, in a session of its own so that it dies with its
    media workers."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__([sys.executable, "-m", "app", "worker"], lambda: True, cwd=REPO, env={**os.environ, **env},
                         start_new_session=True, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        """SIGKILL the worker and its media processes, as a machine that dies would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class NginxProcess(ManagedProcess):
    """nginx as one process on a free loopback port, from a config template.

    The template gets ``$port`` and ``$workdir`` plus the caller's values;
    everything nginx writes stays in ``workdir``.
    """

    def __init__(self, template: Path, workdir: Path, port: int | None = None, **values: object) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.error_log = workdir / "error.log"
        config = workdir / "nginx.conf"
        config.write_text(Template(template.read_text()).substitute(port=self.port, workdir=workdir, **values))
        super().__init__([NGINX, "-p", str(workdir), "-e", str(self.error_log), "-c", str(config)],
                         lambda: _listening(self.port))

    def errors(self) -> str:
        """What nginx logged at warn level or above (empty when all went well)."""
        return self.error_log.read_text() if self.error_log.exists() else ""
