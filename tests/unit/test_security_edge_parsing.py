"""Pure parsing of the edge: Host names, forwarded chains, origins, keys, log escaping."""

from __future__ import annotations

import pytest

from kk.config.edge import check_key_strength, normalise_host, normalise_origin
from kk.edge.host_check import host_name
from kk.edge.proxies import TrustedProxies
from kk.text import printable


@pytest.mark.parametrize(
    ("header", "name"),
    [("LocalHost:8000", "localhost"), ("[::1]:9", "::1"), ("[::1]", "::1"),
     ("api.example.com", "api.example.com"), ("::1", "::1"), ("", "")],
)  # fmt: skip
def test_host_name(header, name):
    assert host_name(header) == name


def test_the_right_most_untrusted_address_is_the_client():
    proxies = TrustedProxies(None, ["10.0.0.0/8", "127.0.0.1"])
    assert proxies.real_client(["6.6.6.6", " 1.2.3.4"], "10.0.0.1") == "1.2.3.4"
    assert proxies.real_client(["1.2.3.4", "10.0.0.2"], "10.0.0.1") == "1.2.3.4"
    assert proxies.real_client([], "10.0.0.1") == "10.0.0.1"
    assert proxies.real_client(["evil\nname", "10.0.0.3"], "127.0.0.1") == "10.0.0.3"
    assert proxies.real_client(["[2001:db8::1]"], "127.0.0.1") == "2001:db8::1"


def test_origins_and_hosts_are_normalised_or_refused():
    assert normalise_origin("HTTP://LocalHost:5173/") == "http://localhost:5173"
    assert normalise_origin("https://app.example.com:443") == "https://app.example.com"
    for bad in ("*", "http://*.example.com", "http://a.example/path", "ftp://a", "null"):
        with pytest.raises(ValueError):
            normalise_origin(bad)
    assert normalise_host("*.Example.COM") == "*.example.com"
    assert normalise_host("[::1]") == "::1"
    with pytest.raises(ValueError):
        normalise_host("api.example.com:8000")


def test_short_keys_are_refused_without_showing_them():
    with pytest.raises(ValueError, match="kk keygen") as info:
        check_key_strength("s3cret-but-short")
    assert "s3cret" not in str(info.value)
    check_key_strength("k" * 32)


def test_log_text_escapes_control_characters():
    assert printable("/a\nb\r\x1b[0m\u2028") == "/a\\x0ab\\x0d\\x1b[0m\\u2028"
    assert printable("/api/queues/stats") == "/api/queues/stats"
