"""API keys with two roles: `read` (stats, listings, details) and `admin` (everything).

Keys come as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Every configured key is
compared in constant time, so timing does not reveal which one nearly matched. With no key
configured the service is open, and then only listens on loopback (see `kk serve`).
"""

from __future__ import annotations

import hmac
from enum import StrEnum

from fastapi import Request

from kk.errors import AppError, ErrorCode


class Role(StrEnum):
    read = "read"
    admin = "admin"


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def _matches(key: str, candidates: list[str]) -> bool:
    found = False
    for candidate in candidates:
        # No early exit: the time taken does not depend on which key matched.
        found |= hmac.compare_digest(key.encode(), candidate.encode())
    return found


def role_of(request: Request) -> Role | None:
    settings = request.app.state.settings
    if not settings.auth_enabled:
        return Role.admin
    key = presented_key(request)
    if key is None:
        return None
    if _matches(key, settings.api_keys):
        return Role.admin
    if _matches(key, settings.read_api_keys):
        return Role.read
    return None


def _require(request: Request, needed: Role) -> Role:
    role = role_of(request)
    if role is None:
        raise AppError(ErrorCode.UNAUTHORIZED, "A valid API key is required")
    if needed is Role.admin and role is not Role.admin:
        raise AppError(ErrorCode.FORBIDDEN, "This action needs an admin API key")
    return role


async def require_read(request: Request) -> Role:
    return _require(request, Role.read)


async def require_admin(request: Request) -> Role:
    return _require(request, Role.admin)
