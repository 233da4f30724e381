"""The catalog: a database that mirrors the store, so that a page of the library costs what it holds.

On real databases of both backends, a SQLite file and a PostgreSQL server
(the ``database_url`` fixture): in-process, through ``python -m app migrate``
and ``reindex``, and against real server processes for the scans. What is
about SQLite alone (where its file lives, its query plans) runs on SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import delete, inspect, select, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from app.catalog.catalog import Catalog, Version, page_statement
from app.catalog.database import MIGRATIONS, NEWEST_REVISION, make_engine, migrate, migrate_apart
from app.catalog.tables import JobRow, VideoRow
from app.jobs.queue import BACKGROUND
from app.core.settings import Settings, SettingsError
from app.storage.base import Entry
from tests.helpers import create, in_database, patch, put, put_file, upload, wait_for
from tests.media import make_video
from tests.servers import REPO

DEEP_LIBRARY = 20_000


def catalog_file(store: Path) -> Path:
    return store / ".catalog" / "catalog.db"


@pytest.fixture
def client(make_client: Callable[..., TestClient], database_url: str) -> TestClient:
    """The app in-process over this test's store, its catalog in an empty database of either backend."""
    return make_client(database_url=database_url)


def listed(client) -> list[str]:
    return [video["name"] for video in client.get("/video", params={"limit": 500}).json()["videos"]]


def admin(command: str, store: Path, database_url: str) -> subprocess.CompletedProcess:
    """``python -m app COMMAND`` over the local store ``store`` and the catalog at ``database_url``."""
    return subprocess.run([sys.executable, "-m", "app", command], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "VIDEO_STORAGE_DIR": str(store), "VIDEO_DATABASE_URL": database_url},
                          timeout=60, check=True)


def catalogued(database_url: str) -> list[str]:
    return in_database(database_url, lambda connection: sorted(connection.scalars(select(VideoRow.name))))


def schema(connection: Connection) -> tuple[set[str], set[str], str]:
    """The tables, the indexes of the videos and jobs tables, and the revision of the database ``connection``
    opens."""
    found = inspect(connection)
    indexes = {index["name"] for table in ("videos", "jobs") for index in found.get_indexes(table)}
    return (set(found.get_table_names()), indexes, connection.scalar(text("SELECT version_num FROM alembic_version")))


# --- the schema -----------------------------------------------------------------------------------

def test_migrate_creates_the_schema_in_an_empty_database(store_dir, database_url):
    admin("migrate", store_dir, database_url)
    tables, indexes, revision = in_database(database_url, schema)
    assert {"videos", "jobs", "alembic_version"} <= tables
    assert {"ix_videos_newest", "ix_videos_title", "ix_videos_largest", "ix_jobs_claim"} <= indexes
    assert revision == NEWEST_REVISION


def test_upgrading_asks_for_the_renditions_of_every_video_described_before(database_url):
    migrate(database_url, "0006")
    row = ("INSERT INTO videos (id, name, title, description, size, modified, duration, etag, problem, has_poster, "
           "created, updated) VALUES (:id, :name, 'title', '', 1, 0, 0, :etag, :problem, false, 0, 0)")
    in_database(database_url, lambda connection: connection.execute(text(row), [
        {"id": "a", "name": "described.mp4", "etag": '"v1"', "problem": None},
        {"id": "b", "name": "undescribed.mp4", "etag": None, "problem": None},
        {"id": "c", "name": "broken.mp4", "etag": '"v2"', "problem": "not a video file FFmpeg can read"}]))
    migrate(database_url)
    jobs = in_database(database_url, lambda connection: connection.execute(
        select(JobRow.video, JobRow.kind, JobRow.etag, JobRow.status, JobRow.priority)).all())
    assert [tuple(job) for job in jobs] == [("described.mp4", "renditions", '"v1"', "queued", BACKGROUND)]


def test_upgrading_asks_for_the_storyboard_of_every_video_described_before_that_has_pictures(database_url):
    migrate(database_url, "0007")
    row = ("INSERT INTO videos (id, name, title, description, size, modified, duration, etag, media, problem, "
           "has_poster, created, updated) VALUES (:id, :name, 'title', '', 1, 0, 0, :etag, :media, :problem, false, "
           "0, 0)")
    in_database(database_url, lambda connection: connection.execute(text(row), [
        {"id": "a", "name": "film.mp4", "etag": '"v1"', "media": '{"width": 320, "height": 240}', "problem": None},
        {"id": "b", "name": "song.m4a", "etag": '"v2"', "media": '{"width": null, "height": null}', "problem": None},
        {"id": "c", "name": "undescribed.mp4", "etag": None, "media": None, "problem": None},
        {"id": "d", "name": "broken.mp4", "etag": '"v3"', "media": None, "problem": "not a video file"}]))
    migrate(database_url)
    jobs = in_database(database_url, lambda connection: connection.execute(
        select(JobRow.video, JobRow.kind, JobRow.etag, JobRow.status, JobRow.priority)).all())
    assert [tuple(job) for job in jobs] == [("film.mp4", "storyboard", '"v1"', "queued", BACKGROUND)]


