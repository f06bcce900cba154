"""One client for every job of a process, and still an SSRF check on every connection: a
kept-alive connection serves only the origin it was checked for, and a new connection
resolves and checks again. Real HTTP servers on loopback; only the resolver is replaced."""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError

from kk.config import Settings
from kk.processors.base import JobContext
from kk.processors.webhook import process_webhook
from tests.unit.helpers_http import local_server


def _resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Names in `answers` resolve to their next answer on each call (the last one repeats);
    returns the log of "name=address" given."""
    real: Callable[..., Any] = socket.getaddrinfo
    given: list[str] = []

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        queued = answers.get(host)
        if queued is None:
            return real(host, port, *args, **kwargs)
        address = queued.pop(0) if len(queued) > 1 else queued[0]
        given.append(f"{host}={address}")
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return given


def _context(tmp_path: Path, allow: list[str]) -> JobContext:
    settings = Settings(data_dir=tmp_path, ssrf_allow=allow, webhook_secret="s")
    return JobContext(settings=settings, redis=None, queues=None)  # type: ignore[arg-type]


def _job(url: str) -> Any:
    return SimpleNamespace(id="1", name="deliver", data={"url": url}, attemptsMade=0)


async def test_a_kept_alive_connection_serves_only_the_origin_it_was_checked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both names reach the same address and port; only one of them is allowed (by name).
    given = _resolver(monkeypatch, {"ok.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    ctx = _context(tmp_path, ["ok.test"])
    try:
        with local_server(keep_alive=True) as srv:
            port = srv.url.rsplit(":", 1)[1]
            for _ in range(3):
                assert (await process_webhook(_job(f"http://ok.test:{port}/a"), ctx))[
                    "status"
                ] == 200
            # An idle, checked connection to 127.0.0.1:port is in the pool: it must not
            # carry a request for another name.
            with pytest.raises(
                UnrecoverableError, match=re.escape("other.test' resolves to 127.0.0.1")
            ):
                await process_webhook(_job(f"http://other.test:{port}/b"), ctx)
            assert len(srv.received("/a")) == 3 and srv.received("/b") == []
            assert len(srv.connections) == 1, "the three deliveries shared one connection"
    finally:
        await ctx.aclose()
    assert given == ["ok.test=127.0.0.1", "other.test=127.0.0.1"], "one check per connection"


async def test_a_changed_dns_answer_is_checked_on_the_next_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Allowed when first resolved; the next connection is told 127.0.0.2, which is not.
    given = _resolver(monkeypatch, {"rebind.test": ["127.0.0.1", "127.0.0.2"]})
    ctx = _context(tmp_path, ["127.0.0.1"])
    try:
        with local_server() as srv:  # HTTP/1.0: each delivery needs a new connection
            port = srv.url.rsplit(":", 1)[1]
            url = f"http://rebind.test:{port}/hook"
            first = ctx.http
            assert (await process_webhook(_job(url), ctx))["status"] == 200
            with pytest.raises(UnrecoverableError, match=re.escape("127.0.0.2 is a loopback")):
                await process_webhook(_job(url), ctx)
            assert ctx.http is first, "both deliveries used the process's one client"
            assert len(srv.received("/hook")) == 1
    finally:
        await ctx.aclose()
    assert given == ["rebind.test=127.0.0.1", "rebind.test=127.0.0.2"]


async def test_deliveries_build_one_client_and_no_ssl_context_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = {"ssl": 0, "client": 0}
    real_ssl, real_init = ssl.create_default_context, aiohttp.ClientSession.__init__

    def counting_ssl(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built["ssl"] += 1
        return real_ssl(*args, **kwargs)

    def counting_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        built["client"] += 1
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting_ssl)
    monkeypatch.setattr(aiohttp.ClientSession, "__init__", counting_init)
    ctx = _context(tmp_path, ["127.0.0.1"])
    with local_server() as srv:
        for _ in range(10):
            await process_webhook(_job(f"{srv.url}/hook"), ctx)
    await ctx.aclose()
    assert len(srv.received("/hook")) == 10
    assert built["client"] == 1, built
    assert built["ssl"] <= 1, built  # none if an earlier test of this process built it
