"""The database goes away (and hangs) behind a TCP proxy: `/health` says so within its
deadline while Redis stays up, liveness stays 200, the queue API keeps working, and health
recovers on its own. Needs PostgreSQL: an embedded SQLite file cannot drop off a network."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import TEST_QUEUES
from tests.support.private_redis import proxied_redis
from tests.support.server import start_server, wait_for
from tests.support.tcp_proxy import TcpProxy

DATABASE_URL = os.environ.get("KK_TEST_DATABASE_URL")
TIMEOUT_MS = 1000
HEALTH_BUDGET_S = TIMEOUT_MS / 1000 + 1.5

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not DATABASE_URL,
        reason="set KK_TEST_DATABASE_URL=postgresql://user:password@host:port/db to run the "
        "database outage tests (the server is reached through a TCP proxy the test controls)",
    ),
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[httpx.Client, TcpProxy]]:
    assert DATABASE_URL
    url = make_url(DATABASE_URL)
    with TcpProxy(f"{url.host or '127.0.0.1'}:{url.port or 5432}") as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        with proxied_redis(tmp_path / "redis") as redis:
            env = {
                "KK_REDIS_URL": redis.url,
                "KK_DATABASE_URL": proxied.render_as_string(hide_password=False),
                "KK_QUEUE_PREFIX": f"kkd-{uuid.uuid4().hex[:8]}",
                "KK_QUEUES": json.dumps(TEST_QUEUES),
                "KK_HEALTH_TIMEOUT_MS": str(TIMEOUT_MS),
                "KK_SHUTDOWN_GRACE_S": "2",
            }
            with start_server(tmp_path / "kk", env) as srv, srv.client as http:
                yield http, proxy


def healthy(client: httpx.Client) -> bool:
    return client.get("/health").status_code == 200


def assert_database_down(client: httpx.Client, expect_timeout: bool) -> None:
    started = time.monotonic()
    response = client.get("/health")
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert elapsed < HEALTH_BUDGET_S, f"/health took {elapsed:.2f}s"
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["database"]["status"] == "down"
    assert body["error"]["database"]["message"]
    if expect_timeout:
        assert f"{TIMEOUT_MS}ms" in body["error"]["database"]["message"]
    assert body["info"]["redis"]["status"] == "up", "Redis is not affected"
    assert body["details"]["database"] == body["error"]["database"]

    live = client.get("/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["error"] == {"database": {"status": "down"}}
    # The queues live in Redis: they keep working while the database is away.
    assert client.get("/api/queues/stats").status_code == 200


def test_a_database_outage_is_reported_and_recovers(client: tuple[httpx.Client, TcpProxy]):
    http, proxy = client
    wait_for(lambda: healthy(http), timeout=30, what="/health to be ok")
    proxy.stop()  # refused connections, live ones reset
    assert_database_down(http, expect_timeout=False)
    proxy.start()
    wait_for(lambda: healthy(http), timeout=30, what="/health to recover")
    body = http.get("/health").json()
    assert body["info"]["database"]["status"] == "up" and body["error"] == {}


def test_a_hung_database_cannot_hang_the_probe(client: tuple[httpx.Client, TcpProxy]):
    http, proxy = client
    wait_for(lambda: healthy(http), timeout=30, what="/health to be ok")
    proxy.hold()  # connections accepted, nothing answers
    try:
        for _ in range(3):
            assert_database_down(http, expect_timeout=True)
    finally:
        proxy.release()
    wait_for(lambda: healthy(http), timeout=30, what="/health to recover")
