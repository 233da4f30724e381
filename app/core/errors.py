"""The service's one vocabulary of refusals, in the words of the domain.

Domain code raises these and never picks an HTTP status; ``app/api/errors.py``
holds the one table that answers each with a status, a short detail (JSON, or
a page for a browser) and headers. The message of an error is said to the
client, so it is written for a user and never holds a path or a trace.
Anything that is not a ``ServiceError`` is a fault of the server (a 500).

    ServiceError
    ├── InvalidName               a name no stored video may have
    ├── NotFound                  no stored video (or poster) has this name
    │   └── NoSuchCaptions        the video has no caption track in this language
    ├── InvalidCursor             a listing cursor this server did not hand out
    ├── PreconditionFailed        If-Match / If-None-Match refused a write
    │   └── AlreadyExists         a create-only publish found the name taken
    ├── WriteBusy                 another write to the name holds it longer than a write waits
    ├── WriteNotAllowed           a write without the right API token
    ├── UnknownHost               the request names a host not in VIDEO_ALLOWED_HOSTS
    ├── StorageFull               no room on the server's disk for these bytes now
    ├── Unavailable               the store or the database did not answer in time
    ├── UploadRefused             what was sent cannot become a video
    │   ├── MalformedUpload       not a well-formed upload request
    │   ├── UploadTooLarge        more bytes than VIDEO_MAX_UPLOAD_BYTES
    │   ├── UnsupportedUpload     a body of a type this endpoint does not take
    │   ├── ChecksumMismatch      a chunk's digest is not the one promised
    │   └── NotAVideo             not a whole, readable video
    ├── CaptionsRefused           what was sent cannot become a caption track
    │   ├── InvalidLanguage       not a BCP 47 language tag
    │   ├── InvalidLabel          not a label a player can show
    │   ├── NotCaptions           not a well-formed SRT or WebVTT file in UTF-8
    │   ├── CaptionsTooLarge      more bytes than VIDEO_CAPTION_MAX_BYTES
    │   └── TooManyCaptions       the video has VIDEO_CAPTION_MAX_TRACKS tracks already
    └── UploadSessionError        a resumable upload cannot take this request
        ├── UnknownUpload         no session has this id
        ├── ExpiredUpload         it outlived its expiry and was removed
        ├── AbandonedUpload       its ingest died with its process
        ├── UploadBusy            another request is appending to it
        ├── UploadClosed          it takes no more bytes (app.uploads.sessions:
        │                         it carries the session it refers to)
        ├── OffsetMismatch        the client's offset is not the upload's
        └── UnsupportedTusVersion the client speaks another tus version
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses; the message is said to the client."""


class InvalidName(ServiceError, ValueError):
    """The name cannot be a stored video's name; the message says why."""


class NotFound(ServiceError, LookupError):
    """No stored video (or poster) has this name."""


class NoSuchCaptions(NotFound):
    """The video has no caption track in this language."""


class InvalidCursor(ServiceError, ValueError):
    """A listing's ``cursor`` is not one this server handed out (or it was altered)."""


class PreconditionFailed(ServiceError):
    """A conditional write found the video changed, or already there."""


class AlreadyExists(PreconditionFailed, FileExistsError):
    """A create-only publish found the name taken."""


class WriteBusy(ServiceError):
    """Another write to this name (on this instance or another) held it for longer than a write waits for it.

    Not a refusal of what was sent: the same request may be sent again.
    """

    def __init__(self) -> None:
        super().__init__("another write to this video is in progress: try again shortly")


class WriteNotAllowed(ServiceError):
    """A write came without the server's API token."""


class UnknownHost(ServiceError):
    """The request's host (the one its URLs would carry) is not one this server answers for."""

    def __init__(self) -> None:
        super().__init__("this server does not answer for that host")


class StorageFull(ServiceError):
    """The server's disk has no room for the upload now (full, over quota, or at VIDEO_MIN_FREE_BYTES).

    Not a refusal of what was sent: the same bytes may be sent again once there is room.
    """

    def __init__(self) -> None:
        super().__init__("the server has no storage space left for this upload: try again later")


class Unavailable(ServiceError):
    """A part the service stands on (its object store, its database) failed or did not answer in time.

    Not a refusal of the request: the same request may succeed once that part answers again, so
    clients are told to try again later.
    """


class UploadRefused(ServiceError):
    """The bytes sent cannot become a stored video."""


class MalformedUpload(UploadRefused, ValueError):
    """The request is not a well-formed upload (a bad form, header or body)."""


class UploadTooLarge(UploadRefused):
    """The upload is larger than the configured limit."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the upload is larger than the limit of {max_bytes} bytes")


class UnsupportedUpload(UploadRefused):
    """The body is of a media type this endpoint does not take."""


class NotAVideo(UploadRefused, ValueError):
    """The file is not a whole, readable video; the message says why in a user's words."""


class CaptionsRefused(ServiceError):
    """What was sent cannot become one of a video's caption tracks; the stored tracks stay as they were."""


class InvalidLanguage(CaptionsRefused, ValueError):
    """The language of a caption track is not a BCP 47 tag."""


class InvalidLabel(CaptionsRefused, ValueError):
    """A caption track's label is empty, too long, or holds control characters."""


class NotCaptions(CaptionsRefused, ValueError):
    """The file is not a well-formed SRT or WebVTT file in UTF-8; the message says where."""


class CaptionsTooLarge(CaptionsRefused):
    """The caption file is larger than the configured limit."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the caption file is larger than the limit of {max_bytes} bytes")


class TooManyCaptions(CaptionsRefused):
    """The video has as many caption tracks as it may (a new language is refused; a replaced one is not)."""

    def __init__(self, max_tracks: int) -> None:
        super().__init__(f"the video has {max_tracks} caption tracks, the most it may have: delete one first")


class UploadSessionError(ServiceError):
    """A resumable upload session cannot take this request."""


class UnknownUpload(UploadSessionError, LookupError):
    """No upload session has this id (never created, finished long ago, or terminated)."""


class ExpiredUpload(UploadSessionError, LookupError):
    """The session outlived its expiry and has been removed."""


class AbandonedUpload(UploadSessionError, LookupError):
    """The session was being ingested by a process that died; its bytes are gone, and so is the session now."""


class UploadBusy(UploadSessionError):
    """Another request is appending to this session right now."""


class OffsetMismatch(UploadSessionError):
    """The offset a client sent is not the upload's offset."""


class ChecksumMismatch(UploadRefused):
    """The digest of the received chunk is not the one the client promised."""


class UnsupportedTusVersion(UploadSessionError):
    """The client does not speak the tus version this server does."""
