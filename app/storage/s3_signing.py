"""Presigned S3 URLs (AWS Signature Version 4, signed in the query string) with query parameters of our own.

obstore signs a method and a key only; a URL bound to one version of an object
needs ``versionId`` in its query, and removing an old version needs a signed
``DELETE ...?versionId=``, so this module signs any method, key and query.
Only the host header is signed and the payload is ``UNSIGNED-PAYLOAD``, as
obstore does: without extra parameters the URL is exactly obstore's
(``tests/test_s3_signing.py``). Addresses are path-style, as the store's client.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


def _encoded(text: str, safe: str = "") -> str:
    """SigV4's URI encoding: every byte but the unreserved characters (and ``safe``) as %XX."""
    return quote(text, safe=safe)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class QuerySigner:
    """Signs URLs of one bucket, reached at ``endpoint`` (empty: AWS's regional endpoint), with static keys."""

    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str
    endpoint: str = ""

    def url(self, method: str, key: str, lifetime: timedelta, query: Mapping[str, str] | None = None,
            now: datetime | None = None) -> str:
        """A URL that lets whoever holds it make ``method`` on ``key`` (``""``: the bucket itself) with
        ``query`` for ``lifetime`` from ``now`` (the current time unless given)."""
        when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        base = self.endpoint.rstrip("/") or f"https://s3.{self.region}.amazonaws.com"
        path = _encoded(f"/{self.bucket}/{key}", safe="/")
        scope = f"{when:%Y%m%d}/{self.region}/s3/aws4_request"
        params = {**(query or {}), "X-Amz-Algorithm": ALGORITHM, "X-Amz-Credential": f"{self.access_key_id}/{scope}",
                  "X-Amz-Date": f"{when:%Y%m%dT%H%M%SZ}", "X-Amz-Expires": str(int(lifetime.total_seconds())),
                  "X-Amz-SignedHeaders": "host"}
        pairs = sorted((_encoded(name), _encoded(value)) for name, value in params.items())
        canonical_query = "&".join(f"{name}={value}" for name, value in pairs)
        canonical_request = "\n".join(
            [method, path, canonical_query, f"host:{urlsplit(base).netloc}\n", "host", "UNSIGNED-PAYLOAD"])
        signed = "\n".join([ALGORITHM, params["X-Amz-Date"], scope,
                            hashlib.sha256(canonical_request.encode()).hexdigest()])
        return f"{base}{path}?{canonical_query}&X-Amz-Signature={self._signature(when, signed)}"

    def _signature(self, when: datetime, string_to_sign: str) -> str:
        """The signature of ``string_to_sign`` with the key derived for this day, region and service."""
        key = f"AWS4{self.secret_access_key}".encode()
        for part in (f"{when:%Y%m%d}", self.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
