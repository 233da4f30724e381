"""VIDEO_* environment variables become one Settings object, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import Settings, SettingsError


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
     {"VIDEO_X_ACCEL_LOCATION": "files"}, {"VIDEO_MEDIA_WORKERS": "0"}],
)
def test_unusable_values_are_refused_with_the_variable_named(environ):
    with pytest.raises(SettingsError, match=next(iter(environ))):
        Settings.from_env(environ)
