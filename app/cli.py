"""``python -m app upload FILE...``: resumable uploads from a terminal or a script.

The tus protocol is tuspy's; the progress display is rich's. Upload URLs are
remembered between runs (by a fingerprint of each file), so running the same
command again after an interruption resumes from the server's offset.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
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
    except TusCommunicationError as error:
        raise UploadFailed(_explain(error)) from None
    storage.remove_item(uploader._get_fingerprint())
    url = uploader.request.response_headers.get("video-url") if uploader.request else None
    if not url:
        raise UploadFailed("the server did not say where the video is")
    return url


def upload(args: argparse.Namespace, console: Console) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    client = TusClient(args.server.rstrip("/") + "/uploads/", headers=headers)
    args.state_file.parent.mkdir(parents=True, exist_ok=True)
    storage = FileStorage(str(args.state_file))
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

