"""``python -m app upload FILE...``: resumable uploads from a terminal or a script.

The tus protocol is tuspy's; the progress display is rich's. Upload URLs are
remembered between runs (by a fingerprint of each file), so running the same
command again after an interruption resumes from the server's offset. An
upload is forgotten only once the server has said where its video is: if a run
missed the final answer, the next one asks (and waits while the server is
still making the video).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import requests
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from tusclient.request import catch_requests_error
from tusclient.storage.filestorage import FileStorage
from tusclient.uploader import Uploader

DEFAULT_SERVER = "http://127.0.0.1:8000"
DEFAULT_STATE = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "video-upload" / "urls.json"
_REFUSALS = {
    401: "the server wants a token: pass --token",
    404: "the server lost this upload",
    413: "the file is larger than the server accepts",
    415: "the server refused it",
}
# How long to wait for a video the server has every byte of but is still making (multi-GB ones take a while).
INGEST_WAIT_SECONDS = 600
INGEST_POLL_SECONDS = 1.0


class UploadFailed(Exception):
    """One file could not be uploaded; the message is for the user."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    upload = commands.add_parser("upload", help="upload videos resumably, with progress")
    upload.add_argument("files", nargs="+", type=Path, metavar="FILE")
    upload.add_argument("--server", default=os.environ.get("VIDEO_SERVER", DEFAULT_SERVER),
                        help=f"service base URL (default: $VIDEO_SERVER or {DEFAULT_SERVER})")
    upload.add_argument("--token", default=os.environ.get("VIDEO_API_TOKEN"),
                        help="bearer token for servers with VIDEO_API_TOKEN (default: $VIDEO_API_TOKEN)")
    upload.add_argument("--chunk-size", type=int, default=8 * 1024 * 1024, help="bytes per request")
    upload.add_argument("--state-file", type=Path, default=DEFAULT_STATE,
                        help="where upload URLs are remembered between runs")
    return parser.parse_args(argv)


def _explain(error: TusCommunicationError) -> str:
    """A sentence from the server's status and JSON detail."""
    detail = ""
    try:
        detail = json.loads(error.response_content or b"{}").get("detail", "")
    except (ValueError, AttributeError):
        pass
    if error.status_code is None:
        return f"could not reach the server ({error})"
    reason = _REFUSALS.get(error.status_code, f"the server answered {error.status_code}")
    return f"{reason}: {detail}" if detail else reason


def _uploader(path: Path, client: TusClient, storage: FileStorage, chunk_size: int) -> Uploader:
    """Resume from a remembered URL when the server still has it, else start anew."""
    options = {"file_path": str(path), "client": client, "chunk_size": chunk_size, "store_url": True,
               "url_storage": storage, "metadata": {"filename": path.name}, "upload_checksum": True}
    try:
        return Uploader(**options)
    except TusCommunicationError:  # the remembered upload expired or was finished: start again
        storage.remove_item(Uploader(file_path=str(path), client=client)._get_fingerprint())
        return Uploader(**options)


def upload_file(path: Path, client: TusClient, storage: FileStorage, chunk_size: int,
                progress: Progress) -> str:
    """Upload one file (resuming if possible) and return its video URL."""
    if not path.is_file():
        raise UploadFailed("no such file")
    try:
        uploader = _uploader(path, client, storage, chunk_size)
        size = uploader.get_file_size()
        task = progress.add_task(path.name, total=size, completed=uploader.offset)
        if uploader.offset:
            progress.console.print(f"{path.name}: resuming at byte {uploader.offset} of {size}")
        if not uploader.url:
            uploader.set_url(uploader.create_url())
        while uploader.offset < size:
            uploader.upload_chunk()
            progress.update(task, completed=uploader.offset)
        url = uploader.request.response_headers.get("video-url") if uploader.request else None
        url = url or _ask_for_video_url(uploader, path, progress)
    except TusCommunicationError as error:
        raise UploadFailed(_explain(error)) from None
    storage.remove_item(uploader._get_fingerprint())
    return url


def _ask_for_video_url(uploader: Uploader, path: Path, progress: Progress) -> str:
    """The video's URL from HEAD, when the final PATCH's answer did not bring it (it was lost, in this run or one before)."""
    url = _video_url_from_head(uploader)
    if url is None:
        progress.console.print(f"{path.name}: the server has every byte; waiting for it to finish the video")
        url = _wait_for_video_url(uploader)
    return url


def _wait_for_video_url(uploader: Uploader) -> str:
    """Ask again for a while: the server may take minutes over a big video; giving up leaves it remembered."""
    deadline = time.monotonic() + INGEST_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(INGEST_POLL_SECONDS)
        if url := _video_url_from_head(uploader):
            return url
    raise UploadFailed("the server has every byte but has not finished the video yet: run the same command later")


@catch_requests_error
def _video_url_from_head(uploader: Uploader) -> str | None:
    response = requests.head(uploader.url, headers=uploader.get_headers(), timeout=30)
    if response.status_code != 200:
        raise TusCommunicationError(None, response.status_code, response.content)
    return response.headers.get("video-url")


def _url_storage(path: Path, console: Console) -> FileStorage:
    """The remembered upload URLs; an unreadable file is set aside, with a warning, and memory starts empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = FileStorage(str(path))
    try:
        storage.get_item("")  # TinyDB reads the whole file on every query: this is the check
    except (ValueError, TypeError, AttributeError) as error:
        storage.close()
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        console.print(f"warning: could not read the remembered uploads in {path} ({error}); "
                      f"moved it to {aside} and started afresh", style="yellow", markup=False, highlight=False,
                      soft_wrap=True)
        storage = FileStorage(str(path))
    return storage


def upload(args: argparse.Namespace, console: Console) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    client = TusClient(args.server.rstrip("/") + "/uploads/", headers=headers)
    storage = _url_storage(args.state_file, console)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    results: list[tuple[Path, str, bool]] = []
    with Progress(*columns, console=console) as progress:
        for path in args.files:
            try:
                results.append((path, upload_file(path, client, storage, args.chunk_size, progress), True))
            except UploadFailed as failure:
                results.append((path, str(failure), False))
    storage.close()
    for path, outcome, ok in results:
        console.print(f"{path}: {outcome}" if ok else f"[red]{path}: failed: {outcome}[/red]", highlight=False,
                      soft_wrap=True)
    return 0 if all(ok for _, _, ok in results) else 1


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    console = Console(stderr=False)
    try:
        return upload(args, console)
    except KeyboardInterrupt:
        console.print("interrupted: run the same command again to resume")
        return 130