def test_the_revision_the_service_checks_for_is_the_newest_of_its_migrations():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == NEWEST_REVISION


MIGRATE_AND_TELL = ("import asyncio, sys; from app.catalog.catalog import Catalog; "
                    "from app.catalog.database import make_engine; "
                    "asyncio.run(Catalog(make_engine(sys.argv[1])).migrate()); "
                    "print(sorted({name.split('.')[0] for name in sys.modules} & {'alembic', 'mako'}))")
"""A process that migrates the database named by its argument as the service does, and says whether it
loaded Alembic and Mako to do so."""


@pytest.mark.parametrize(("migrated_before", "loaded"), [(False, "['alembic', 'mako']"), (True, "[]")])
def test_a_catalog_already_up_to_date_is_checked_without_loading_alembic(database_url, migrated_before, loaded):
    if migrated_before:
        migrate(database_url)
    told = subprocess.run([sys.executable, "-c", MIGRATE_AND_TELL, database_url], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    assert told.stdout.strip() == loaded
    assert in_database(database_url, schema)[2] == NEWEST_REVISION


def test_migrating_apart_brings_the_database_up_to_date(database_url):
    migrate_apart(database_url)
    assert in_database(database_url, schema)[2] == NEWEST_REVISION


def test_a_migration_apart_that_fails_raises(tmp_path):
    (tmp_path / "a file").write_text("where the catalog's folder would be made")
    with pytest.raises(subprocess.CalledProcessError):
        migrate_apart(f"sqlite+aiosqlite:///{tmp_path / 'a file' / 'catalog.db'}")


BUILD_AND_TELL = ("import sys; from app.core.settings import Settings; from app.services import Services; "
                  "Services.build(Settings.from_env()); "
                  "print(*(d for d in ('sqlite', 'postgresql') if 'sqlalchemy.dialects.' + d in sys.modules))")
"""A process that builds the service's parts (catalog, jobs, claims) for the ``VIDEO_*`` settings it is given,
and says which of SQLAlchemy's SQLite and PostgreSQL dialects it loaded."""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_only_the_dialect_of_the_catalog_s_database_is_loaded(store_dir, request, database):
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else Settings().catalog_url
    told = subprocess.run([sys.executable, "-c", BUILD_AND_TELL], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "VIDEO_STORAGE_DIR": str(store_dir), "VIDEO_DATABASE_URL": url},
                          timeout=60, check=True)
    assert told.stdout.split() == [database]


MIGRATE_ON_CUE = ("import sys; from app.catalog.database import migrate; "
                  "print('ready', flush=True); sys.stdin.read(); migrate(sys.argv[1])")
"""A process that loads the catalog's code, says so, and migrates the database named by its argument
when its standard input closes: processes started alike migrate at the same moment."""


