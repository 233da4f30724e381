"""Health for load balancers and process managers: liveness (``/healthz``) and readiness (``/readyz``).

Liveness says only that the process answers; readiness also asks the store
and the catalog's database, each within ``VIDEO_READY_TIMEOUT_SECONDS``, so
that a load balancer stops sending work to an instance that cannot serve it
(its store stalled or its database gone) and tries it again later.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.errors import RETRY_AFTER_SECONDS
from app.services import Services, get_services

router = APIRouter()


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``ready``, or ``unavailable`` with the reason in ``detail``."""

    status: Literal["ready", "unavailable"]
    detail: str | None = None


async def healthz() -> Liveness:
    """Liveness: the process answers."""
    return Liveness(status="ok")


async def readyz(services: Services = Depends(get_services)) -> JSONResponse:
    """Readiness: 200 while this instance's store and database answer, else 503 with ``Retry-After``."""
    reason = await services.unready()
    if reason is None:
        return JSONResponse(Readiness(status="ready").model_dump(exclude_none=True))
    return JSONResponse(Readiness(status="unavailable", detail=reason).model_dump(), status_code=503,
                        headers={"retry-after": str(RETRY_AFTER_SECONDS)})


_UNREADY = {503: {"description": "The store or the database does not answer; ask again after Retry-After seconds",
                  "model": Readiness, "headers": {"Retry-After": {"schema": {"type": "integer"}}}}}

# HEAD answers what GET would, without the body; left out of the document, which describes each GET once.
for _path, _endpoint, _model, _responses in (("/healthz", healthz, Liveness, {}),
                                             ("/readyz", readyz, Readiness, _UNREADY)):
    router.add_api_route(_path, _endpoint, methods=["GET"], response_model=_model, responses=_responses)
    router.add_api_route(_path, _endpoint, methods=["HEAD"], include_in_schema=False)
