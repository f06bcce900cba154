"""Redis at maxmemory (noeviction): the health checks warn near it and say down once writes
are refused; a worker that cannot take jobs logs it (rate-limited) and counts it."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from tests.integration.helpers import assert_error, wait_job
from tests.support.full_redis import private_redis as own_redis
from tests.support.full_redis import used_memory
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
REFUSAL_LOG = re.compile(r"worker (\S+): Redis error \(out_of_memory\)")


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[str, redis.Redis]]:
    with own_redis(tmp_path / "redis-data") as pair:
        yield pair


def _env(url: str) -> dict[str, str]:
    prefix = f"full-{uuid.uuid4().hex[:6]}"
    return {"KK_REDIS_URL": url, "KK_QUEUES": json.dumps(QUEUES), "KK_QUEUE_PREFIX": prefix}


_used = used_memory


def _writes(direct: redis.Redis) -> bool:
    try:
        return bool(direct.set("kk-test:small", "1", px=2000))
    except redis.exceptions.OutOfMemoryError:
        return False


def _refusals(metrics_text: str) -> float:
    """Over every queue: the process's workers back off together, one asking at a time."""
    found = re.findall(
        r'^kk_worker_redis_errors_total\{kind="out_of_memory",queue="[^"]+"\} (\S+)$',
        metrics_text,
        re.M,
    )
    return sum(float(value) for value in found)


def test_health_warns_near_maxmemory(tmp_path, private_redis):
    url, direct = private_redis
    # Small jobs: near maxmemory, yet with room for the largest add (see the next test).
    env = {**_env(url), "KK_MAX_JOB_DATA_BYTES": "1024"}
    with start_server(tmp_path / "kk", env, ["--no-workers"]) as srv, srv.client as client:
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


def test_health_says_writes_refused_when_a_full_size_job_would_not_fit(tmp_path, private_redis):
    """Just below maxmemory a tiny SET passes, but the add of a large job is refused (the
    command being read counts against maxmemory): /health/redis must not say up."""
    url, direct = private_redis
    big = {"data": {"blob": "x" * 60_000}}  # under KK_MAX_JOB_DATA_BYTES (64 KiB)
    with start_server(tmp_path / "kk", _env(url), ["--no-workers"]) as srv, srv.client as client:
        client.get("/health/redis")  # settle the connections' memory first
        try:
            # Room for a tiny write, not for the big add: found by trying, as the server's
            # own use moves by a few KB (a new connection, a reply being sent).
            for room in range(16_000, 72_000, 8_000):
                direct.config_set("maxmemory", _used(direct) + room)
                response = client.get("/health/redis")
                small = _writes(direct)  # the probe above stored nothing
                if small and client.post("/api/queues/full/jobs", json=big).status_code == 507:
                    break
                direct.config_set("maxmemory", 0)
            else:
                pytest.fail("no maxmemory found where a small write passes and a big add fails")
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["status"] == "down"
            assert "refuses writes" in body["error"] and "KK_MAX_JOB_DATA_BYTES" in body["error"]
            health = client.get("/health")
            assert health.status_code == 503
            assert "refuses writes" in health.json()["error"]["redis"]["message"]
        finally:
            direct.config_set("maxmemory", 0)
        assert client.get("/health/redis").json()["status"] == "up"


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

            # The workers back off (0.5 s doubling to 5 s), one asking at a time, and ask
            # only when a job is due: the refusals are few, and counted.
            refusals = wait_for(
                lambda: _refusals(client.get("/metrics").text) >= 1,
                timeout=30,
                what="the workers' refused attempts to be counted",
            )
            assert refusals
            logged = Counter(REFUSAL_LOG.findall(srv.log()))
            assert logged and max(logged.values()) <= 2, "logged, but rate-limited"
            assert "workers back off" in srv.log()
        finally:
            direct.config_set("maxmemory", 0)
        for job_id in ids:
            wait_job(client, "full", "completed", job_id, timeout=30)
        assert client.get("/health/redis").json()["status"] == "up"
