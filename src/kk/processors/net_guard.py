"""Outbound HTTP for processors, guarded against SSRF.

A URL is refused unless its scheme is http(s) and every address its host resolves to is
publicly routable, or the host/address is in the operator's allow-list (`ssrf_allow`).

The check is made per connection, where the connection is made: the HTTP client's resolver
resolves the host once, checks every address and hands only checked ones to the connector,
which connects to them, never to a second, unchecked answer. A DNS server that answers a
public address to the check and an internal one later (DNS rebinding) gets nowhere. An IP
literal, which the client connects to without resolving, is checked before each request.
TLS still verifies the certificate for the URL's name (SNI), and the Host header is the
URL's.

One `GuardedHttp` (aiohttp session, connector, SSL context) serves every job of a worker
process: a kept-alive connection is reused only for the (host, port, TLS) it was opened and
checked for (the connector's pool key), the DNS answer is never cached, so a new connection
is checked again, and no cookie is kept between requests. Every redirect hop goes through
the same checks, so a public server cannot bounce a worker to an internal address; a hop to
another origin carries only the headers in `SAFE_CROSS_ORIGIN_HEADERS`, as browsers and
curl drop credentials there. aiohttp, not httpx: a delivery costs about a fifth of the CPU
(its parser is C), which is what sets a worker's deliveries per second.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

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


class FetchError(OSError):
    """The request failed on the way (connection refused or reset, a broken answer): worth
    retrying, unlike the errors above."""


@dataclass(frozen=True)
class FetchResult:
    status: int
    headers: Mapping[str, str]
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


def _parsed(url: str) -> URL:
    """The URL as the client will use it, or BlockedURLError."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise BlockedURLError(f"invalid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise BlockedURLError(f"scheme '{parsed.scheme}' is not allowed (only http, https)")
    if not parsed.raw_host or not parsed.raw_host.rstrip("."):
        raise BlockedURLError("URL has no host")
    return parsed


def _target(url: str) -> tuple[str, int]:
    """(host as the connection layer sees it, port) of a URL, or BlockedURLError."""
    parsed = _parsed(url)
    assert parsed.raw_host is not None and parsed.port is not None  # http(s): both set
    return parsed.raw_host.strip("[]"), parsed.port


def check_url(url: str, allow: list[str]) -> list[str]:
    """Raise BlockedURLError unless `url` may be fetched; return the checked addresses of
    its host. Resolves the host (blocking), so call it from a thread in async code."""
    host, port = _target(url)
    return checked_addresses(host, port, allow)


def _ip_literal(host: str) -> IPAddress | None:
    """The address an IP-literal host names, in any form a resolver would take
    (`2130706433`, `0x7f.1`, `0177.0.0.1` are 127.0.0.1), or None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not re.fullmatch(r"[0-9a-fA-Fx.]+", host) or not host[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _literal_refusal(host: str, allow: list[str]) -> str | None:
    """Why an IP-literal host may not be reached, or None (also for a name)."""
    ip = _ip_literal(host)
    if ip is None:
        return None
    _, networks = _parse_allow(allow)
    reason = blocked_reason(ip)
    if reason and not any(ip in net for net in networks if net.version == ip.version):
        return f"host '{host}' resolves to {reason}; allow it with KK_SSRF_ALLOW if intended"
    return None


class _CheckingResolver(AbstractResolver):
    """The client's resolver: every new connection's host, resolved once and checked; only
    checked addresses reach the connector. Nothing is cached (the connector is told not
    to), so a later DNS answer is checked again."""

    def __init__(self, allow: list[str]) -> None:
        self.allow = allow

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # BlockedURLError is no OSError: the connector lets it through to the caller as is.
        addresses = await asyncio.to_thread(checked_addresses, host, port, self.allow)
        return [
            ResolveResult(
                hostname=host,
                host=address.split("%", 1)[0],
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One per process: loading the CA bundle costs ~14 ms of CPU, far more than a request.
    An SSLContext may be shared by any number of connections and event loops."""
    return ssl.create_default_context()


def _origin(url: URL) -> tuple[str, str, int | None]:
    return url.scheme, (url.raw_host or "").rstrip(".").lower(), url.port


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


async def _read_limited(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLargeError(
            f"response of {declared} bytes exceeds the {max_bytes}-byte limit", response.status
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLargeError(
                f"response exceeds the {max_bytes}-byte limit", response.status
            )
        chunks.append(chunk)
    return b"".join(chunks)


# How long an idle kept-alive connection is kept (receivers often close theirs after 5 s).
KEEPALIVE_S = 4.0


class GuardedHttp:
    """A pooled client whose every connection is SSRF-checked; one serves a whole process.
    Create it inside the event loop that will use it."""

    def __init__(self, allow: list[str]) -> None:
        self.allow = allow
        connector = aiohttp.TCPConnector(
            resolver=_CheckingResolver(allow),
            use_dns_cache=False,  # every new connection resolves, and is checked, again
            ssl=_ssl_context(),
            # No pool-wide cap: the jobs' concurrency bounds the connections, and a wait
            # for a pool slot would eat a delivery's deadline.
            limit=0,
            keepalive_timeout=KEEPALIVE_S,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # one job's cookies are not the next one's
            trust_env=False,  # proxy variables must not route requests around the checks
            auto_decompress=False,  # the byte limit counts what arrives, not an inflated body
            timeout=aiohttp.ClientTimeout(total=None),
        )

    @property
    def closed(self) -> bool:
        return self._session.closed

    async def aclose(self) -> None:
        await self._session.close()

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
        a non-GET request is returned as is, not followed. FetchError for a request that
        failed on the way."""
        method = method.upper()
        current = _parsed(url)  # a malformed URL is refused before anything else
        first_origin = _origin(current)
        async with asyncio.timeout(timeout_s):
            for _hop in range(max_redirects + 1):
                current = _parsed(str(current))  # scheme and host of each hop
                refusal = _literal_refusal((current.raw_host or "").strip("[]"), self.allow)
                if refusal:  # an IP literal is connected to without resolving: check it here
                    raise BlockedURLError(refusal)
                try:
                    async with self._session.request(
                        method, current, data=content, headers=headers, allow_redirects=False
                    ) as response:
                        location = response.headers.get("location")
                        follow = (
                            _next_request(response.status, method, content)
                            if response.status in _REDIRECTS and location
                            else None
                        )
                        if follow is None:
                            body = await _read_limited(response, max_bytes)
                            return FetchResult(
                                response.status, response.headers, body, str(current)
                            )
                        method, content = follow
                        current = current.join(URL(location or ""))
                except aiohttp.InvalidURL as exc:  # e.g. a non-canonical IPv4 form, allowed
                    raise BlockedURLError(f"invalid URL: {exc}") from None
                except aiohttp.ClientError as exc:
                    raise FetchError(f"{type(exc).__name__}: {exc}") from exc
                if _origin(current) != first_origin:
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
