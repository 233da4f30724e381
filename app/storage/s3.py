"""Videos in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, SeaweedFS, R2).

The same small interface as the local store. Reads take the validators from a
HEAD of the object, then fetch each range with ``If-Match`` on that ETag: S3
servers ignore ``If-Range``, so a replacement in between fails the read
rather than splicing two versions into one response. Uploads are staged on
local disk (so they can be probed and remuxed) and then streamed up as
multipart uploads with flat memory. Sidecars are objects under ``.library/``.
No state lives in the process: any instance can serve any request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import S3Store

from app.core.errors import AlreadyExists, NotFound
from app.core.media_types import content_disposition, content_type_for
from app.core.names import check_stored_name, is_stored_name
from app.core.settings import S3Settings, split_s3_url
from app.storage.base import SIDECAR_DIR, SIDECAR_KINDS, Entry, Publish, StagedFile, candidate_names, newest_first, \
    staged_in
from app.storage.space import FreeSpace
from app.storage.staging import remove_orphans

if TYPE_CHECKING:  # obstore declares the type in its stubs only
    from obstore._get import GetResult


NAMES_DIR = ".names"
PART_BYTES = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 2
SIGNED_URL_LIFETIME = timedelta(hours=1)


class S3Object:
    """One version of an object, as a HEAD described it (satisfies ``file_stream.ByteSource``)."""

    def __init__(self, client: S3Store, key: str, meta: dict, chunk_bytes: int) -> None:
        self._client = client
        self._chunk_bytes = chunk_bytes
        self.key = key
        self.size = meta["size"]
        self.last_modified = meta["last_modified"].timestamp()
        raw = meta["e_tag"] or ""
        self._raw_etag = raw
        self.etag = raw if raw.startswith('"') else f'"{raw}"'

    async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        """Stream ``[start, stop)`` of exactly this version (a replacement makes it fail)."""
        with self._same_version():
            result = await self._get(start, stop)
            async for chunk in result.stream(min_chunk_size=self._chunk_bytes):
                yield bytes(chunk)

    async def read(self, start: int, stop: int) -> bytes:
        """``[start, stop)`` of exactly this version in one request."""
        with self._same_version():
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

    def close(self) -> None:
        """Nothing is held open between requests."""


READINESS_KEY = ".readiness-check"
"""A hidden key no video or sidecar has, asked for by ``check``."""


class S3VideoStore:
    """A bucket (and prefix) of videos behind the store interface."""

    def __init__(self, url: str, s3: S3Settings, staging: Path, chunk_bytes: int, min_free_bytes: int) -> None:
        bucket, self.prefix = split_s3_url(url)
        options = {"timeout": "3600s", "connect_timeout": "10s"}
        if s3.endpoint.startswith("http://"):
            options["allow_http"] = True
        config = {"region": s3.region, "virtual_hosted_style_request": False}
        if s3.endpoint:
            config["endpoint"] = s3.endpoint
        if s3.access_key_id:
            config.update(access_key_id=s3.access_key_id, secret_access_key=s3.secret_access_key)
        self.client = S3Store(bucket, client_options=options, **config)
        self.chunk_bytes = chunk_bytes
        self._staging = staging
        self.space = FreeSpace(staging, min_free_bytes)
        staging.mkdir(parents=True, exist_ok=True)
        remove_orphans(staging)

    def key(self, relative: str) -> str:
        return self.prefix + relative

    async def _head(self, key: str, name: str) -> S3Object:
        try:
            meta = await obstore.head_async(self.client, key)
        except FileNotFoundError:
            raise NotFound(name) from None
        return S3Object(self.client, key, meta, self.chunk_bytes)

    async def open(self, name: str) -> S3Object:
        return await self._head(self.key(check_stored_name(name)), name)

    async def check(self) -> None:
        """Ask for an object that is never there: a "not found" is the answer of a store that is up."""
        try:
            await obstore.head_async(self.client, self.key(READINESS_KEY))
        except FileNotFoundError:
            pass

    async def entries(self) -> list[Entry]:
        """Every stored video (objects directly under the prefix, hidden ones left out), newest first."""
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
        await obstore.delete_async(self.client, keys)

    def staged(self) -> AbstractAsyncContextManager[StagedFile]:
        """A local staging file: uploads are probed and remuxed on disk before they go up."""
        return staged_in(self._staging, self.space)

    async def publish(self, staged: StagedFile, name: str, mode: Publish = Publish.UNIQUE) -> str:
        """Stream the staged file up; never replace an existing video unless ``mode`` says so."""
        name = check_stored_name(name)
        final = name if mode is Publish.REPLACE else await self._reserve_free_name(name, mode)
        try:
            await obstore.put_async(
                self.client, self.key(final), staged.path, use_multipart=staged.measure() > PART_BYTES,
                chunk_size=PART_BYTES, max_concurrency=UPLOAD_CONCURRENCY,
                attributes={"Content-Type": content_type_for(final),
                            "Content-Disposition": content_disposition(final)},
            )
        except BaseException:
            if mode is not Publish.REPLACE:
                await obstore.delete_async(self.client, self._marker_key(final))
            raise
        staged.published = True
        staged.path.unlink(missing_ok=True)
        return final

    async def _reserve_free_name(self, name: str, mode: Publish) -> str:
        """Claim a name no video has, atomically across instances.

        A tiny marker object is created with ``If-None-Match: *`` (streamed
        multipart uploads cannot be conditional); whoever creates it owns the
        name, and the name is used only if no video has it yet.
        """
        for candidate in candidate_names(name, mode):
            try:
                await obstore.put_async(self.client, self._marker_key(candidate), b"", mode="create")
            except AlreadyExistsError:
                continue
            try:
                await self.open(candidate)
            except NotFound:
                return candidate
        raise AlreadyExists(name)

    def _marker_key(self, name: str) -> str:
        return self.key(f"{NAMES_DIR}/{name}")

    def _sidecar_key(self, name: str, kind: str) -> str:
        return self.key(f"{SIDECAR_DIR}/{check_stored_name(name)}.{kind}")

    async def read_sidecar(self, name: str, kind: str) -> bytes | None:
        try:
            result = await obstore.get_async(self.client, self._sidecar_key(name, kind))
        except FileNotFoundError:
            return None
        return bytes(await result.bytes_async())

    async def write_sidecar(self, name: str, kind: str, data: bytes) -> None:
        await obstore.put_async(self.client, self._sidecar_key(name, kind), data)

    async def open_sidecar(self, name: str, kind: str) -> S3Object:
        return await self._head(self._sidecar_key(name, kind), name)
