"""Outbound HTTP for processors, guarded against SSRF.

A URL is refused unless its scheme is http(s) and every address its host resolves to is
publicly routable, or the host/address is in the operator's allow-list (`ssrf_allow`).

The check is made per connection, where the connection is made: the transport's network
backend resolves the host once, checks every address and connects to a checked one, never
to a second, unchecked answer. A DNS server that answers a public address to the check and
an internal one later (DNS rebinding) gets nowhere. TLS still verifies the certificate for
the URL's name (SNI), and the Host header is the URL's.

One `GuardedHttp` (client, pool, SSL context) serves every job of a worker process: a
kept-alive connection is reused only for the origin (scheme, host, port) it was opened and
checked for (httpcore's pool matches on it), and a new connection is checked again, so a
changed DNS answer is seen by the next connection. Every redirect hop goes through the same
checks, so a public server cannot bounce a worker to an internal address; a hop to another
origin carries only the headers in `SAFE_CROSS_ORIGIN_HEADERS`, as browsers and curl drop
credentials there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from kk.compat.pinned_http import PinnedTransport

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REDIRECTS = {301, 302, 303, 307, 308}
# Headers a redirect to another origin keeps; Authorization, cookies, signatures and any
# other header a job set are dropped (they were meant for the first origin only).
SAFE_CROSS_ORIGIN_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "content-type", "user-agent",
     "idempotency-key"}
)  # fmt: skip


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
        # fec0::/10, deprecated but still routed inside some networks; Python calls it global.
        (getattr(ip, "is_site_local", False), "site-local"),
        (ip.is_multicast, "multicast"),
        (ip in _CGNAT, "carrier-grade NAT"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        # Whatever else IANA lists as special-purpose (documentation, benchmarking, ...).
        (not ip.is_global, "not globally routable"),
    )
    return next((f"{ip} is a {what} address" for hit, what in checks if hit), None)


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (blocking). One function, so that the check and the
    connection provably use the same answer."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(host: str, port: int, allow: list[str]) -> list[str]:
    """Resolve `host` once and return its addresses if every one may be reached, else raise
    BlockedURLError. DNS failures propagate as `socket.gaierror`."""
    name = host.rstrip(".").lower()
    names, networks = _parse_allow(allow)
    addresses = resolve(host, port)
    if not addresses:
        raise BlockedURLError(f"host '{name}' resolves to no address")
    if name in names:
        return addresses
    for address in addresses:
        # Strip an IPv6 zone ("fe80::1%eth0") before parsing.
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        reason = blocked_reason(ip)
        if reason and not any(ip in net for net in networks if net.version == ip.version):
            raise BlockedURLError(
                f"host '{name}' resolves to {reason}; allow it with KK_SSRF_ALLOW if intended"
            )
    return addresses


def _target(url: str) -> tuple[str, int]:
    """(host as the connection layer sees it, port) of a URL, or BlockedURLError."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BlockedURLError(f"invalid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise BlockedURLError(f"scheme '{parsed.scheme}' is not allowed (only http, https)")
    if not parsed.host.rstrip("."):
        raise BlockedURLError("URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.raw_host.decode("ascii"), port


def check_url(url: str, allow: list[str]) -> list[str]:
    """Raise BlockedURLError unless `url` may be fetched; return the checked addresses of
    its host. Resolves the host (blocking), so call it from a thread in async code."""
    host, port = _target(url)
    return checked_addresses(host, port, allow)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Every new connection: resolve once, check every address, connect to a checked one.
    Nothing is remembered between connections, so a later DNS answer is checked again."""

    def __init__(self, allow: list[str]) -> None:
        self.allow = allow
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        # BlockedURLError is no httpcore error: httpx lets it through to the caller as is.
        addresses = await asyncio.to_thread(checked_addresses, host, port, self.allow)
        error: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address.split("%", 1)[0], port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = 443 if url.scheme == "https" else 80
    return url.scheme, url.host.rstrip(".").lower(), url.port or default


def _same_origin_only(headers: dict[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    return {k: v for k, v in headers.items() if k.lower() in SAFE_CROSS_ORIGIN_HEADERS}


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


# No pool-wide cap (the jobs' concurrency bounds the connections, and a wait for a pool slot
# would eat a delivery's deadline); enough idle ones kept for a concurrency-200 queue.
POOL_LIMITS = httpx.Limits(
    max_connections=None, max_keepalive_connections=200, keepalive_expiry=5.0
)


class GuardedHttp:
    """A pooled client whose every connection is SSRF-checked; one serves a whole process.
    Create it inside the event loop that will use it."""

    def __init__(self, allow: list[str]) -> None:
        self.allow = allow
        # trust_env=False: proxy variables must not route requests around the checks.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            transport=PinnedTransport(_PinnedBackend(allow), POOL_LIMITS),
        )

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> GuardedHttp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def fetch(
        self,
        url: str,
        *,
        timeout_s: float,
        max_bytes: int,
        method: str = "GET",
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        max_redirects: int = 3,
    ) -> FetchResult:
        """One request with SSRF checks on every connection (each redirect hop's too), a
        body limit and an overall deadline (TimeoutError past it). A 301/302/303 answer to
        a non-GET request is returned as is, not followed."""
        method = method.upper()
        _target(url)  # a malformed URL is refused before anything else
        first_origin = _origin(httpx.URL(url))
        current = url
        async with asyncio.timeout(timeout_s):
            for _hop in range(max_redirects + 1):
                _target(current)  # scheme and host of each hop; the address at connect
                async with self._client.stream(
                    method, current, content=content, headers=headers, timeout=timeout_s
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
                    if _origin(httpx.URL(current)) != first_origin:
                        headers = _same_origin_only(headers)
        raise TooManyRedirectsError(f"more than {max_redirects} redirects from {url}")


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
    """`GuardedHttp.fetch` on a client of its own, closed afterwards. Processors use the
    process's shared one (`JobContext.http`) instead: no new pool per request."""
    async with GuardedHttp(allow) as http:
        return await http.fetch(
            url,
            timeout_s=timeout_s,
            max_bytes=max_bytes,
            method=method,
            content=content,
            headers=headers,
            max_redirects=max_redirects,
        )
