"""DNS rebinding: the name is resolved once, checked, and the connection goes to that
checked address, whatever a later resolution would say. Real HTTP server on loopback; only
the system resolver is replaced, by one that changes its answer after the first call."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import aiohappyeyeballs
import pytest

from kk.processors.net_guard import FetchError, fetch_bytes
from tests.unit.helpers_http import local_server

PUBLIC = "93.184.215.14"  # globally routable; never actually reached in these tests


def _rebinding_resolver(
    monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str]
) -> list[str]:
    """Make `name` resolve to answers[0], then answers[1] on every later call; returns the
    log of the answers given."""
    real: Callable[..., Any] = socket.getaddrinfo
    given: list[str] = []

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        address = answers[min(len(given), 1)]
        given.append(address)
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return given


async def test_a_second_answer_for_an_allowed_name_is_not_used(monkeypatch) -> None:
    with local_server() as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        # Checked: 127.0.0.1 (allowed). Later: 127.0.0.2, which is not allowed.
        given = _rebinding_resolver(monkeypatch, "rebind.test", ["127.0.0.1", "127.0.0.2"])
        result = await fetch_bytes(
            f"http://rebind.test:{port}/hook",
            allow=["127.0.0.1"],
            timeout_s=5,
            max_bytes=1024,
            method="POST",
            content=b"{}",
        )
    assert result.status == 200
    assert given == ["127.0.0.1"], "resolved once, for the check"
    (request,) = srv.received("/hook")
    assert request.headers["Host"] == f"rebind.test:{port}", "the name is kept for Host"


async def test_a_public_answer_then_loopback_never_reaches_loopback(monkeypatch) -> None:
    connected: list[str] = []
    real_start = aiohappyeyeballs.start_connection

    async def spy(addr_infos: Any, *args: Any, **kwargs: Any) -> Any:
        hosts = [info[4][0] for info in addr_infos]
        connected.extend(hosts)
        if PUBLIC in hosts:  # no real network in tests: the public host "is down"
            raise OSError("unreachable in tests")
        return await real_start(addr_infos, *args, **kwargs)

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", spy)
    with local_server() as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        given = _rebinding_resolver(monkeypatch, "rebind.test", [PUBLIC, "127.0.0.1"])
        with pytest.raises(FetchError) as caught:
            await fetch_bytes(
                f"http://rebind.test:{port}/internal", allow=[], timeout_s=5, max_bytes=1024
            )
        assert srv.requests == [], "the loopback server was never reached"
    assert "rebind.test" in str(caught.value)
    assert connected == [PUBLIC], "the connection went to the checked address only"
    assert given == [PUBLIC]
