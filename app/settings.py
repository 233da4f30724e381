"""Every tunable of the service, read once from ``VIDEO_*`` environment variables.

One frozen object is built at start-up and handed to whatever needs it, so a
test can build the app with other settings without touching the environment
of the process, and nothing else in the code reads ``os.environ``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

PREFIX = "VIDEO_"
LOCAL_DELIVERIES = ("proxy", "x-accel")
S3_DELIVERIES = ("proxy", "redirect")


class SettingsError(ValueError):
    """A ``VIDEO_*`` variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    """Service configuration; each field is the variable ``VIDEO_<FIELD NAME>``."""

    storage_dir: Path = Path("assets/video")
    max_upload_bytes: int = 8 * 1024**3
    public_base_url: str = ""
    trust_proxy_headers: bool = False
    max_ranges: int = 16
    cache_control: str = "public, no-cache"
    chunk_bytes: int = 128 * 1024
    api_token: str = ""
    accept_any_file: bool = False
    media_workers: int = 2
    upload_expiry_seconds: int = 24 * 3600
    cors_origins: tuple[str, ...] = ()
    delivery: str = "proxy"
    storage_url: str = ""
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    staging_dir: str = ""
    x_accel_location: str = "/_video_files"

    @property
    def uses_s3(self) -> bool:
        return self.storage_url.startswith("s3://")

    @property
    def local_store_dir(self) -> Path:
        """The local store: ``VIDEO_STORAGE_URL`` when it is a path, else ``VIDEO_STORAGE_DIR``."""
        return Path(self.storage_url) if self.storage_url else self.storage_dir

    @property
    def staging_path(self) -> Path:
        """Where uploads to an object store wait on local disk while they are checked."""
        return Path(self.staging_dir) if self.staging_dir else Path(tempfile.gettempdir()) / "video-service-staging"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``VIDEO_*`` variables, defaults for the rest."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _convert(field.name, field.type, raw)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse values that would make the service misbehave later rather than now."""
        for name in ("max_upload_bytes", "max_ranges", "chunk_bytes", "media_workers", "upload_expiry_seconds"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")
        allowed = S3_DELIVERIES if self.uses_s3 else LOCAL_DELIVERIES
        if self.delivery not in allowed:
            raise SettingsError(f"{PREFIX}DELIVERY must be one of {', '.join(allowed)} for this store")
        if not self.x_accel_location.startswith("/"):
            raise SettingsError(f"{PREFIX}X_ACCEL_LOCATION must be a path starting with /")
        if self.public_base_url and not self.public_base_url.startswith(("http://", "https://")):
            raise SettingsError(f"{PREFIX}PUBLIC_BASE_URL must start with http:// or https://")


def _convert(name: str, kind: str, raw: str) -> object:
    """Turn the text of one variable into the field's type (annotations are strings here)."""
    try:
        if kind == "int":
            return int(raw.replace("_", ""))
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "Path":
            return Path(raw)
        if kind == "tuple[str, ...]":
            return tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())
        return raw
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r}: {exc}") from None


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")
