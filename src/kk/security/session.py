"""Dashboard sessions: a signed cookie, so the browser never keeps an API key itself.

A token reads `v1.<role>.<expires>.<sid>.<kid>.<sig>`:
- `sid` is random per sign-in; the CSRF token is HMAC(secret, "csrf:" + sid), so it is
  bound to the session and nothing is stored server-side;
- `kid` identifies the key used to sign in (an HMAC of it): removing that key from the
  configuration, or moving it to the other role, ends its sessions at once;
- `sig` is HMAC-SHA256 over everything before it.

Signing out revokes the sid server-side: a Redis key that lives as long as the session
would have, so a copied cookie stops working at logout, not at expiry. Parsing stays pure
(no I/O); the revocation is looked up only for a cookie that parsed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request

from kk.config import Settings
from kk.files import create_exclusive

COOKIE = "kk_session"
REVOKED_PREFIX = "kk:session:revoked:"
_ROLES = ("read", "admin")


def _mac(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_secret(settings: Settings) -> bytes:
    """The configured secret, else one generated once and kept in the data dir (0600),
    shared by every process using that dir so a session works on any of them."""
    if settings.session_secret:
        return settings.session_secret.encode()
    path: Path = settings.data_dir / "session.secret"
    if not path.exists():
        create_exclusive(path, secrets.token_hex(32).encode(), mode=0o600)
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it to generate a new secret")
    return secret.encode()


@dataclass(frozen=True)
class Session:
    role: str
    sid: str
    kid: str
    expires: int


class Keyring:
    """The session secret and the id of every configured key, computed once per app."""

    def __init__(self, settings: Settings) -> None:
        self.secret = load_secret(settings)
        self.roles: dict[str, str] = {}
        for role, keys in (("read", settings.read_api_keys), ("admin", settings.api_keys)):
            for key in keys:
                self.roles[self.key_id(key)] = role  # a key listed twice counts as admin

    def key_id(self, key: str) -> str:
        # Keyed hash: a Redis or log reader cannot test guesses of a key offline.
        return _mac(self.secret, "key:" + key)[:22]

    def csrf_token(self, sid: str) -> str:
        return _mac(self.secret, "csrf:" + sid)

    def issue(self, role: str, key: str, ttl_s: int) -> tuple[str, Session]:
        expires = int(time.time()) + ttl_s
        session = Session(role, secrets.token_urlsafe(18), self.key_id(key), expires)
        body = f"v1.{role}.{session.expires}.{session.sid}.{session.kid}"
        return f"{body}.{_mac(self.secret, body)}", session

    def parse(self, token: str) -> Session | None:
        """The session a cookie carries, or None when forged, expired or its key is gone."""
        if len(token) > 512:
            return None
        body, _, sig = token.rpartition(".")
        if not hmac.compare_digest(_mac(self.secret, body).encode(), sig.encode()):
            return None
        parts = body.split(".")
        if len(parts) != 5 or parts[0] != "v1" or parts[1] not in _ROLES:
            return None
        _, role, expires, sid, kid = parts
        if not expires.isdigit() or int(expires) <= time.time():
            return None
        if self.roles.get(kid) != role:
            return None
        return Session(role, sid, kid, int(expires))


async def revoke(app: FastAPI, session: Session) -> None:
    ttl = session.expires - int(time.time())
    if ttl > 0:
        await app.state.runtime.redis.set(f"{REVOKED_PREFIX}{session.sid}", 1, ex=ttl)


async def revoked(app: FastAPI, session: Session) -> bool:
    return bool(await app.state.runtime.redis.exists(f"{REVOKED_PREFIX}{session.sid}"))


def keyring(app: FastAPI) -> Keyring:
    ring = getattr(app.state, "keyring", None)
    if ring is None:
        ring = app.state.keyring = Keyring(app.state.settings)
    return ring


def _strip_default_port(netloc: str) -> str:
    netloc = netloc.lower()
    for default in (":80", ":443"):
        if netloc.endswith(default):
            return netloc.removesuffix(default)
    return netloc


def same_origin(request: Request) -> bool:
    """False when a browser says the request comes from another site (an `Origin` that is
    not this host, or `null`). Requests without Origin (non-browser clients) pass."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    try:
        parts = urlsplit(origin)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return valid and _strip_default_port(parts.netloc) == _strip_default_port(host)
