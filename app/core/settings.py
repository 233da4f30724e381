"""Every tunable of the service, read once from ``VIDEO_*`` environment variables.

One frozen object is built at start-up and handed to whatever needs it, so a
test can build the app with other settings without touching the environment
of the process. The server reads ``os.environ`` here only (the command-line
uploader, a client, reads its own variables). Settings are checked when they
are built, whoever builds them: a value the service cannot use is refused at
start-up with the variable named, never discovered by a request later.

Each field is the variable ``VIDEO_<FIELD>``; a field that is a group (the S3
connection) reads ``VIDEO_<GROUP>_<FIELD>`` for each of its own fields.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from app.core.ladder import DEFAULT_LADDER, LadderError, Rung, parse_ladder

PREFIX = "VIDEO_"
Delivery = Literal["proxy", "redirect", "x-accel"]
X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
LOCAL_DELIVERIES: tuple[Delivery, ...] = ("proxy", "x-accel")
S3_DELIVERIES: tuple[Delivery, ...] = ("proxy", "redirect")
_AT_LEAST_ONE = ("max_upload_bytes", "max_ranges", "chunk_bytes", "media_workers", "media_timeout_seconds",
                 "upload_expiry_seconds", "max_upload_metadata_bytes", "max_header_count", "max_connections",
                 "head_timeout_seconds", "keep_alive_seconds", "catalog_scan_seconds", "job_attempts",
                 "job_lease_seconds", "job_poll_seconds", "ready_timeout_seconds", "store_connect_timeout_seconds",
                 "store_timeout_seconds", "store_write_timeout_seconds", "store_claim_seconds", "write_claim_seconds",
                 "write_wait_seconds", "database_timeout_seconds", "redirect_seconds", "segment_seconds",
                 "rendition_threads", "rendition_timeout_seconds", "storyboard_min_interval_ms", "caption_max_bytes",
                 "caption_max_tracks")
_AT_LEAST_NONE = ("min_free_bytes", "embedded_workers", "job_retry_seconds", "inline_faststart_bytes")
# The smallest head that can carry the tus metadata a client may send, besides the usual headers.
_HEAD_ROOM_BYTES = 4096

DEFAULT_MIN_FREE_BYTES = 256 * 1024**2
"""The free space uploads leave on the filesystem they are written to (``VIDEO_MIN_FREE_BYTES``).

Not 0: an upload that takes the last block leaves the service unable to write
what it still must (the state of resumable uploads, metadata and posters, the
faststart copy of a video) and, when the store shares a disk with the system,
leaves logs and databases without room too. 256 MiB is negligible on any disk
that holds videos, yet holds thousands of state files and posters, and is far
more than the 4 MiB an upload may write between two checks of the free space.
0 turns the reserve off: then only a full disk refuses an upload.
"""


MAX_STORYBOARD_TILES = 200
"""A storyboard's tiles at most (``app/media/storyboard.py`` holds to it too): two sheets of 10 x 10."""
MAX_STORYBOARD_TILE_WIDTH = 640
"""A tile is a preview beside a seek bar, not a picture to watch: 100 of them make one sheet."""

CATALOG_DIR = ".catalog"
"""The hidden folder the default SQLite catalog lives in."""
CATALOG_DRIVERS = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
"""The database URLs the catalog can open (the async drivers that are installed): SQLite, embedded, for one
instance (or a few sharing a file), PostgreSQL for several instances over one store."""


class SettingsError(ValueError):
    """A ``VIDEO_*`` variable holds a value the service cannot use."""


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix/``)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise SettingsError(f"{PREFIX}STORAGE_URL={url!r} is not an s3://bucket/prefix URL")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


