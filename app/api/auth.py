"""Write protection: with ``VIDEO_API_TOKEN`` set, every write needs the bearer token.

Reads stay public. The comparison takes the same time whatever the guess, so
the token cannot be found one character at a time.
"""

from __future__ import annotations

import hmac

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.errors import WriteNotAllowed
from app.services import Services, get_services

_bearer = HTTPBearer(auto_error=False, description="VIDEO_API_TOKEN, when the server has one")


async def require_writer(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    services: Services = Depends(get_services),
) -> None:
    """FastAPI dependency for write routes: WriteNotAllowed unless the bearer token matches."""
    expected = services.settings.api_token
    if not expected:
        return
    offered = credentials.credentials if credentials else ""
    if not hmac.compare_digest(offered.encode(), expected.encode()):
        raise WriteNotAllowed("this server requires 'Authorization: Bearer <token>' for writes")
