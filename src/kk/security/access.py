"""API keys with two roles: `read` (stats, listings, details) and `admin` (everything).

Keys come as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Every configured key is
compared in constant time, so timing does not reveal which one nearly matched. With no key
configured the service is open, and then only listens on loopback (see `kk serve`).

The dashboard signs in once with a key and then sends a session cookie instead
(`kk.security.session`). A browser sends that cookie on its own, so a change made with
it must also carry the session's CSRF token and come from this origin. Header keys are
never sent by a browser on its own, so they need neither.

Wrong keys count against the client's IP (`kk.security.failures`); signing out revokes the
session server-side (`kk.security.session.revoked`). docs/security.md has the threat model.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from fastapi import Request

from kk.errors import AppError, ErrorCode
from kk.security.failures import auth_failures
from kk.security.session import COOKIE, Session, keyring, revoked, same_origin

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RATE_LIMIT_PREFIX = "kk:ratelimit:"


class Role(StrEnum):
    read = "read"
    admin = "admin"


@dataclass(frozen=True)
class Identity:
    role: Role
    session: Session | None = None  # set when signed in through the dashboard
    key: str | None = field(default=None, repr=False)  # the header key, never shown


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


def key_role(request: Request, key: str) -> Role | None:
    settings = request.app.state.settings
    if _matches(key, settings.api_keys):
        return Role.admin
    if _matches(key, settings.read_api_keys):
        return Role.read
    return None


async def identify(request: Request) -> Identity | None:
    """Who sends this request: a header key wins over the cookie; a wrong key is not
    rescued by a valid cookie. A client over the wrong-key limit gets 429 before its key
    is even compared."""
    if not request.app.state.settings.auth_enabled:
        return Identity(Role.admin)
    key = presented_key(request)
    if key is not None:
        guard = auth_failures(request.app)
        client = client_ip(request)
        guard.check(client)
        role = key_role(request, key)
        if role is None:
            await guard.failed(request, client)
            return None
        return Identity(role, key=key)
    token = request.cookies.get(COOKIE)
    if token:
        session = keyring(request.app).parse(token)
        if session is not None and not await revoked(request.app, session):
            return Identity(Role(session.role), session=session)
    return None


async def still_signed_in(request: Request) -> Callable[[], Awaitable[bool]] | None:
    """For a long answer (an event stream) opened with a dashboard session: a check that
    the session is still live, neither signed out nor expired. None for a header key,
    whose access ends only when the configuration changes."""
    if presented_key(request) is not None or not request.app.state.settings.auth_enabled:
        return None
    token = request.cookies.get(COOKIE)
    session = keyring(request.app).parse(token) if token else None
    if session is None:
        return None
    app = request.app

    async def live() -> bool:
        return time.time() < session.expires and not await revoked(app, session)

    return live


def _listed_origin(request: Request) -> bool:
    origin = request.headers.get("origin", "").lower()
    return origin in request.app.state.settings.cors_origins


def _check_browser_mutation(request: Request, identity: Identity) -> None:
    # Open mode trusts a KK_CORS_ORIGINS page as it trusts this one; a cookie never travels
    # cross-origin on the service's behalf, so a session's change must come from here.
    listed = identity.session is None and _listed_origin(request)
    if not same_origin(request) and not listed:
        origin = request.headers.get("origin")
        raise AppError(
            ErrorCode.FORBIDDEN, f"Cross-site request refused: Origin '{origin}' is not this host"
        )
    if identity.session is None:
        return
    expected = keyring(request.app).csrf_token(identity.session.sid)
    given = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise AppError(
            ErrorCode.FORBIDDEN,
            "Missing or wrong X-CSRF-Token header: a change made with a dashboard session "
            "must send the token from GET /dashboard/session",
        )


async def _require(request: Request, needed: Role) -> Identity:
    identity = await identify(request)
    if identity is None:
        raise AppError(
            ErrorCode.UNAUTHORIZED, "A valid API key (or a dashboard sign-in) is required"
        )
    if request.method in MUTATING and identity.key is None:
        # Cookie sessions and the open (no key) mode: the browser may act for another site.
        _check_browser_mutation(request, identity)
    if needed is Role.admin and identity.role is not Role.admin:
        raise AppError(ErrorCode.FORBIDDEN, "This action needs an admin API key")
    return identity


def client_ip(request: Request) -> str:
    # The edge (kk.edge.proxies) has already replaced a trusted proxy's address.
    return request.client.host if request.client else "unknown"


async def rate_limit(request: Request, bucket: Callable[[], str]) -> None:
    """Fixed one-minute window per bucket, counted in Redis so every process shares it.
    `bucket` names the window's owner; it is only worked out when a limit is set."""
    limit = request.app.state.settings.rate_limit_per_minute
    if not limit:
        return
    now = time.time()
    window = int(now // 60)
    counter = f"{RATE_LIMIT_PREFIX}{bucket()}:{window}"
    async with request.app.state.runtime.redis.pipeline(transaction=False) as pipe:
        pipe.incr(counter)
        pipe.expire(counter, 61)
        count, _ = await pipe.execute()
    if count > limit:
        retry = max(1, math.ceil((window + 1) * 60 - now))
        raise AppError(
            ErrorCode.RATE_LIMITED,
            f"Rate limit of {limit} changes per minute reached; retry in {retry}s",
            headers={"Retry-After": str(retry)},
        )


def _bucket(request: Request, identity: Identity) -> str:
    if identity.session is not None:
        return f"key:{identity.session.kid}"  # same bucket as the key it signed in with
    if identity.key is not None:
        return f"key:{keyring(request.app).key_id(identity.key)}"
    return f"ip:{client_ip(request)}"


async def require_read(request: Request) -> Role:
    return (await _require(request, Role.read)).role


async def require_admin(request: Request) -> Role:
    identity = await _require(request, Role.admin)
    await rate_limit(request, lambda: _bucket(request, identity))
    return identity.role
