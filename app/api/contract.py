"""The OpenAPI document, made to say exactly what this running service does.

FastAPI describes the routes from their signatures and declared responses;
what a signature cannot say is added here, in one pass over the document:
the rules of a video's name, of an upload's id and of a language tag (read from the code that
enforces them), the size limits of this server, and whether writes need the
bearer token (only when the server has one: an open server's document asks
for none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI

from app.core.captions import LANGUAGE_PATTERN, MAX_TAG_CHARACTERS
from app.core.names import MAX_NAME_BYTES, stored_name_pattern
from app.core.settings import Settings
from app.uploads.sessions import UPLOAD_ID_PATTERN

Document = dict[str, Any]

_NAME = "VideoName"
_UPLOAD_ID = "UploadId"
_LANGUAGE = "LanguageTag"


def _schemas() -> dict[str, Any]:
    return {
        _NAME: {
            "type": "string", "minLength": 1, "maxLength": MAX_NAME_BYTES, "pattern": stored_name_pattern(),
            "description": f"A stored video's name: one path component, not hidden (no leading dot), no control "
                           f"or invisible characters, at most {MAX_NAME_BYTES} bytes of UTF-8.",
        },
        _UPLOAD_ID: {"type": "string", "pattern": f"^{UPLOAD_ID_PATTERN}$",
                     "description": "An upload's id, as the Location of its creation gave it."},
        _LANGUAGE: {"type": "string", "maxLength": MAX_TAG_CHARACTERS, "pattern": f"^{LANGUAGE_PATTERN}$",
                    "description": "A BCP 47 language tag (RFC 5646), such as en, pt-BR or zh-Hant-TW, in any case."},
    }


_PATH_PARAMETERS = {"name": _NAME, "upload_id": _UPLOAD_ID, "language": _LANGUAGE}


def _parameters(document: Document) -> Iterator[dict[str, Any]]:
    for operations in document["paths"].values():
        for operation in operations.values():
            yield from operation.get("parameters", [])


def _refer_to_shared_schemas(document: Document) -> None:
    """Every ``name`` and ``upload_id`` in a path takes its rules from one shared schema."""
    document.setdefault("components", {}).setdefault("schemas", {}).update(_schemas())
    for parameter in _parameters(document):
        shared = _PATH_PARAMETERS.get(parameter["name"]) if parameter["in"] == "path" else None
        if shared is not None:
            parameter["schema"] = {"$ref": f"#/components/schemas/{shared}"}


def _bound_by_settings(document: Document, settings: Settings) -> None:
    """Upload-Length and Upload-Offset are byte counts no larger than this server takes; Upload-Metadata is short."""
    count = {"type": "integer", "minimum": 0, "maximum": settings.max_upload_bytes}
    for parameter in _parameters(document):
        if parameter["in"] != "header":
            continue
        if parameter["name"] in ("Upload-Length", "Upload-Offset"):
            parameter["schema"] = count
        elif parameter["name"] == "Upload-Metadata":
            parameter["schema"] = {"type": "string", "maxLength": settings.max_upload_metadata_bytes}


def _open_writes(document: Document) -> None:
    """A server without a token takes writes from anyone: its document asks for no credentials."""
    document.get("components", {}).pop("securitySchemes", None)
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
            operation.get("responses", {}).pop("401", None)


def install(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json`` and ``/docs``) answer the refined document."""
    framework_document: Callable[[], Document] = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            document = framework_document()
            _refer_to_shared_schemas(document)
            _bound_by_settings(document, settings)
            if not settings.api_token:
                _open_writes(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
