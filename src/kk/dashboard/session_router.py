"""/dashboard/login, /logout and /session: sign in with a key, get an HttpOnly cookie.

These routes are open by design (they are how one gets in). Login attempts count against
the rate limit of the client's IP, and wrong keys against its wrong-key limit
(`kk.security.failures`), which stops key guessing. Logout revokes the session server-side.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from kk.errors import AppError, ErrorCode
from kk.schemas import Envelope
from kk.security.access import client_ip, identify, key_role, rate_limit
from kk.security.failures import auth_failures
from kk.security.session import COOKIE, keyring, revoke, same_origin
from kk.times import iso_z

router = APIRouter(prefix="/dashboard", tags=["dashboard"])

MAX_KEY_CHARS = 4096
_KEY_BODY = {
    "type": "object",
    "required": ["key"],
    "properties": {"key": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS}},
}
_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _KEY_BODY},
            "application/x-www-form-urlencoded": {"schema": _KEY_BODY},
        },
    }
}


class SessionInfo(BaseModel):
    role: Literal["read", "admin"]
    # Send it as X-CSRF-Token with every change; null when no session is involved.
    csrfToken: str | None = None
    authEnabled: bool = True
    expiresAt: str | None = None


class SignedOut(BaseModel):
    success: Literal[True] = True
    message: str


def _iso(ts: int) -> str:
    return iso_z(datetime.fromtimestamp(ts, UTC), "seconds")


def _refuse_cross_site(request: Request) -> None:
    if not same_origin(request):
        raise AppError(ErrorCode.FORBIDDEN, "Cross-site request refused: Origin is not this host")


async def _read_key(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    fields: Any
    try:
        if content_type == "application/json":
            fields = json.loads(raw or b"null")
        elif content_type == "application/x-www-form-urlencoded":
            fields = {k: v[-1] for k, v in parse_qs(raw.decode(), max_num_fields=10).items()}
        else:
            raise AppError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                'Send the key as JSON {"key": ...} or as a form field named key',
            )
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past the parser's stack
        raise AppError(ErrorCode.VALIDATION_ERROR, "Invalid request: body is malformed") from None
    key = fields.get("key") if isinstance(fields, dict) else None
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
        raise AppError(ErrorCode.VALIDATION_ERROR, "Invalid request: key: a key is required")
    try:
        key.encode()  # JSON may carry lone surrogates ("\ud800"), which no key contains
    except UnicodeEncodeError:
        raise AppError(
            ErrorCode.VALIDATION_ERROR, "Invalid request: key: not valid Unicode text"
        ) from None
    return key.strip()


def _cookie_options(request: Request) -> dict[str, Any]:
    # Secure only over https: a plain-http loopback setup must still be able to sign in.
    return {
        "path": "/",
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }


@router.post("/login", openapi_extra=_LOGIN_BODY)
async def login(request: Request, response: Response) -> Envelope[SessionInfo]:
    _refuse_cross_site(request)
    await rate_limit(request, lambda: f"login:{client_ip(request)}")
    settings = request.app.state.settings
    guard = auth_failures(request.app)
    if settings.auth_enabled:
        guard.check(client_ip(request))  # before the key is read, let alone compared
    key = await _read_key(request)
    if not settings.auth_enabled:
        return Envelope(data=SessionInfo(role="admin", authEnabled=False))
    role = key_role(request, key)
    if role is None:
        await guard.failed(request, client_ip(request))
        raise AppError(ErrorCode.UNAUTHORIZED, "Wrong API key")
    ring = keyring(request.app)
    token, session = ring.issue(role.value, key, settings.session_ttl_s)
    response.set_cookie(COOKIE, token, max_age=settings.session_ttl_s, **_cookie_options(request))
    info = SessionInfo(
        role=role.value, csrfToken=ring.csrf_token(session.sid), expiresAt=_iso(session.expires)
    )
    return Envelope(data=info)


@router.post("/logout")
async def logout(request: Request, response: Response) -> SignedOut:
    _refuse_cross_site(request)
    token = request.cookies.get(COOKIE)
    session = keyring(request.app).parse(token) if token else None
    if session is not None:
        await revoke(request.app, session)  # a copy of the cookie must not outlive this
    response.delete_cookie(COOKIE, **_cookie_options(request))
    return SignedOut(message="Signed out")


@router.get("/session")
async def session(request: Request) -> Envelope[SessionInfo]:
    if not request.app.state.settings.auth_enabled:
        return Envelope(data=SessionInfo(role="admin", authEnabled=False))
    identity = await identify(request)
    if identity is None:
        raise AppError(ErrorCode.UNAUTHORIZED, "Not signed in")
    info = SessionInfo(role=identity.role.value)
    if identity.session is not None:
        info.csrfToken = keyring(request.app).csrf_token(identity.session.sid)
        info.expiresAt = _iso(identity.session.expires)
    return Envelope(data=info)
