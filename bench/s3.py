"""The benchmark's object-store contenders: the service over S3, and the S3 server itself.

SeaweedFS is the real S3 server the tests use (``tests.s3``). The big file is
put into it once; the service streams it from there, and the reference is the
same object fetched from SeaweedFS directly through a presigned URL, so the
ratio is what going through the service costs over asking the store.
"""

from __future__ import annotations

import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import obstore

from bench.load import check_first_bytes
from tests.s3 import SeaweedS3
from tests.servers import ServerProcess

BUCKET = "bench"
PREFIX = "videos"
URL_LIFETIME = timedelta(hours=2)


@dataclass(frozen=True)
class S3Contenders:
    """The service over S3 (base URL and process) and the big file's presigned URL at SeaweedFS."""

    service_url: str
    service: subprocess.Popen
    direct_url: str
    seaweed: subprocess.Popen


def start_s3_contenders(stack: ExitStack, big_file: Path, token: str) -> S3Contenders:
    """Start SeaweedFS and a service over it, store ``big_file``; everything stops with ``stack``."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-s3-")))
    (workdir / "seaweed").mkdir()
    seaweed = SeaweedS3(workdir / "seaweed")
    stack.callback(seaweed.stop)
    # Random bytes are no video: VIDEO_ACCEPT_ANY_FILE lets the upload scenario store them.
    service = ServerProcess({**seaweed.env(BUCKET, PREFIX), "VIDEO_STAGING_DIR": str(workdir / "staging"),
                             "VIDEO_ACCEPT_ANY_FILE": "true", "VIDEO_API_TOKEN": token})
    stack.callback(service.stop)
    store = seaweed.client(BUCKET)
    key = f"{PREFIX}/{big_file.name}"
    obstore.put(store, key, big_file)
    contenders = S3Contenders(service.url, service.process, obstore.sign(store, "GET", key, URL_LIFETIME),
                              seaweed.process)
    for url in (f"{service.url}/get_video_by_name/{big_file.name}", contenders.direct_url):
        check_first_bytes(url, big_file, "S3")
    return contenders
