"""Where a request points inside the app, for the layers that look before the router does."""

from __future__ import annotations

from starlette.types import Scope


def app_path(scope: Scope) -> str:
    """The request's path without the app's ``root_path`` (when the app is mounted under a prefix)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


def under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or lies below it (``/uploads`` holds ``/uploads/x``, not ``/uploadsx``)."""
    return path == prefix or path.startswith(prefix + "/")