@dataclass(frozen=True)
class S3Settings:
    """How to reach an S3-compatible object store; the bucket and prefix come from ``VIDEO_STORAGE_URL``."""

    endpoint: str = ""
    public_endpoint: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""


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
    media_timeout_seconds: int = 600
    upload_expiry_seconds: int = 24 * 3600
    max_upload_metadata_bytes: int = 4096
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES
    cors_origins: tuple[str, ...] = ()
    delivery: Delivery = "proxy"
    storage_url: str = ""
    s3: S3Settings = field(default_factory=S3Settings)
    staging_dir: str = ""
    x_accel_location: str = "/_video_files"
    allowed_hosts: tuple[str, ...] = ()
    max_head_bytes: int = 64 * 1024
    max_header_count: int = 100
    head_timeout_seconds: int = 15
    keep_alive_seconds: int = 5
    max_connections: int = 512
    access_log: bool = False
    database_url: str = ""
    catalog_scan_seconds: int = 300
    ready_timeout_seconds: int = 2
    store_connect_timeout_seconds: int = 3
    store_timeout_seconds: int = 10
    store_write_timeout_seconds: int = 30
    store_claim_seconds: int = 60
    database_timeout_seconds: int = 10
    redirect_seconds: int = 300
    embedded_workers: int = 1
    inline_faststart_bytes: int = 64 * 1024**2
    job_attempts: int = 3
    job_lease_seconds: int = 30
    job_retry_seconds: int = 10
    job_poll_seconds: int = 2
    write_claim_seconds: int = 30
    write_wait_seconds: int = 30
    rendition_ladder: str = DEFAULT_LADDER
    segment_seconds: int = 4
    rendition_threads: int = 2
    rendition_preset: X264Preset = "veryfast"
    rendition_timeout_seconds: int = 6 * 3600
    storyboard_tiles: int = 150
    storyboard_tile_width: int = 160
    storyboard_min_interval_ms: int = 1000
    caption_max_bytes: int = 1024**2
    caption_max_tracks: int = 20

    def __post_init__(self) -> None:
        """Refuse values that would make the service misbehave later rather than now."""
        for name in _AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")
        for name in _AT_LEAST_NONE:
            if getattr(self, name) < 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be 0 or more")
        if self.uses_s3:
            split_s3_url(self.storage_url)
        allowed = S3_DELIVERIES if self.uses_s3 else LOCAL_DELIVERIES
        if self.delivery not in allowed:
            raise SettingsError(f"{PREFIX}DELIVERY must be one of {', '.join(allowed)} for this store")
        if not self.x_accel_location.startswith("/"):
            raise SettingsError(f"{PREFIX}X_ACCEL_LOCATION must be a path starting with /")
        if self.public_base_url and not self.public_base_url.startswith(("http://", "https://")):
            raise SettingsError(f"{PREFIX}PUBLIC_BASE_URL must start with http:// or https://")
        if self.database_url and not self.database_url.startswith(CATALOG_DRIVERS):
            raise SettingsError(f"{PREFIX}DATABASE_URL must start with one of {', '.join(CATALOG_DRIVERS)}")
        try:
            parse_ladder(self.rendition_ladder)
        except LadderError as exc:
            raise SettingsError(f"{PREFIX}RENDITION_LADDER: {exc}") from None
        if not 0 <= self.storyboard_tiles <= MAX_STORYBOARD_TILES:
            raise SettingsError(f"{PREFIX}STORYBOARD_TILES must be 0 (no storyboards) to {MAX_STORYBOARD_TILES}")
        if not 16 <= self.storyboard_tile_width <= MAX_STORYBOARD_TILE_WIDTH:
            raise SettingsError(f"{PREFIX}STORYBOARD_TILE_WIDTH must be 16 to {MAX_STORYBOARD_TILE_WIDTH} pixels")
        if self.max_head_bytes < self.max_upload_metadata_bytes + _HEAD_ROOM_BYTES:
            raise SettingsError(f"{PREFIX}MAX_HEAD_BYTES must leave room for {PREFIX}MAX_UPLOAD_METADATA_BYTES "
                                f"and {_HEAD_ROOM_BYTES} bytes of other headers")

    @property
    def ladder(self) -> tuple[Rung, ...]:
        """The rungs of ``VIDEO_RENDITION_LADDER``; none when renditions are turned off."""
        return parse_ladder(self.rendition_ladder)

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

    @property
    def catalog_url(self) -> str:
        """The catalog's database: ``VIDEO_DATABASE_URL``, else a SQLite file beside the store's own data.

        For a local store, in its hidden ``.catalog/`` folder (copying the store copies it, though a scan
        would rebuild it anyway); for S3, in the staging folder: the instance's local disk, rebuilt from
        the bucket if lost.
        """
        if self.database_url:
            return self.database_url
        folder = self.staging_path if self.uses_s3 else self.local_store_dir
        return f"sqlite+aiosqlite:///{(folder / CATALOG_DIR / 'catalog.db').absolute()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``VIDEO_*`` variables, defaults for the rest."""
        return _from_variables(cls, PREFIX, os.environ if environ is None else environ)


def _from_variables(kind: type, prefix: str, environ: Mapping[str, str]) -> Any:
    """An instance of the dataclass ``kind`` from the variables ``<prefix><FIELD>``; groups recurse."""
    values: dict[str, object] = {}
    for name, annotation in get_type_hints(kind).items():
        variable = f"{prefix}{name.upper()}"
        if dataclasses.is_dataclass(annotation):
            values[name] = _from_variables(annotation, variable + "_", environ)
        elif variable in environ:
            values[name] = _convert(variable, annotation, environ[variable])
    return kind(**values)


def _convert(variable: str, annotation: object, raw: str) -> object:
    """Turn the text of one variable into the field's type, or say which variable is wrong."""
    try:
        return _converter(annotation)(raw)
    except ValueError as exc:
        raise SettingsError(f"{variable}={raw!r}: {exc}") from None


def _converter(annotation: object) -> Callable[[str], object]:
    if get_origin(annotation) is Literal:
        return _choice(get_args(annotation))
    if annotation == tuple[str, ...]:
        return _comma_list
    return {int: _integer, bool: _parse_bool, Path: Path, str: str}[annotation]


def _integer(raw: str) -> int:
    return int(raw.replace("_", ""))


def _comma_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return raw

    return parse


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")
