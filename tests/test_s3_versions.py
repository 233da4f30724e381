"""A versioned bucket's old versions (``app/storage/s3_versions.py``) against a real SeaweedFS: what happens when
they cannot be deleted. (What a service does with them: ``tests/test_redirect_delivery.py``.)"""

from __future__ import annotations

import logging

import obstore
import pytest

from app.storage.s3 import StoreWaits
from app.storage.s3_versions import VersionedClientUrls, Versions


@pytest.mark.anyio
async def test_old_versions_the_stalled_store_cannot_delete_are_logged_not_raised(seaweed, versioned_bucket, caplog):
    client = seaweed.client(versioned_bucket)
    for body in (b"first", b"second"):
        obstore.put(client, "versions/stalled", body)
    signer = seaweed.signer(versioned_bucket)
    waits = StoreWaits(connect=0.5, answer=0.5, write=0.5)
    versions = Versions(signer, waits.answered, waits.answer)
    assert await versions.enabled()  # asked before the stall: the deletes are what fails
    urls = VersionedClientUrls(signer, versions)
    with seaweed.paused(), caplog.at_level(logging.WARNING):
        await urls.forget_replaced("versions/stalled")
    assert "could not delete the old versions of versions/stalled" in caplog.text
    assert len(seaweed.versions(versioned_bucket, "versions/stalled")) == 2