def test_two_processes_migrating_one_empty_postgresql_database_at_once_both_succeed(postgres_url):
    processes = [subprocess.Popen([sys.executable, "-c", MIGRATE_ON_CUE, postgres_url], cwd=REPO, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for _ in range(2)]
    assert [process.stdout.readline() for process in processes] == ["ready\n"] * 2
    for process in processes:
        process.stdin.close()
    outcomes = [(process.wait(timeout=60), process.stdout.read()) for process in processes]  # their output fits a pipe
    assert outcomes == [(0, "")] * 2
    _, _, revision = in_database(postgres_url, schema)
    assert revision == NEWEST_REVISION


@pytest.mark.anyio
async def test_a_video_of_more_than_2_gib_is_catalogued_with_its_size(database_url):
    catalog = Catalog(make_engine(database_url))
    await catalog.migrate()
    try:
        await catalog.record(Version("long.mp4", 5 * 1024**3, 1_700_000_000.0, "v1", None, None, False))
        assert (await catalog.get("long.mp4")).size == 5 * 1024**3
    finally:
        await catalog.close()


def test_the_default_catalog_of_a_local_store_is_in_its_hidden_folder(store_dir):
    url = Settings(storage_dir=store_dir).catalog_url
    assert url == f"sqlite+aiosqlite:///{catalog_file(store_dir).absolute()}"


def test_the_default_catalog_of_an_s3_store_is_in_its_staging_folder(tmp_path):
    settings = Settings(storage_url="s3://videos/library", staging_dir=str(tmp_path))
    assert settings.catalog_url == f"sqlite+aiosqlite:///{tmp_path / '.catalog' / 'catalog.db'}"


def test_a_database_url_without_an_installed_async_driver_is_refused(store_dir):
    with pytest.raises(SettingsError, match="VIDEO_DATABASE_URL"):
        Settings.from_env({"VIDEO_DATABASE_URL": "postgresql://localhost/videos"})


# --- pages ----------------------------------------------------------------------------------------

def test_cursor_pages_walk_every_video_once_in_library_order(client, store_dir):
    # Seven files, two pairs sharing a modification time: the order is newest first, ties by name.
    times = {"a.mp4": 5, "b.mp4": 7, "c.mp4": 7, "d.mp4": 1, "e.mp4": 3, "f.mp4": 3, "g.mp4": 9}
    for name, seconds in times.items():
        os.utime(put_file(store_dir, name, name.encode()), (1_700_000_000 + seconds,) * 2)
    expected = sorted(times, key=lambda name: (-times[name], name))
    walked, cursor, pages = [], None, 0
    while True:
        page = client.get("/video", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        walked += [video["name"] for video in page["videos"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == expected
    assert pages == 3


def walk(client, **params) -> list[str]:
    """The names of every page of GET /video with ``params``, following next_cursor to the end."""
    walked, cursor = [], None
    while True:
        page = client.get("/video", params={**params, **({"cursor": cursor} if cursor else {})}).json()
        walked += [video["name"] for video in page["videos"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return walked


def test_title_pages_walk_every_video_once_from_a_to_z(client, store_dir):
    for name in ("c.mp4", "a.mp4", "b.mp4", "d.mp4", "e.mp4"):
        put_file(store_dir, name, b"x")
    assert client.patch("/video/d.mp4", json={"title": "Aardvark"}).status_code == 200
    assert walk(client, sort="title", limit=2) == ["d.mp4", "a.mp4", "b.mp4", "c.mp4", "e.mp4"]


def test_size_pages_walk_every_video_once_largest_first_ties_by_name(client, store_dir):
    sizes = {"a.mp4": 3, "b.mp4": 9, "c.mp4": 3, "d.mp4": 1, "e.mp4": 9}
    for name, size in sizes.items():
        put_file(store_dir, name, b"x" * size)
    assert walk(client, sort="size", limit=2) == ["b.mp4", "e.mp4", "a.mp4", "c.mp4", "d.mp4"]


def test_a_cursor_of_one_order_is_400_in_another(client, store_dir):
    for name in ("a.mp4", "b.mp4"):
        put_file(store_dir, name, b"x")
    cursor = client.get("/video", params={"limit": 1, "sort": "title"}).json()["next_cursor"]
    answer = client.get("/video", params={"limit": 1, "cursor": cursor, "sort": "size"})
    assert answer.status_code == 400
    assert "cursor" in answer.json()["detail"]


def test_an_order_the_catalog_does_not_offer_is_422(client):
    assert client.get("/video", params={"sort": "name; DROP TABLE videos"}).status_code == 422


def test_a_cursor_page_answers_no_offset(client, store_dir):
    for name in ("a.mp4", "b.mp4"):
        put_file(store_dir, name, b"x")
    cursor = client.get("/video", params={"limit": 1}).json()["next_cursor"]
    page = client.get("/video", params={"limit": 1, "cursor": cursor}).json()
    assert (page["offset"], page["next_offset"], page["next_cursor"], page["total"]) == (None, None, None, 2)


def test_a_cursor_this_server_did_not_hand_out_is_400(client):
    answer = client.get("/video", params={"cursor": "not-a-cursor"})
    assert answer.status_code == 400
    assert "cursor" in answer.json()["detail"]


@pytest.mark.anyio
@pytest.mark.parametrize(("sort", "searched"), [("newest", "ix_videos_newest (modified<?)"),
                                                ("title", "ix_videos_title (title>?)"),
                                                ("size", "ix_videos_largest (size<?)"),
                                                ("duration", "ix_videos_longest (duration<?)")])
async def test_a_deep_cursor_page_of_a_large_catalog_is_a_search_of_its_order_s_index(tmp_path, sort, searched):
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(make_engine(url))
    await catalog.migrate()
    await catalog.mirror([Entry(f"v{index:05}.mp4", index // 3, 1_700_000_000.0 + index // 3)
                          for index in range(DEEP_LIBRARY)], listed_at=0)
    deep = (await catalog.page(20, offset=15_000, sort=sort)).next_cursor
    following = await catalog.page(20, deep, sort=sort)
    offset_page = await catalog.page(20, offset=15_020, sort=sort)
    await catalog.close()
    assert [row.name for row in following.videos] == [row.name for row in offset_page.videos]
    sql = str(page_statement(20, deep, sort=sort).compile(dialect=sqlite_dialect.dialect(),
                                                          compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(tmp_path / "catalog.db") as database:
        plan = " | ".join(row[-1] for row in database.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert f"SEARCH videos USING INDEX {searched}" in plan
    assert "TEMP B-TREE" not in plan


def test_duration_pages_walk_every_video_once_longest_first(client, tmp_path):
    for name, seconds in (("short.mp4", 0.4), ("long.mp4", 1.2), ("middle.mp4", 0.8)):
        assert upload(client, make_video(tmp_path / name, seconds=seconds, audio_codec=None)).status_code == 201
    assert walk(client, sort="duration", limit=2) == ["long.mp4", "middle.mp4", "short.mp4"]


def test_a_video_whose_duration_is_not_known_yet_comes_last_by_duration(client, store_dir, tmp_path):
    assert upload(client, make_video(tmp_path / "known.mp4", seconds=0.4, audio_codec=None)).status_code == 201
    put_file(store_dir, "unknown.mp4", b"not described yet")
    client.get("/video/unknown.mp4")
    assert walk(client, sort="duration", limit=1) == ["known.mp4", "unknown.mp4"]


# --- search ---------------------------------------------------------------------------------------

def found(client, query: str, **params) -> list[str]:
    """The names ``GET /video?q=query`` finds, every page of them, in the order asked."""
    return walk(client, q=query, **params)


@pytest.fixture
def titled(client, store_dir) -> None:
    """Four videos with titles to search."""
    titles = {"a.mp4": "Holiday at the beach", "b.mp4": "Beach volleyball final", "c.mp4": "Mountain holiday",
              "d.mp4": "Été à Montréal"}
    for name in titles:
        put_file(store_dir, name, b"x")
    for name, title in titles.items():
        assert client.patch(f"/video/{name}", json={"title": title}).status_code == 200


def test_a_search_finds_the_videos_whose_title_holds_the_word(client, titled):
    assert found(client, "beach", sort="title") == ["b.mp4", "a.mp4"]


def test_a_search_finds_only_the_videos_that_hold_every_word(client, titled):
    assert found(client, "holiday beach") == ["a.mp4"]


def test_a_search_matches_the_start_of_a_word_in_any_case(client, titled):
    assert found(client, "HOLI", sort="title") == ["a.mp4", "c.mp4"]


def test_a_search_finds_words_with_letters_beyond_ascii(client, titled):
    assert found(client, "Montréal") == ["d.mp4"]


def test_a_search_finds_words_of_file_names(client, store_dir):
    for name in ("birthday-party.mp4", "garden.mp4"):
        put_file(store_dir, name, b"x")
    assert found(client, "party") == ["birthday-party.mp4"]


def test_a_search_follows_a_changed_title(client, titled):
    assert client.patch("/video/c.mp4", json={"title": "Glacier"}).status_code == 200
    assert (found(client, "glacier"), found(client, "mountain")) == (["c.mp4"], [])


def test_a_search_forgets_a_deleted_video(client, titled):
    assert client.delete("/video/a.mp4").status_code == 204
    assert found(client, "beach") == ["b.mp4"]


def test_a_search_pages_by_cursor_and_counts_what_it_finds(client, store_dir):
    for number in range(5):
        put_file(store_dir, f"match-{number}.mp4", b"x")
    put_file(store_dir, "other.mp4", b"x")
    first = client.get("/video", params={"q": "match", "limit": 2}).json()
    assert (first["total"], len(found(client, "match", limit=2))) == (5, 5)


@pytest.mark.parametrize("query", ['"', "beach*", "NEAR(beach holiday)", "beach & !holiday", "a:* | b", "-- ;"])
def test_query_syntax_in_a_search_is_only_a_separator(client, titled, query):
    answer = client.get("/video", params={"q": query})
    assert answer.status_code == 200
    assert {video["name"] for video in answer.json()["videos"]} <= {"a.mp4", "b.mp4"}


def test_a_search_of_no_words_finds_nothing(client, titled):
    assert found(client, "?!") == []


def test_an_empty_or_overlong_search_is_422(client):
    assert [client.get("/video", params={"q": query}).status_code for query in ("", "x" * 201)] == [422, 422]


# --- following the store --------------------------------------------------------------------------

def test_a_file_copied_in_by_hand_before_start_up_is_listed(start_server, store_dir, database_url):
    put_file(store_dir, "by-hand.mp4", b"copied in by hand")
    server = start_server(VIDEO_CATALOG_SCAN_SECONDS="3600", VIDEO_DATABASE_URL=database_url)
    assert "by-hand.mp4" in catalogued(database_url)  # the start-up scan, before the first request
    with httpx.Client(base_url=server.url) as http:
        assert listed(http) == ["by-hand.mp4"]


def test_a_file_copied_in_by_hand_appears_at_the_next_scan(start_server, store_dir, database_url):
    server = start_server(VIDEO_CATALOG_SCAN_SECONDS="1", VIDEO_DATABASE_URL=database_url)
    with httpx.Client(base_url=server.url) as http:
        assert listed(http) == []
        put_file(store_dir, "later.mp4", b"copied in by hand")
        assert wait_for(lambda: listed(http) == ["later.mp4"])


def test_a_file_deleted_by_hand_leaves_the_listing_at_the_next_scan(start_server, store_dir, database_url,
                                                                     sample_mp4):
    server = start_server(VIDEO_CATALOG_SCAN_SECONDS="1", VIDEO_DATABASE_URL=database_url)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        name = upload(http, sample_mp4).json()["name"]
        assert listed(http) == [name]
        (store_dir / name).unlink()
        assert wait_for(lambda: listed(http) == [])


def test_a_file_copied_in_by_hand_is_found_by_name_before_any_scan(client, store_dir):
    assert listed(client) == []  # the catalog is up and has scanned the empty store
    put_file(store_dir, "by-name.mp4", b"copied in by hand")
    assert client.get("/video/by-name.mp4").status_code == 200
    assert listed(client) == ["by-name.mp4"]


def test_a_file_deleted_by_hand_is_dropped_when_asked_for_by_name(client, store_dir):
    put_file(store_dir, "gone.mp4", b"copied in by hand")
    assert listed(client) == ["gone.mp4"]
    (store_dir / "gone.mp4").unlink()
    assert client.get("/video/gone.mp4").status_code == 404
    assert listed(client) == []


def test_reindex_restores_an_emptied_catalog(store_dir, database_url):
    for name in ("one.mp4", "two.webm"):
        put_file(store_dir, name, name.encode())
    admin("migrate", store_dir, database_url)
    in_database(database_url, lambda connection: connection.execute(delete(VideoRow)))
    assert catalogued(database_url) == []
    admin("reindex", store_dir, database_url)
    assert catalogued(database_url) == ["one.mp4", "two.webm"]


def test_two_servers_sharing_one_catalog_list_each_other_s_uploads_at_once(start_server, database_url, sample_mp4):
    # Two instances over one store, as a deployment behind a load balancer runs them; no scan between.
    first, second = (start_server(VIDEO_CATALOG_SCAN_SECONDS="3600", VIDEO_DATABASE_URL=database_url)
                     for _ in range(2))
    with httpx.Client(base_url=first.url, timeout=30) as into_first, httpx.Client(base_url=second.url) as from_second:
        name = upload(into_first, sample_mp4).json()["name"]
        assert listed(from_second) == [name]


# --- writes through the API -----------------------------------------------------------------------

def test_an_upload_is_listed_at_once(client, sample_mp4):
    assert listed(client) == []
    name = upload(client, sample_mp4).json()["name"]
    assert listed(client) == [name]


def test_a_resumable_upload_is_listed_at_once(client, sample_mp4):
    assert listed(client) == []
    data = sample_mp4.read_bytes()
    url = create(client, len(data), filename="resumed.mp4")
    assert patch(client, url, 0, data).status_code == 204
    assert listed(client) == ["resumed.mp4"]


def test_a_put_replacement_is_listed_at_once(client, sample_mp4, sample_webm):
    assert listed(client) == []
    put(client, "clip.mp4", sample_mp4)
    assert [video["size"] for video in client.get("/video").json()["videos"]] == [sample_mp4.stat().st_size]
    put(client, "clip.mp4", sample_webm)
    assert [video["size"] for video in client.get("/video").json()["videos"]] == [sample_webm.stat().st_size]


def test_a_delete_is_unlisted_at_once(client, sample_mp4):
    name = upload(client, sample_mp4).json()["name"]
    assert listed(client) == [name]
    assert client.delete(f"/video/{name}").status_code == 204
    assert listed(client) == []

