"""Signed URLs bound to one version of a video, in a bucket that keeps versions.

A presigned ``GET`` of a key serves whatever the key holds when it is used:
after a replace, or a delete and a new upload under the same name, an old URL
would serve the new video. In a bucket with versioning enabled a URL can name
the version it was issued for (``versionId``), and a video's replaced
versions are deleted by version once a new one is published or the video is
deleted, so that an old URL then fails (404) instead of serving other bytes;
a client still fetching an old version is cut, as a proxied read of it is.

The service does not turn versioning on (a bucket-wide choice with storage
costs of its own): it asks the bucket once, when first needed. Binding needs
the static keys of ``VIDEO_S3_ACCESS_KEY_ID`` (they sign the URLs here);
with obstore's own credentials (environment, instance role) URLs name the key only.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import timedelta

import obstore
from obstore.store import S3Store

from app.core.errors import Unavailable
from app.storage.s3_signing import QuerySigner

log = logging.getLogger(__name__)

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_REQUEST_LIFETIME = timedelta(minutes=1)
"""How long the signature of one of the service's own requests is valid: it is sent at once."""


def _send(method: str, url: str, timeout: float) -> bytes:
    """Make one request of a presigned ``url`` and read its answer (blocking: run in a thread)."""
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout) as answer:
        return answer.read()


@contextmanager
def _unavailable_unless_answered() -> Iterator[None]:
    """A store that cannot be reached or fails (5xx) is ``Unavailable``; its other answers pass through."""
    try:
        yield
    except urllib.error.HTTPError as exc:
        if exc.code < 500:
            raise
        log.warning("the object store failed: %s %s", exc.code, exc.reason)
        raise Unavailable("the object store cannot be reached: try again shortly") from None
    except OSError as exc:  # urllib.error.URLError, a refused connection, a socket timeout
        log.warning("the object store failed: %s", exc)
        raise Unavailable("the object store cannot be reached: try again shortly") from None


class Versions:
    """Whether the bucket keeps versions (asked once), and the old versions of a key deleted."""

    def __init__(self, signer: QuerySigner, answered: Callable[[], AbstractAsyncContextManager[None]],
                 answer_seconds: float) -> None:
        self._signer = signer
        self._answered = answered
        self._answer_seconds = answer_seconds
        self._enabled: bool | None = None

    async def enabled(self) -> bool:
        """Whether versioning is enabled on the bucket (a suspended one keeps no new versions, so: no). A store
        that answers with an error (no such feature, no permission) has none; one that cannot be reached is
        asked again next time."""
        if self._enabled is None:
            try:
                answer = await self._request("GET", "", {"versioning": ""})
            except urllib.error.HTTPError as exc:
                log.warning("cannot ask the bucket whether it keeps versions (%s %s): signed URLs name the "
                            "key only", exc.code, exc.reason)
                answer = b"<VersioningConfiguration/>"
            self._enabled = ElementTree.fromstring(answer).findtext(f"{_NS}Status") == "Enabled"
        return self._enabled

    async def drop_old(self, key: str) -> None:
        """Delete every version of ``key`` but its current one (and old delete markers). What the key holds
        now is never touched, so a writer racing this one loses nothing it published."""
        async for version in self._noncurrent(key):
            try:
                await self._request("DELETE", key, {"versionId": version})
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # deleted meanwhile by another instance: what was wanted
                    raise

    async def _noncurrent(self, key: str) -> AsyncIterator[str]:
        """The version IDs of ``key`` that are not its current version, one listing page at a time."""
        markers: dict[str, str] = {}
        while True:
            page = ElementTree.fromstring(await self._request("GET", "", {"versions": "", "prefix": key, **markers}))
            for entry in [*page.iter(f"{_NS}Version"), *page.iter(f"{_NS}DeleteMarker")]:
                if entry.findtext(f"{_NS}Key") == key and entry.findtext(f"{_NS}IsLatest") != "true":
                    yield entry.findtext(f"{_NS}VersionId", "")
            if page.findtext(f"{_NS}IsTruncated") != "true":
                return
            markers = {"key-marker": page.findtext(f"{_NS}NextKeyMarker", ""),
                       "version-id-marker": page.findtext(f"{_NS}NextVersionIdMarker", "")}

    async def _request(self, method: str, key: str, query: dict[str, str]) -> bytes:
        """One request the service makes itself (obstore has no versions), within the store's answer wait
        (``answered``, which ends the wait; the blocking request ends by its own socket timeout)."""
        url = self._signer.url(method, key, _REQUEST_LIFETIME, query)
        with _unavailable_unless_answered():
            async with self._answered():
                return await asyncio.to_thread(_send, method, url, self._answer_seconds)


class ClientUrls:
    """The signed URLs handed to clients, signed by obstore (with whatever credentials it found): they name
    the key, whatever version it holds when they are used."""

    def __init__(self, signer: S3Store) -> None:
        self._signer = signer

    async def url(self, key: str, version: str | None, lifetime: timedelta) -> str:
        """A GET of ``key`` for ``lifetime`` (``version`` cannot be named here)."""
        return await obstore.sign_async(self._signer, "GET", key, lifetime)

    async def forget_replaced(self, *keys: str) -> None:
        """Nothing to do: URLs name no version."""


class VersionedClientUrls(ClientUrls):
    """Client URLs signed here with static keys: bound to the version opened where the bucket keeps versions,
    whose replaced versions are deleted."""

    def __init__(self, signer: QuerySigner, versions: Versions) -> None:
        self._query_signer = signer
        self._versions = versions

    async def url(self, key: str, version: str | None, lifetime: timedelta) -> str:
        """A GET of ``key`` for ``lifetime``, of exactly ``version`` when the bucket keeps versions."""
        query = {"versionId": version} if version and await self._versions.enabled() else {}
        return self._query_signer.url("GET", key, lifetime, query)

    async def forget_replaced(self, *keys: str) -> None:
        """After a write or a delete of ``keys``: their older versions deleted, so that URLs naming them fail.
        A failure is logged, not raised: what was asked for is done, and the next write of the name drops them."""
        try:
            if await self._versions.enabled():
                for key in keys:
                    await self._versions.drop_old(key)
        except (Unavailable, urllib.error.HTTPError) as exc:
            log.warning("could not delete the old versions of %s (%s): URLs issued for them stay valid for "
                        "their lifetime", ", ".join(keys), exc)
