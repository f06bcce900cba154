"""Answer only requests addressed to this service by name (DNS rebinding).

A page on `rebind.attacker.example` can make its name resolve to 127.0.0.1 and then call
this service from the victim's browser as if same-origin; the one trace it cannot hide is
its own name in `Host`. So: loopback names always pass, other names only when listed in
KK_ALLOWED_HOSTS. In open mode (no keys) this is always on; with keys it is on once
KK_ALLOWED_HOSTS is set (a key already stops a rebound page, which cannot know it).

Liveness and readiness probes are sent by orchestrators to the pod's IP: those two paths
also accept any IP-literal Host, which no rebinding attack can produce (the attacker's
page would have that IP as its own origin).
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from kk.errors import ErrorCode, error_response

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
PROBE_PATHS = frozenset({"/health/live", "/health/ready"})


def host_name(header: str) -> str:
    """`Host` without its port, lower-cased; IPv6 without brackets."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.exact = LOOPBACK_NAMES | {h for h in allowed if not h.startswith("*.")}
        self.suffixes = tuple(h[1:] for h in allowed if h.startswith("*."))  # ".example.com"

    def accepts(self, name: str, path: str) -> bool:
        if name in self.exact or (self.suffixes and name.endswith(self.suffixes)):
            return True
        return path in PROBE_PATHS and is_ip(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = next((v for k, v in scope["headers"] if k == b"host"), b"")
            name = host_name(raw.decode("latin-1"))
            if not self.accepts(name.rstrip("."), scope["path"]):
                shown = raw.decode("latin-1")[:100]
                message = (
                    f"Host '{shown}' is not served here: add its name to KK_ALLOWED_HOSTS "
                    "to accept it"
                )
                response = error_response(scope["path"], ErrorCode.MISDIRECTED_REQUEST, message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
