"""Believe X-Forwarded-For / X-Forwarded-Proto only from configured proxies.

Behind a proxy every request comes from the proxy's address; the proxy names the real
client in X-Forwarded-For. Anyone can send that header, so it is read only when the direct
peer is a trusted proxy, and then from the right: the right-most address that is not a
trusted proxy is the client (entries left of it were written by the client itself).
The scope's `client` (and `scheme`) are rewritten here, so rate limits, key-guessing
limits and cookies all see the real client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, app: ASGIApp, proxies: Iterable[str]) -> None:
        self.app = app
        self.networks: list[Network] = [ipaddress.ip_network(p, strict=False) for p in proxies]

    def trusted(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.networks)

    def real_client(self, forwarded: list[str], peer: str) -> str:
        """The right-most untrusted address of the chain `forwarded + [peer]`."""
        client = peer
        for entry in reversed(forwarded):
            ip = _ip(entry)
            if ip is None:
                break  # garbage in the chain: stop at the last hop we can vouch for
            client = str(ip)
            if not self.trusted(client):
                break
        return client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer and self.networks and self.trusted(peer[0]):
            forwarded: list[str] = []
            proto = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded.extend(value.decode("latin-1").split(","))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").split(",")[-1].strip().lower()
            scope["client"] = (self.real_client(forwarded, peer[0]), 0)
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)
