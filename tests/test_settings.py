"""VIDEO_* environment variables become one Settings object, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import S3Settings, Settings, SettingsError


def test_defaults_use_the_embedded_local_store():
    settings = Settings.from_env({})
    assert settings.storage_dir == Path("assets/video")
    assert settings.public_base_url == ""


def test_variables_are_read_with_their_types():
    settings = Settings.from_env({
        "VIDEO_STORAGE_DIR": "/srv/videos",
        "VIDEO_MAX_UPLOAD_BYTES": "1_000_000",
        "VIDEO_TRUST_PROXY_HEADERS": "yes",
        "VIDEO_MAX_RANGES": "4",
        "VIDEO_CACHE_CONTROL": "private, max-age=10",
        "VIDEO_CORS_ORIGINS": "https://a.example, https://b.example/",
        "VIDEO_DELIVERY": "x-accel",
    })
    assert settings == Settings(storage_dir=Path("/srv/videos"), max_upload_bytes=1_000_000,
                                trust_proxy_headers=True, max_ranges=4, cache_control="private, max-age=10",
                                cors_origins=("https://a.example", "https://b.example"), delivery="x-accel")


def test_variables_without_the_prefix_are_ignored():
    assert Settings.from_env({"MAX_UPLOAD_BYTES": "1"}) == Settings()


@pytest.mark.parametrize(
    "environ",
    [{"VIDEO_MAX_UPLOAD_BYTES": "lots"}, {"VIDEO_MAX_RANGES": "0"}, {"VIDEO_TRUST_PROXY_HEADERS": "maybe"},
     {"VIDEO_PUBLIC_BASE_URL": "videos.example"}, {"VIDEO_CHUNK_BYTES": "-1"}, {"VIDEO_DELIVERY": "carrier-pigeon"},
     {"VIDEO_X_ACCEL_LOCATION": "files"}, {"VIDEO_MEDIA_WORKERS": "0"}, {"VIDEO_MAX_CONNECTIONS": "0"},
     {"VIDEO_MAX_HEAD_BYTES": "4096"}, {"VIDEO_MIN_FREE_BYTES": "-1"}, {"VIDEO_STORYBOARD_TILES": "201"},
     {"VIDEO_STORYBOARD_TILES": "-1"}, {"VIDEO_STORYBOARD_TILE_WIDTH": "8"},
     {"VIDEO_STORYBOARD_MIN_INTERVAL_MS": "0"}],
)
def test_unusable_values_are_refused_with_the_variable_named(environ):
    with pytest.raises(SettingsError, match=next(iter(environ))):
        Settings.from_env(environ)


@pytest.mark.parametrize("values", [{"max_ranges": 0}, {"chunk_bytes": -1}, {"delivery": "redirect"},
                                    {"storage_url": "s3://"}, {"public_base_url": "videos.example"}])
def test_settings_built_in_code_are_checked_as_well(values):
    with pytest.raises(SettingsError):
        Settings(**values)


def test_the_s3_connection_is_read_as_one_group():
    settings = Settings.from_env({"VIDEO_STORAGE_URL": "s3://bucket/videos", "VIDEO_S3_ENDPOINT": "http://127.0.0.1:9000",
                                  "VIDEO_S3_REGION": "eu-west-1", "VIDEO_S3_ACCESS_KEY_ID": "key",
                                  "VIDEO_S3_SECRET_ACCESS_KEY": "secret"})
    assert settings.s3 == S3Settings(endpoint="http://127.0.0.1:9000", region="eu-west-1", access_key_id="key",
                                     secret_access_key="secret")


def test_a_choice_names_the_values_it_takes():
    with pytest.raises(SettingsError, match="proxy, redirect, x-accel"):
        Settings.from_env({"VIDEO_DELIVERY": "carrier-pigeon"})


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:////srv/catalog.db",
                                 "postgresql+asyncpg://videos:secret@db.internal:5432/videos"])
def test_a_catalog_on_either_installed_driver_is_accepted(url):
    assert Settings.from_env({"VIDEO_DATABASE_URL": url}).catalog_url == url
