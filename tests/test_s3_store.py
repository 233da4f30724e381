"""What only the S3 store has to get right, against a real SeaweedFS with signatures checked.

The parity tests say that users cannot tell the stores apart; these say why
that holds on S3, where the guarantees rest on the object store's answers.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import obstore
import pytest
from obstore.exceptions import PermissionDeniedError

BUCKET = "videos"


def test_a_request_signed_with_the_wrong_secret_is_refused(seaweed):
    obstore.put(seaweed.client(BUCKET), "signatures/wrong-secret", b"private")
    with pytest.raises(PermissionDeniedError):
        obstore.get(seaweed.client(BUCKET, secret_key="not-the-secret"), "signatures/wrong-secret")


def test_a_presigned_url_with_a_tampered_signature_is_refused(seaweed):
    client = seaweed.client(BUCKET)
    obstore.put(client, "signatures/presigned", b"private")
    url = obstore.sign(client, "GET", "signatures/presigned", timedelta(minutes=5))
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert httpx.get(url).status_code == 200
    assert httpx.get(tampered).status_code == 403
