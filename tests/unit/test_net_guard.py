from __future__ import annotations

import ipaddress
import socket

import pytest

from kk.processors.net_guard import (
    BlockedURLError,
    ResponseTooLargeError,
    TooManyRedirectsError,
    blocked_reason,
    check_url,
    fetch_bytes,
)
from tests.unit.helpers_http import Reply, local_server

REFUSED = [
    "http://127.0.0.1/",
    "http://localhost:8080/x",
    "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://2130706433/",  # 127.0.0.1 in decimal
    "http://0x7f.1/",  # 127.0.0.1 in hex shorthand
    "http://0177.0.0.1/",  # octal
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fec0::1]/",  # site-local: Python's is_global says True
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_special_addresses_are_refused(url: str) -> None:
    with pytest.raises(BlockedURLError):
        check_url(url, [])


def test_numeric_host_forms_are_normalised_by_the_resolver() -> None:
    # The reason the check resolves instead of parsing: these are all 127.0.0.1.
    for host in ("2130706433", "0x7f.1", "127.1"):
        addresses = {info[4][0] for info in socket.getaddrinfo(host, 80)}
        assert addresses == {"127.0.0.1"}


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http:///nohost", "x"]
)
def test_bad_schemes_and_missing_hosts_are_refused(url: str) -> None:
    with pytest.raises(BlockedURLError):
        check_url(url, [])


def test_embedded_ipv4_is_judged_by_its_ipv4_address() -> None:
    assert blocked_reason(ipaddress.ip_address("64:ff9b::a00:1"))  # NAT64 of 10.0.0.1
    assert blocked_reason(ipaddress.ip_address("2002:a00:1::"))  # 6to4 of 10.0.0.1
    assert blocked_reason(ipaddress.ip_address("8.8.8.8")) is None
    assert blocked_reason(ipaddress.ip_address("2001:4860:4860::8888")) is None


def test_allow_list_by_cidr_address_and_host_name() -> None:
    check_url("http://127.0.0.1:9/", ["127.0.0.0/8"])
    check_url("http://127.0.0.1:9/", ["127.0.0.1"])
    check_url("http://localhost:9/", ["localhost"])
    check_url("http://[::1]:9/", ["::1"])
    with pytest.raises(BlockedURLError):
        check_url("http://10.0.0.1/", ["127.0.0.0/8"])


def test_the_reason_names_the_address() -> None:
    with pytest.raises(BlockedURLError, match=r"169\.254\.169\.254 is a link-local"):
        check_url("http://169.254.169.254/", [])


async def test_fetch_from_an_allowed_local_server() -> None:
    with local_server() as server:
        server.replies["/a"] = [Reply(200, b"hello")]
        result = await fetch_bytes(
            f"{server.url}/a", allow=["127.0.0.1"], timeout_s=5, max_bytes=100
        )
    assert (result.status, result.body) == (200, b"hello")


async def test_fetch_refuses_before_connecting_without_allow_list() -> None:
    with local_server() as server:
        with pytest.raises(BlockedURLError):
            await fetch_bytes(f"{server.url}/a", allow=[], timeout_s=5, max_bytes=100)
        assert server.requests == []


@pytest.mark.parametrize("target", ["http://169.254.169.254/", "http://10.0.0.1/"])
async def test_redirect_to_a_refused_address_is_refused(target: str) -> None:
    with local_server() as server:
        server.replies["/r"] = [Reply(302, b"", {"Location": target})]
        with pytest.raises(BlockedURLError):
            await fetch_bytes(f"{server.url}/r", allow=["127.0.0.1"], timeout_s=5, max_bytes=100)
        assert [r.path for r in server.requests] == ["/r"]


async def test_relative_redirects_are_followed_and_limited() -> None:
    with local_server() as server:
        server.replies["/r"] = [Reply(301, b"", {"Location": "/final"})]
        server.replies["/final"] = [Reply(200, b"done")]
        server.replies["/loop"] = [Reply(302, b"", {"Location": "/loop"})]
        result = await fetch_bytes(
            f"{server.url}/r", allow=["127.0.0.1"], timeout_s=5, max_bytes=100
        )
        assert result.body == b"done" and result.final_url == f"{server.url}/final"
        with pytest.raises(TooManyRedirectsError):
            await fetch_bytes(f"{server.url}/loop", allow=["127.0.0.1"], timeout_s=5, max_bytes=100)


async def test_a_post_is_not_turned_into_a_get_by_a_302() -> None:
    with local_server() as server:
        server.replies["/r"] = [Reply(302, b"", {"Location": "/elsewhere"})]
        result = await fetch_bytes(
            f"{server.url}/r", allow=["127.0.0.1"], timeout_s=5, max_bytes=100,
            method="POST", content=b"{}",
        )  # fmt: skip
    assert result.status == 302
    assert [r.path for r in server.requests] == ["/r"]


@pytest.mark.parametrize("declared", [True, False])
async def test_max_bytes_is_enforced(declared: bool) -> None:
    # Refused from the Content-Length when there is one, else while streaming.
    with local_server() as server:
        server.replies["/big"] = [Reply(200, b"x" * 50_000, send_length=declared)]
        with pytest.raises(ResponseTooLargeError) as caught:
            await fetch_bytes(f"{server.url}/big", allow=["127.0.0.1"], timeout_s=5, max_bytes=1000)
    assert caught.value.status == 200
