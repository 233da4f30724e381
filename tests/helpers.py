"""Small helpers the tests share for looking at and filling a store."""

from __future__ import annotations

from pathlib import Path


def store_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under a store, hidden ones included, with its bytes."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def put_file(store: Path, name: str, data: bytes) -> Path:
    """Place a file in a store by hand, as an operator copying videos in would."""
    path = store / name
    path.write_bytes(data)
    return path
