"""Fixtures shared by every test: stores, the app in-process, real servers, real videos, the async backend,
the catalog's databases."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.core.settings import Settings
from tests.helpers import processed, put_file, store_snapshot
from tests.media import make_video
from tests.browser import BROWSER_WAIT_MS
from tests.postgres import PostgresServer, installed_binaries
from tests.servers import ServerProcess, WorkerProcess


class StartingClient(TestClient):
    """A client that starts its app (runs its lifespan) on its first request and keeps it running until stopped."""

    started = False

    def send(self, *args: Any, **kwargs: Any) -> httpx.Response:
        if not self.started:
            self.started = True
            self.__enter__()
        return super().send(*args, **kwargs)

    def stop(self) -> None:
        if self.started:
            self.__exit__(None, None, None)
        else:
            self.close()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def before(store_dir: Path, client: StartingClient) -> dict[str, bytes]:
    """What the store holds before a test's write: one file put there by hand, described (its sidecar
    written by the server's worker) so that no background work changes the store during the test."""
    put_file(store_dir, "existing.mp4", b"not even a video, but stored by hand")
    processed(client, "existing.mp4")
    return store_snapshot(store_dir)


@pytest.fixture
def stream_shortcut() -> bool:
    """Whether in-process apps answer streams through the shortcut (as served) or the framework's route alone."""
    return True


@pytest.fixture
def make_client(store_dir: Path, stream_shortcut: bool) -> Iterator[Callable[..., StartingClient]]:
    """In-process clients for apps built with the given setting overrides, each started as a server starts
    (its lifespan: the catalog brought up to date, the embedded media workers running) by its first request,
    so that a test can fill the store first, and stopped after."""
    clients: list[StartingClient] = []

    def build(**overrides: object) -> StartingClient:
        settings = Settings(storage_dir=store_dir, **overrides)
        client = StartingClient(create_app(settings, stream_shortcut=stream_shortcut), base_url="http://testserver")
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.stop()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def live_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-store")


@pytest.fixture(scope="session")
def live_server(live_store: Path) -> Iterator[ServerProcess]:
    """One uvicorn process for the session, serving ``live_store``."""
    server = ServerProcess({"VIDEO_STORAGE_DIR": str(live_store), "VIDEO_MAX_UPLOAD_BYTES": str(64 * 1024**2)})
    yield server
    server.stop()


def _server_starter(base_env: dict[str, str]) -> Iterator[Callable[..., ServerProcess]]:
    """Yield a function that starts uvicorn processes with ``base_env`` plus extra settings."""
    servers: list[ServerProcess] = []

    def start(port: int | None = None, **env: str) -> ServerProcess:
        server = ServerProcess({**base_env, **env}, port=port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def start_server(store_dir: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start uvicorn processes with extra ``VIDEO_*`` settings over this test's local store."""
    yield from _server_starter({"VIDEO_STORAGE_DIR": str(store_dir)})


@pytest.fixture
def start_worker(store_dir: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``python -m app worker`` processes over this test's local store (or the store their settings
    name), stopped after the test."""
    workers: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        worker = WorkerProcess({"VIDEO_STORAGE_DIR": str(store_dir), **env})
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.stop()


@pytest.fixture
def live(live_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def sample_mp4(media_dir: Path) -> Path:
    """A 2-second H.264/AAC MP4 with its index first, as uploads are stored: made once."""
    return make_video(media_dir / "sample.mp4", container_options={"movflags": "faststart"})


@pytest.fixture(scope="session")
def sample_mp4_moov_last(media_dir: Path) -> Path:
    """The same kind of MP4 with its index at the end, as PyAV and many cameras write it."""
    return make_video(media_dir / "moov-last.mp4")


@pytest.fixture(scope="session")
def sample_webm(media_dir: Path) -> Path:
    """A 2-second VP9/Opus WebM."""
    return make_video(media_dir / "sample.webm", video_codec="libvpx-vp9", audio_codec="libopus")


@pytest.fixture
def anyio_backend() -> str:
    """Tests marked ``anyio`` run on asyncio, as the service does."""
    return "asyncio"


@pytest.fixture
def payload() -> bytes:
    """Incompressible bytes whose every offset is distinguishable."""
    return os.urandom(300_000)


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for each module that uses it (Debian's build; Playwright cannot download one here).

    Not one for the session: Playwright's sync API keeps an event loop running in the main thread while it
    is started, and the async tests of the modules that run after would find it there.
    """
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    # Playwright's assertions wait 5 s by default: less than a busy machine may take to start the media
    # workers that a page is waiting on. Pages wait as long (the ``page`` fixture).
    expect.set_options(timeout=BROWSER_WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(BROWSER_WAIT_MS)
    yield page
    context.close()


@pytest.fixture(scope="session")
def large_mp4(media_dir: Path) -> Path:
    """About 40 MB of grainy H.264: big enough that a player seeks with new range requests."""
    return make_video(media_dir / "large.mp4", seconds=10, width=640, height=360, noise=True,
                      container_options={"movflags": "faststart"})


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory):
    """One real S3 server (SeaweedFS, signatures checked) for the session."""
    from tests.s3 import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def versioned_bucket(seaweed) -> str:
    """A bucket of the session's SeaweedFS with versioning enabled."""
    seaweed.versioned_bucket("versioned-videos")
    return "versioned-videos"


@pytest.fixture(params=["local", "s3"])
def store_env(request: pytest.FixtureRequest, store_dir: Path) -> dict[str, str]:
    """The settings of a store of either kind, empty and private to this test."""
    if request.param == "local":
        return {"VIDEO_STORAGE_DIR": str(store_dir)}
    seaweed = request.getfixturevalue("seaweed")
    prefix = f"t{abs(hash(request.node.nodeid)):x}"
    return {**seaweed.env("videos", prefix), "VIDEO_STAGING_DIR": str(store_dir.parent / "staging")}


@pytest.fixture
def start_service(store_env: dict[str, str]) -> Iterator[Callable[..., ServerProcess]]:
    """Start service instances over this test's store (local or S3), with extra settings."""
    yield from _server_starter(store_env)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (Debian's), stopped at its end whatever the outcome.

    Without PostgreSQL installed its tests fail in CI, where scripts/install-system-deps.sh should have
    installed it, and are skipped elsewhere.
    """
    binaries = installed_binaries()
    if binaries is None:
        reason = "PostgreSQL is not installed (scripts/install-system-deps.sh installs Debian's postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    server = PostgresServer(binaries)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty PostgreSQL database, private to this test."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty catalog database of either backend, private to this test."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    return request.getfixturevalue("postgres_url")
