"""Redis goes away and comes back, through a proxy the test controls (and, once, for real):
health answers 503 within its deadline, liveness stays 200, the queue API answers
REDIS_CONNECTION_ERROR quickly, and everything recovers on its own with no job lost."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_QUEUES
from tests.integration.helpers import add_job, assert_error, job_in, wait_job
from tests.support.private_redis import ProxiedRedis, proxied_redis
from tests.support.server import KKServer, start_server, wait_for

TIMEOUT_MS = 1000
# The deadline plus what a loaded machine adds to an HTTP round trip.
HEALTH_BUDGET_S = TIMEOUT_MS / 1000 + 1.5
# The API client's retries with backoff on refused connections, plus slack.
API_BUDGET_S = 4.0


def env_for(url: str, **extra: str) -> dict[str, str]:
    return {
        "KK_REDIS_URL": url,
        "KK_QUEUE_PREFIX": f"kkh-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(TEST_QUEUES),
        "KK_HEALTH_TIMEOUT_MS": str(TIMEOUT_MS),
        "KK_SHUTDOWN_GRACE_S": "2",
        **extra,
    }


@pytest.fixture
def redis_proxy(tmp_path: Path) -> Iterator[ProxiedRedis]:
    with proxied_redis(tmp_path / "redis") as proxied:
        yield proxied


def timed_get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def redis_up(client: httpx.Client) -> bool:
    body = client.get("/health").json()
    return body["details"]["redis"]["status"] == "up"


def wait_healthy(srv: KKServer, client: httpx.Client) -> None:
    wait_for(lambda: redis_up(client), timeout=30, what="redis to be up in /health")
    wait_for(
        lambda: client.get("/health/redis").status_code == 200, timeout=10, what="/health/redis"
    )


def assert_redis_down(client: httpx.Client) -> None:
    response, elapsed = timed_get(client, "/health")
    assert response.status_code == 503, response.text
    assert elapsed < HEALTH_BUDGET_S, f"/health took {elapsed:.2f}s"
    assert response.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["redis"]["status"] == "down"
    assert body["error"]["redis"]["message"]
    assert "redis" not in body["info"]
    assert body["details"]["redis"] == body["error"]["redis"]

    response, elapsed = timed_get(client, "/health/redis")
    assert response.status_code == 503, response.text
    assert elapsed < HEALTH_BUDGET_S, f"/health/redis took {elapsed:.2f}s"
    assert response.json()["status"] == "down"
    assert response.json()["error"]

    response, elapsed = timed_get(client, "/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert elapsed < 1.0, f"/health/live took {elapsed:.2f}s"

    response, elapsed = timed_get(client, "/health/ready")
    assert response.status_code == 503, response.text
    assert response.json()["error"]["redis"] == {"status": "down"}
    assert elapsed < HEALTH_BUDGET_S


def assert_queue_api_unavailable(client: httpx.Client) -> None:
    for method, path, body in (
        ("GET", "/api/queues/stats", None),
        ("GET", "/api/queues/t-idle/jobs", None),
        ("POST", "/api/queues/t-basic/jobs", {"data": {"value": 1}}),
    ):
        started = time.monotonic()
        response = client.request(method, path, json=body)
        elapsed = time.monotonic() - started
        assert_error(response, 503, "REDIS_CONNECTION_ERROR")
        assert elapsed < API_BUDGET_S, f"{method} {path} took {elapsed:.2f}s"


def assert_recovers_with_nothing_lost(client: httpx.Client, waiting: list[str]) -> None:
    for job_id in waiting:
        assert job_in(client, "t-idle", "waiting", job_id), f"job {job_id} was lost"
    stats = client.get("/api/queues/t-idle/stats")
    assert stats.status_code == 200 and stats.json()["data"]["waiting"] == len(waiting)
    # The workers reconnect by themselves: a job added now is processed.
    job_id = add_job(client, "t-basic", {"value": 21})
    done = wait_job(client, "t-basic", "completed", job_id, timeout=60)
    assert done["returnValue"] == {"doubled": 42}


def test_redis_outage_is_reported_fast_and_recovers(tmp_path: Path, redis_proxy: ProxiedRedis):
    with start_server(tmp_path / "kk", env_for(redis_proxy.url)) as srv, srv.client as client:
        wait_healthy(srv, client)
        waiting = [add_job(client, "t-idle", {"n": i}) for i in range(3)]
        first = add_job(client, "t-basic", {"value": 1})
        wait_job(client, "t-basic", "completed", first)

        redis_proxy.proxy.stop()  # refused connections, live ones reset
        assert_redis_down(client)
        assert_queue_api_unavailable(client)

        redis_proxy.proxy.start()
        wait_healthy(srv, client)
        assert_recovers_with_nothing_lost(client, waiting)
        assert job_in(client, "t-basic", "completed", first), "finished jobs are kept too"


def test_a_hung_redis_cannot_hang_the_probes(tmp_path: Path, redis_proxy: ProxiedRedis):
    # Longer than the three probes below take (3 x 1 s): the check they share is still
    # waiting for Redis, so each probe's own deadline is what answers it.
    env = env_for(redis_proxy.url, KK_REDIS_TIMEOUT_S="5")
    with start_server(tmp_path / "kk", env) as srv, srv.client as client:
        wait_healthy(srv, client)
        waiting = [add_job(client, "t-idle", {"n": i}) for i in range(2)]

        redis_proxy.proxy.hold()  # connections accepted, nothing answers
        for _ in range(3):  # repeated probes don't pile up or slow down
            response, elapsed = timed_get(client, "/health")
            assert response.status_code == 503, response.text
            assert TIMEOUT_MS / 1000 - 0.1 <= elapsed < HEALTH_BUDGET_S, elapsed
            message = response.json()["error"]["redis"]["message"]
            assert f"{TIMEOUT_MS}ms" in message, message
        response, elapsed = timed_get(client, "/health/live")
        assert response.status_code == 200 and elapsed < 1.0
        # The API's own Redis answer timeout (5 s here) bounds a hung call.
        started = time.monotonic()
        response = client.get("/api/queues/stats")
        assert_error(response, 503, "REDIS_CONNECTION_ERROR")
        assert time.monotonic() - started < 5 + 1.5

        redis_proxy.proxy.release()
        wait_healthy(srv, client)
        assert_recovers_with_nothing_lost(client, waiting)


def test_a_killed_redis_server_restarted_keeps_its_jobs(tmp_path: Path):
    """A real crash: SIGKILL, then the same server binary again on the same address. The
    jobs survive through the AOF (fsync every second, so the test waits past it)."""
    with proxied_redis(tmp_path / "redis") as redis:
        env = env_for(redis.direct_url)
        with start_server(tmp_path / "kk", env) as srv, srv.client as client:
            wait_healthy(srv, client)
            waiting = [add_job(client, "t-idle", {"n": i}) for i in range(3)]
            time.sleep(1.5)  # past appendfsync everysec

            redis.server.kill()
            assert_redis_down(client)
            assert_queue_api_unavailable(client)

            assert redis.server._spawn() == redis.direct_url
            wait_healthy(srv, client)
            assert_recovers_with_nothing_lost(client, waiting)
