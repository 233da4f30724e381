"""The service's own SigV4 query signer (``app/storage/s3_signing.py``): exactly obstore's URL where obstore can
sign one, and, with a version named, a URL that a real SeaweedFS (signatures checked) honours as signed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import obstore
import pytest
from obstore.store import S3Store

from app.storage.s3_signing import QuerySigner

LIFETIME = timedelta(minutes=5)


@pytest.mark.parametrize("endpoint", ["", "http://127.0.0.1:8333", "https://store.example/"])
@pytest.mark.parametrize("key", ["videos/clip.mp4", "p/a b+c%d?e#f&g=h.mp4", "p/ünïcødé €.mkv", "p/(1)!'*~_.webm"])
def test_without_extra_parameters_the_url_is_exactly_obstores(endpoint, key):
    config = {"endpoint": endpoint} if endpoint else {}
    store = S3Store("a-bucket", region="eu-west-3", access_key_id="AKID", secret_access_key="secret",
                    virtual_hosted_style_request=False, client_options={"allow_http": True}, **config)
    theirs = obstore.sign(store, "GET", key, LIFETIME)
    signed_at = datetime.strptime(parse_qs(urlsplit(theirs).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    ours = QuerySigner("a-bucket", "eu-west-3", "AKID", "secret", endpoint)
    assert ours.url("GET", key, LIFETIME, now=signed_at.replace(tzinfo=timezone.utc)) == theirs


def test_a_url_signed_for_one_version_is_refused_for_another(seaweed, versioned_bucket):
    client = seaweed.client(versioned_bucket)
    first = obstore.put(client, "signing/two-versions", b"first")["version"]
    second = obstore.put(client, "signing/two-versions", b"second")["version"]
    url = seaweed.signer(versioned_bucket).url("GET", "signing/two-versions", LIFETIME, {"versionId": first})
    assert httpx.get(url).content == b"first"
    assert httpx.get(url.replace(first, second)).status_code == 403
