"""Redis at maxmemory (noeviction): the health checks warn near it and say down once writes
are refused; a worker that cannot take jobs logs it (rate-limited) and counts it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
import redis

from kk.infra.embedded_redis import EmbeddedRedis
from tests.integration.helpers import assert_error, wait_job
from tests.support.server import start_server, wait_for

# The processor writes to Redis too, so a job taken while Redis is full fails: retries,
# spaced out, let it finish once memory is freed.
QUEUES = {
    "full": {
        "processor": "tests.support.processors:flaky",
        "attempts": 30,
        "backoff_type": "fixed",
        "backoff_delay_ms": 500,
    }
}
REFUSAL_LOG = re.compile(r"worker full: Redis error \(out_of_memory\)")


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[str, redis.Redis]]:
    server = EmbeddedRedis(tmp_path / "redis-data")
    url = server.start()
    # Admin credentials: the service's own user may not run CONFIG SET.
    direct = redis.Redis.from_url(server.admin_url, decode_responses=True)
    try:
        yield url, direct
    finally:
        direct.close()
        server.stop()


def _env(url: str) -> dict[str, str]:
    prefix = f"full-{uuid.uuid4().hex[:6]}"
    return {"KK_REDIS_URL": url, "KK_QUEUES": json.dumps(QUEUES), "KK_QUEUE_PREFIX": prefix}


def _used(direct: redis.Redis) -> int:
    return int(direct.info("memory")["used_memory"])


def _refusals(metrics_text: str) -> float:
    match = re.search(
        r'^kk_worker_redis_errors_total\{kind="out_of_memory",queue="full"\} (\S+)$',
        metrics_text,
        re.M,
    )
    return float(match.group(1)) if match else 0.0


def test_health_warns_near_maxmemory(tmp_path, private_redis):
    url, direct = private_redis
    with start_server(tmp_path / "kk", _env(url), ["--no-workers"]) as srv, srv.client as client:
        client.get("/health/redis")  # settle the connections' memory first
        direct.config_set("maxmemory", int(_used(direct) / 0.94))
        try:
            response = client.get("/health/redis")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "up"
            assert body["memory"]["healthy"] is False
            assert any("of maxmemory" in w for w in body["warnings"]), body["warnings"]
            brief = client.get("/health").json()["details"]["redis"]
            assert brief["status"] == "up" and brief["memory"]["healthy"] is False
        finally:
            direct.config_set("maxmemory", 0)
        body = client.get("/health/redis").json()
        assert body["memory"]["healthy"] is True and body["warnings"] == []


def test_full_redis_is_down_and_a_refused_worker_says_so(tmp_path, private_redis):
    url, direct = private_redis
    with start_server(tmp_path / "kk", _env(url)) as srv, srv.client as client:
        # Due in 2 s: the worker tries to take them once Redis is already full.
        ids = []
        for value in range(3):
            body = {"data": {"value": value}, "options": {"delay": 2000}}
            response = client.post("/api/queues/full/jobs", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["jobId"])
        direct.config_set("maxmemory", _used(direct) - 256 * 1024)
        try:
            response = client.get("/health/redis")
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["status"] == "down"
            assert "refuses writes" in body["error"]
            assert body["memory"]["healthy"] is False and body["memory"]["maxmemory"]
            health = client.get("/health")
            assert health.status_code == 503
            assert "refuses writes" in health.json()["error"]["redis"]["message"]
            assert_error(
                client.post("/api/queues/full/jobs", json={"data": {}}), 507, "REDIS_OUT_OF_MEMORY"
            )

            refusals = wait_for(
                lambda: _refusals(client.get("/metrics").text) >= 5,
                timeout=20,
                what="the worker's refused attempts to be counted",
            )
            assert refusals
            logged = REFUSAL_LOG.findall(srv.log())
            assert 1 <= len(logged) <= 2, "logged, but rate-limited"
            assert _refusals(client.get("/metrics").text) > len(logged)
        finally:
            direct.config_set("maxmemory", 0)
        for job_id in ids:
            wait_job(client, "full", "completed", job_id, timeout=30)
        assert client.get("/health/redis").json()["status"] == "up"
