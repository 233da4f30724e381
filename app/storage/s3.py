"""Videos in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, SeaweedFS, R2).

The same small interface as the local store. Reads take the validators from a
HEAD of the object, then fetch each range with ``If-Match`` on that ETag: S3
servers ignore ``If-Range``, so a replacement in between fails the read
rather than splicing two versions into one response. Uploads are staged on
local disk (so they can be probed and remuxed) and then streamed up as
multipart uploads with flat memory. Sidecars are objects under ``.library/``.
No state lives in the process: any instance can serve any request.

Every wait on the store is bounded (:class:`StoreWaits`): a store that stalls
or is down makes a request fail with ``Unavailable`` (503) within seconds
instead of holding it for as long as the store is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import obstore
from obstore.exceptions import GenericError, PreconditionError
from obstore.store import S3Store

from app.core.errors import AlreadyExists, NotFound, Unavailable
from app.core.media_types import content_disposition, content_type_for
from app.core.names import check_derived_path, check_stored_name, is_stored_name
from app.core.settings import S3Settings, Settings, split_s3_url
from app.storage.s3_claims import Claim, Claims
from app.storage.s3_signing import QuerySigner
from app.storage.s3_versions import ClientUrls, Versions, VersionedClientUrls
from app.storage.base import DERIVED_DIR, SIDECAR_DIR, SIDECAR_KINDS, Entry, Publish, StagedFile, candidate_names, \
    folder_in, newest_first, staged_in
from app.storage.space import FreeSpace
from app.storage.staging import remove_orphans

if TYPE_CHECKING:  # obstore declares the type in its stubs only
    from obstore._get import GetResult


log = logging.getLogger(__name__)
T = TypeVar("T")

NAMES_DIR = ".names"
PART_BYTES = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 2
SIGNED_URL_LIFETIME = timedelta(hours=1)
STREAM_LIFETIME = timedelta(hours=6)
"""The longest one streamed read may last: a player may take hours to fetch a long video over one request."""
_RETRIES = 2
"""Tries again after a failed request (a dropped connection, a 5xx), within the wait for its answer."""


@dataclass(frozen=True)
class StoreWaits:
    """How long a request may wait on the store (``VIDEO_STORE_*_TIMEOUT_SECONDS``).

    ``connect``: to open a connection. ``answer``: for the answer to any one
    request (its first byte; with its body, for all but streamed reads) and,
    while a read streams, for each next piece of it. ``write``: for one
    written request (a part of up to ``PART_BYTES``, a sidecar) to go up and be
    answered. Past any of them the request fails with ``Unavailable``.
    """

    connect: float
    answer: float
    write: float

    def client_options(self, lifetime: timedelta, answer: float) -> dict[str, object]:
        """obstore's options for a client whose requests may last ``lifetime`` in all, and wait ``answer``
        seconds for each piece of their answer."""
        return {"connect_timeout": timedelta(seconds=self.connect), "read_timeout": timedelta(seconds=answer),
                "timeout": lifetime}

    def retries(self) -> dict[str, object]:
        """obstore's retry policy: a few quick tries, never past the wait for an answer."""
        return {"max_retries": _RETRIES, "retry_timeout": timedelta(seconds=self.answer),
                "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1)}}

    def answered(self) -> AbstractAsyncContextManager[None]:
        """Bound the store requests of the block to the answer wait, and turn a store that is down or failing
        into ``Unavailable``; the store's own answers (not found, a precondition) pass through."""
        return _bounded(self.answer)

    def written(self) -> AbstractAsyncContextManager[None]:
        """As ``answered``, for a written request (a part, a sidecar): bounded by the write wait."""
        return _bounded(self.write)

    async def call(self, request: Callable[..., Awaitable[T]], *args: object, **kwargs: object) -> T:
        """Make one store request (an obstore function) within the answer wait, as ``answered`` says."""
        async with self.answered():
            return await request(*args, **kwargs)


@asynccontextmanager
async def _bounded(seconds: float) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(seconds):
            with unavailable_on_failure():
                yield
    except TimeoutError:
        raise Unavailable(f"the object store did not answer within {seconds:g} s: try again shortly") from None


@contextmanager
def unavailable_on_failure() -> Iterator[None]:
    """A store that cannot be reached, or fails a request even when tried again, is ``Unavailable``."""
    try:
        yield
    except GenericError as exc:
        log.warning("the object store failed: %s", str(exc).partition("\n")[0])
        raise Unavailable("the object store cannot be reached: try again shortly") from None


class S3Object:
    """One version of an object, as a HEAD described it (satisfies ``file_stream.ByteSource``)."""

    def __init__(self, client: S3Store, key: str, meta: dict, chunk_bytes: int, waits: StoreWaits,
                 urls: ClientUrls) -> None:
        self._client = client
        self._urls = urls
        self._chunk_bytes = chunk_bytes
        self._waits = waits
        self.key = key
        self.size = meta["size"]
        self.last_modified = meta["last_modified"].timestamp()
        raw = meta["e_tag"] or ""
        self._raw_etag = raw
        self.etag = raw if raw.startswith('"') else f'"{raw}"'
        self.version: str | None = meta.get("version")
        """The store's version ID, in a bucket that keeps versions."""

    async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        """Stream ``[start, stop)`` of exactly this version (a replacement makes it fail), waiting on the store
        no longer than its answer wait for the first piece and for each next one."""
        with self._same_version():
            async with self._waits.answered():
                pieces = (await self._get(start, stop)).stream(min_chunk_size=self._chunk_bytes)
            while True:
                async with self._waits.answered():
                    chunk = await anext(pieces, None)
                if chunk is None:
                    return
                yield bytes(chunk)

    async def read(self, start: int, stop: int) -> bytes:
        """``[start, stop)`` of exactly this version in one request."""
        with self._same_version():
            async with self._waits.answered():
                return bytes(await (await self._get(start, stop)).bytes_async())

    async def _get(self, start: int, stop: int) -> GetResult:
        """A ranged GET that S3 answers only while the object still has this version's ETag."""
        return await obstore.get_async(self._client, self.key,
                                       options={"range": (start, stop), "if_match": self._raw_etag})

    @contextmanager
    def _same_version(self) -> Iterator[None]:
        """A replaced or deleted object ends the response as a failed read, never a spliced one."""
        try:
            yield
        except (PreconditionError, FileNotFoundError) as exc:
            raise OSError(f"{self.key} changed while being sent") from exc

    async def media_location(self) -> str:
        """A short-lived signed URL: FFmpeg in a worker reads the object over HTTP, seeking with ranges."""
        return await obstore.sign_async(self._client, "GET", self.key, SIGNED_URL_LIFETIME)

    async def client_location(self, lifetime: timedelta) -> str:
        """A signed URL for clients, of this version where the bucket keeps versions (``s3_versions``)."""
        return await self._urls.url(self.key, self.version, lifetime)

    def close(self) -> None:
        """Nothing is held open between requests."""


def _client(bucket: str, s3: S3Settings, waits: StoreWaits, options: dict[str, object]) -> S3Store:
    """An obstore client of ``bucket`` with the connection settings of ``s3``, the given options, and quick retries."""
    if s3.endpoint.startswith("http://"):
        options = {**options, "allow_http": True}
    config: dict[str, object] = {"region": s3.region, "virtual_hosted_style_request": False}
    if s3.endpoint:
        config["endpoint"] = s3.endpoint
    if s3.access_key_id:
        config.update(access_key_id=s3.access_key_id, secret_access_key=s3.secret_access_key)
    return S3Store(bucket, client_options=options, retry_config=waits.retries(), **config)


DELETE_BATCH = 1000
"""Keys per delete request: S3's DeleteObjects takes at most 1000."""


def _client_urls(bucket: str, s3: S3Settings, waits: StoreWaits, client: S3Store) -> ClientUrls:
    """The signer of client URLs, for the store's public endpoint (``VIDEO_S3_PUBLIC_ENDPOINT``) when it has
    one: SigV4 signs the host, so a URL is signed for the host clients will ask. With static keys the service
    signs them itself and can bind them to a version; else obstore signs them with the credentials it finds."""
    if not s3.access_key_id:
        public = replace(s3, endpoint=s3.public_endpoint)
        return ClientUrls(_client(bucket, public, waits, {}) if s3.public_endpoint else client)
    signer = QuerySigner(bucket, s3.region, s3.access_key_id, s3.secret_access_key, s3.endpoint)
    public = replace(signer, endpoint=s3.public_endpoint) if s3.public_endpoint else signer
    return VersionedClientUrls(public, Versions(signer, waits.answered, waits.answer))


READINESS_KEY = ".readiness-check"
"""A hidden key no video or sidecar has, asked for by ``check``."""


class S3VideoStore:
    """A bucket (and prefix) of videos behind the store interface."""

    def __init__(self, url: str, s3: S3Settings, staging: Path, chunk_bytes: int, min_free_bytes: int,
                 waits: StoreWaits, claim_seconds: float) -> None:
        bucket, self.prefix = split_s3_url(url)
        self.waits = waits
        self.client = _client(bucket, s3, waits, waits.client_options(STREAM_LIFETIME, waits.answer))
        """Reads (streamed ones may last long) and small requests."""
        self.writer = _client(bucket, s3, waits, waits.client_options(timedelta(seconds=waits.write), waits.write))
        """Publishing: each part must go up within the write wait, or the upload fails."""
        self._urls = _client_urls(bucket, s3, waits, self.client)
        self._names = Claims(self.client, waits.answered, claim_seconds)
        """Names being uploaded to; one whose upload died with the store is free again after ``claim_seconds``."""
        self.chunk_bytes = chunk_bytes
        self._staging = staging
        self.space = FreeSpace(staging, min_free_bytes)
        staging.mkdir(parents=True, exist_ok=True)
        remove_orphans(staging)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3VideoStore:
        """The store ``VIDEO_STORAGE_URL`` names, with the connection, staging and waits the settings give."""
        waits = StoreWaits(settings.store_connect_timeout_seconds, settings.store_timeout_seconds,
                           settings.store_write_timeout_seconds)
        return cls(settings.storage_url, settings.s3, settings.staging_path, settings.chunk_bytes,
                   settings.min_free_bytes, waits, settings.store_claim_seconds)

    def key(self, relative: str) -> str:
        return self.prefix + relative

    async def _head(self, key: str, name: str) -> S3Object:
        try:
            async with self.waits.answered():
                meta = await obstore.head_async(self.client, key)
        except FileNotFoundError:
            raise NotFound(name) from None
        return S3Object(self.client, key, meta, self.chunk_bytes, self.waits, self._urls)

    async def open(self, name: str) -> S3Object:
        return await self._head(self.key(check_stored_name(name)), name)

    async def check(self) -> None:
        """Ask for an object that is never there: a "not found" is the answer of a store that is up."""
        try:
            async with self.waits.answered():
                await obstore.head_async(self.client, self.key(READINESS_KEY))
        except FileNotFoundError:
            pass

    async def entries(self) -> list[Entry]:
        """Every stored video (objects directly under the prefix, hidden ones left out), newest first."""
        async with self.waits.answered():
            listing = await obstore.list_with_delimiter_async(self.client, self.prefix.rstrip("/") or None)
        found = []
        for meta in listing["objects"]:
            name = meta["path"][len(self.prefix):]
            if is_stored_name(name):
                found.append(Entry(name, meta["size"], meta["last_modified"].timestamp()))
        return newest_first(found)

    async def delete(self, name: str) -> None:
        """Remove a video, its sidecars and its name marker (streams already started may fail)."""
        await self.open(name)
        keys = [self.key(name), self._marker_key(name)] + [self._sidecar_key(name, kind) for kind in SIDECAR_KINDS]
        async with self.waits.answered():
            await obstore.delete_async(self.client, keys)
        await self._urls.forget_replaced(*keys)
        await self.delete_derived(name, await self.derived_paths(name))

    def staged(self) -> AbstractAsyncContextManager[StagedFile]:
        """A local staging file: uploads are probed and remuxed on disk before they go up."""
        return staged_in(self._staging, self.space)

    async def publish(self, staged: StagedFile, name: str, mode: Publish = Publish.UNIQUE) -> str:
        """Stream the staged file up; never replace an existing video unless ``mode`` says so."""
        name = check_stored_name(name)
        if mode is Publish.REPLACE:
            await self._put_video(staged, name)
            return name
        final, claim = await self._claim_free_name(name, mode)
        try:
            async with self._names.kept(claim):
                await self._put_video(staged, final)
        except BaseException:
            await self._names.let_go(claim)
            raise
        return final

    async def _put_video(self, staged: StagedFile, name: str) -> None:
        """Stream the staged file up as the video ``name``; each of its requests bounded by the writer's options."""
        with unavailable_on_failure():
            await obstore.put_async(
                self.writer, self.key(name), staged.path, use_multipart=staged.measure() > PART_BYTES,
                chunk_size=PART_BYTES, max_concurrency=UPLOAD_CONCURRENCY,
                attributes={"Content-Type": content_type_for(name), "Content-Disposition": content_disposition(name)},
            )
        staged.published = True
        staged.path.unlink(missing_ok=True)
        await self._urls.forget_replaced(self.key(name))

    async def _claim_free_name(self, name: str, mode: Publish) -> tuple[str, Claim]:
        """Claim a name no video has, atomically across instances (``s3_claims``): the name and its claim.

        A name's claim object stays once its video is published (the video's delete takes it along); one
        whose upload failed is deleted, or, if the store failed too, goes stale and is taken over.
        """
        for candidate in candidate_names(name, mode):
            claim = await self._names.take(self._marker_key(candidate))
            if claim is None:
                continue
            try:
                await self.open(candidate)
            except NotFound:
                return candidate, claim
            except BaseException:
                await self._names.let_go(claim)
                raise
        raise AlreadyExists(name)

    def _marker_key(self, name: str) -> str:
        return self.key(f"{NAMES_DIR}/{name}")

    def _sidecar_key(self, name: str, kind: str) -> str:
        return self.key(f"{SIDECAR_DIR}/{check_stored_name(name)}.{kind}")

    async def read_sidecar(self, name: str, kind: str) -> bytes | None:
        try:
            async with self.waits.answered():
                result = await obstore.get_async(self.client, self._sidecar_key(name, kind))
                return bytes(await result.bytes_async())
        except FileNotFoundError:
            return None

    async def write_sidecar(self, name: str, kind: str, data: bytes) -> None:
        async with self.waits.written():
            await obstore.put_async(self.writer, self._sidecar_key(name, kind), data)
        await self._urls.forget_replaced(self._sidecar_key(name, kind))

    async def open_sidecar(self, name: str, kind: str) -> S3Object:
        return await self._head(self._sidecar_key(name, kind), name)

    def staged_folder(self) -> AbstractAsyncContextManager[Path]:
        return folder_in(self._staging)

    def _derived_prefix(self, name: str) -> str:
        return self.key(f"{DERIVED_DIR}/{check_stored_name(name)}/")

    async def put_derived(self, name: str, path: str, source: Path) -> None:
        """One PUT of the file (in parts when large), each request bounded by the writer's options."""
        key = self._derived_prefix(name) + check_derived_path(path)
        with unavailable_on_failure():
            await obstore.put_async(self.writer, key, source, use_multipart=source.stat().st_size > PART_BYTES,
                                    chunk_size=PART_BYTES, max_concurrency=UPLOAD_CONCURRENCY,
                                    attributes={"Content-Type": content_type_for(path)})
        source.unlink(missing_ok=True)
        await self._urls.forget_replaced(key)

    async def open_derived(self, name: str, path: str) -> S3Object:
        return await self._head(self._derived_prefix(name) + check_derived_path(path), name)

    async def derived_paths(self, name: str) -> list[str]:
        prefix = self._derived_prefix(name)
        async with self.waits.answered():
            listed = [meta["path"] async for batch in obstore.list(self.client, prefix) for meta in batch]
        return sorted(key[len(prefix):] for key in listed)

    async def delete_derived(self, name: str, paths: list[str]) -> None:
        prefix = self._derived_prefix(name)
        keys = [prefix + check_derived_path(path) for path in paths]
        for start in range(0, len(keys), DELETE_BATCH):
            async with self.waits.answered():
                await obstore.delete_async(self.client, keys[start:start + DELETE_BATCH])
        await self._urls.forget_replaced(*keys)
