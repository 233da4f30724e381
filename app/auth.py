"""Write protection: with ``VIDEO_API_TOKEN`` set, every write needs the bearer token.

Reads stay public. The comparison takes the same time whatever the guess, so
the token cannot be found one character at a time.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.services import Services, services

_bearer = HTTPBearer(auto_error=False, description="VIDEO_API_TOKEN, when the server has one")


async def require_writer(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    app: Services = Depends(services),
) -> None:
    """FastAPI dependency for write routes: 401 unless the bearer token matches."""
    expected = app.settings.api_token
    if not expected:
        return
    offered = credentials.credentials if credentials else ""
    if not hmac.compare_digest(offered.encode(), expected.encode()):
        raise HTTPException(
            status_code=401,
            detail="this server requires 'Authorization: Bearer <token>' for writes",
            headers={"www-authenticate": 'Bearer realm="video"'},
        )
