"""Validation of the edge's settings: API key strength, host patterns, proxies, origins.

Raising ValueError here makes pydantic refuse the configuration at start-up, with the
message (never the value: it may be a key) shown by `kk serve`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

MIN_KEY_CHARS = 32
_HOST_RE = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def check_key_strength(key: str) -> None:
    if len(key) < MIN_KEY_CHARS:
        raise ValueError(
            f"an API key is {len(key)} characters long; keys need at least {MIN_KEY_CHARS} "
            "so they cannot be guessed. Generate one with `kk keygen`"
        )


def normalise_host(pattern: str) -> str:
    """`api.example.com`, `*.example.com` (any subdomain) or an IP address; no port."""
    value = pattern.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    if not _HOST_RE.fullmatch(value):
        raise ValueError(
            f"allowed host '{pattern}' must be a host name without port, e.g. api.example.com "
            "or *.example.com"
        )
    return value


def normalise_proxy(entry: str) -> str:
    try:
        return str(ipaddress.ip_network(entry.strip(), strict=False))
    except ValueError:
        raise ValueError(f"trusted proxy '{entry}' is not an IP address or CIDR range") from None


def normalise_origin(origin: str) -> str:
    """An exact origin, `scheme://host[:port]`, as browsers send it in `Origin`."""
    value = origin.strip().lower().rstrip("/")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "*" in value
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(
            f"CORS origin '{origin}' must be an exact origin such as http://localhost:5173 "
            "(no wildcard, no path)"
        )
    default = {"http": 80, "https": 443}[parts.scheme]
    netloc = parts.netloc.rsplit(":", 1)[0] if port == default else parts.netloc
    return f"{parts.scheme}://{netloc}"


NORMALISERS: dict[str, Callable[[str], str]] = {
    "allowed_hosts": normalise_host,
    "trusted_proxies": normalise_proxy,
    "cors_origins": normalise_origin,
}
