"""A video's caption tracks: list, add or replace, remove, and serve them (``app/library/captions.py``).

``PUT /video/{name}/captions/{language}`` takes an SRT or WebVTT file as the
raw body (``curl -T talk.srt``) and stores it as WebVTT; ``GET`` of
``/video/{name}/captions/{language}.vtt`` serves it, through the same
``delivery`` as every stored file (ranges, validators, 304), revalidated, as a
track may be replaced under the same URL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.convertors import Convertor, register_url_convertor

from app.api.auth import require_writer
from app.api.errors import documented
from app.api.models import CaptionInfo, CaptionList, caption_info
from app.api.streams import streaming_openapi, streaming_responses
from app.core.captions import LABEL_PATTERN, MAX_LABEL_CHARACTERS, check_label, language_tag
from app.core.errors import (CaptionsTooLarge, InvalidLabel, InvalidLanguage, InvalidName, NoSuchCaptions, NotCaptions, NotFound,
                             StorageFull, TooManyCaptions, WriteBusy, WriteNotAllowed)
from app.core.names import check_stored_name
from app.delivery import serve
from app.services import Services, get_services
from app.uploads.receive import receive_small_body

router = APIRouter()


class _LanguageConvertor(Convertor[str]):
    """A path segment without a dot, so that ``<language>.vtt`` (a track's file) is never taken for a language
    to write, and a write to it is answered 405; whether it is a language tag is for ``language_tag`` to say."""

    regex = "[^/.]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("language", _LanguageConvertor())

Language = Annotated[str, Path(description="A BCP 47 language tag, such as en, pt-BR or zh-Hant")]
Label = Annotated[str | None, Query(description="What players show for the track (else its language tag)",
                                    json_schema_extra={"maxLength": MAX_LABEL_CHARACTERS, "pattern": LABEL_PATTERN})]
# Checked by check_label, so that a refusal is the service's own 400, like every other in the API.


@router.get("/video/{name}/captions", response_model=CaptionList, responses=documented(InvalidName, NotFound))
async def list_captions(name: str, request: Request, services: Services = Depends(get_services)) -> CaptionList:
    """The video's caption tracks."""
    record = await services.library.describe(name)
    return CaptionList(captions=[caption_info(track, request, services.settings, name) for track in record.captions])


async def captions_file(name: str, language: Language, request: Request,
                        services: Services = Depends(get_services)) -> Response:
    """One caption track, as WebVTT."""
    check_stored_name(name)
    source = await services.captions.open(name, language)
    return await serve(request, source, f"{language}.vtt", services.settings)


router.add_api_route("/video/{name}/captions/{language:language}.vtt", captions_file, methods=["GET"],
                     summary="A caption track of a video, as WebVTT",
                     responses=streaming_responses(InvalidName, InvalidLanguage, NoSuchCaptions),
                     openapi_extra=streaming_openapi())
# HEAD answers what GET would (RFC 9110 section 9.3.2); left out of the document, which describes each GET once.
for _path, _endpoint in (("/video/{name}/captions", list_captions),
                         ("/video/{name}/captions/{language:language}.vtt", captions_file)):
    router.add_api_route(_path, _endpoint, methods=["HEAD"], include_in_schema=False)


@router.put(
    "/video/{name}/captions/{language:language}",
    response_model=CaptionInfo,
    status_code=201,
    dependencies=[Depends(require_writer)],
    responses={200: {"description": "Replaced", "model": CaptionInfo},
               **documented(InvalidName, InvalidLanguage, InvalidLabel, NotFound, WriteNotAllowed, CaptionsTooLarge, NotCaptions,
                            TooManyCaptions, WriteBusy, StorageFull)},
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {
        "type": "string", "format": "binary", "minLength": 1}}}}},
)
async def put_captions(name: str, language: Language, request: Request, label: Label = None, default: bool = False,
                       services: Services = Depends(get_services)) -> JSONResponse:
    """Add or replace the video's caption track in ``language`` from an SRT or WebVTT file (UTF-8), the raw body.

    Stored as WebVTT, its cue text reduced to text and WebVTT's own cue tags. ``default`` makes it the track
    players show unasked (and no other). Refused, leaving the tracks as they were, when it is not captions,
    too large, or one language too many.
    """
    check_stored_name(name)
    language = language_tag(language)
    if label is not None:
        check_label(label)
    data = await receive_small_body(request, services.settings.caption_max_bytes, CaptionsTooLarge)
    async with services.writing(name):
        await services.library.describe(name)
        track, created = await services.captions.put(name, language, label, default, data)
    info = caption_info(track, request, services.settings, name)
    return JSONResponse(info.model_dump(), status_code=201 if created else 200,
                        headers={"location": info.url} if created else {})


@router.delete("/video/{name}/captions/{language:language}", status_code=204, dependencies=[Depends(require_writer)],
               responses=documented(InvalidName, InvalidLanguage, WriteNotAllowed, NoSuchCaptions, WriteBusy))
async def delete_captions(name: str, language: Language, services: Services = Depends(get_services)) -> Response:
    """Remove the video's caption track in ``language``."""
    async with services.writing(check_stored_name(name)):
        await services.library.describe(name)
        await services.captions.delete(name, language)
    return Response(status_code=204)
