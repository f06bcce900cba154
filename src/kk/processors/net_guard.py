"""Outbound HTTP for processors, guarded against SSRF.

A URL is refused unless its scheme is http(s) and every address its host resolves to is
publicly routable, or the host/address is in the operator's allow-list (`ssrf_allow`).

The check resolves the name before httpx connects, and httpx resolves it again to connect.
A DNS server that answers differently the second time (DNS rebinding) can slip through
that window; this is accepted: closing it needs pinning the connection to the checked
address, which httpx does not support without a custom transport. Every redirect hop is
checked again, so a public server cannot bounce a worker to an internal address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REDIRECTS = {301, 302, 303, 307, 308}


class BlockedURLError(ValueError):
    """The URL must not be fetched (bad scheme, no host, or a non-public address)."""


class ResponseTooLargeError(ValueError):
    """The response body passed the byte limit; `status` is what the server answered."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class TooManyRedirectsError(ValueError):
    pass


@dataclass(frozen=True)
class FetchResult:
    status: int
    headers: httpx.Headers
    body: bytes
    final_url: str


def _parse_allow(allow: list[str]) -> tuple[set[str], list[IPNetwork]]:
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in allow:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return names, networks


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4): it reaches that host."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def blocked_reason(ip: IPAddress) -> str | None:
    """Why a worker must not connect to `ip`, or None if it is publicly routable."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = blocked_reason(inner)
            return f"{reason} (embedded in {ip})" if reason else None
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip in _CGNAT, "carrier-grade NAT"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        # Whatever else IANA lists as special-purpose (documentation, benchmarking, ...).
        (not ip.is_global, "not globally routable"),
    )
    return next((f"{ip} is a {what} address" for hit, what in checks if hit), None)


def check_url(url: str, allow: list[str]) -> None:
    """Raise BlockedURLError unless `url` may be fetched. Resolves the host (blocking), so
    call it from a thread in async code. DNS failures propagate as `socket.gaierror`."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BlockedURLError(f"invalid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise BlockedURLError(f"scheme '{parsed.scheme}' is not allowed (only http, https)")
    host = parsed.host.rstrip(".").lower()
    if not host:
        raise BlockedURLError("URL has no host")
    names, networks = _parse_allow(allow)
    if host in names:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        # Strip an IPv6 zone ("fe80::1%eth0") before parsing.
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        reason = blocked_reason(ip)
        if reason and not any(ip in net for net in networks if net.version == ip.version):
            raise BlockedURLError(f"host '{host}' resolves to {reason}")
    if not infos:
        raise BlockedURLError(f"host '{host}' resolves to no address")


def _next_request(
    status: int, method: str, content: bytes | None
) -> tuple[str, bytes | None] | None:
    """Method and body for following a redirect, or None when it must not be followed.
    307/308 repeat the request as is; 301/302/303 turn it into a GET, which only makes
    sense when it was a GET already (a POST's payload would silently be dropped)."""
    if status in (307, 308):
        return method, content
    if method in ("GET", "HEAD"):
        return method, None
    return None


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLargeError(
            f"response of {declared} bytes exceeds the {max_bytes}-byte limit", response.status_code
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLargeError(
                f"response exceeds the {max_bytes}-byte limit", response.status_code
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch_bytes(
    url: str,
    *,
    allow: list[str],
    timeout_s: float,
    max_bytes: int,
    method: str = "GET",
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    max_redirects: int = 3,
) -> FetchResult:
    """One request with SSRF checks on the URL and on every redirect hop, a body limit and
    an overall deadline (TimeoutError past it). A 301/302/303 answer to a non-GET request
    is returned as is, not followed."""
    method = method.upper()
    async with asyncio.timeout(timeout_s):
        # trust_env=False: proxy variables must not route requests around the checks.
        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=timeout_s
        ) as client:
            current = url
            for _hop in range(max_redirects + 1):
                await asyncio.to_thread(check_url, current, allow)
                async with client.stream(
                    method, current, content=content, headers=headers
                ) as response:
                    location = response.headers.get("location")
                    follow = (
                        _next_request(response.status_code, method, content)
                        if response.status_code in _REDIRECTS and location
                        else None
                    )
                    if follow is None:
                        body = await _read_limited(response, max_bytes)
                        return FetchResult(response.status_code, response.headers, body, current)
                    method, content = follow
                    current = str(response.url.join(location))
            raise TooManyRedirectsError(f"more than {max_redirects} redirects from {url}")
