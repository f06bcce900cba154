"""`/health`, `/health/redis` and the probes against a real Redis: the contract's shapes and
formats, configurable thresholds, the eviction-policy warning and who may read what."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_QUEUES
from tests.integration.helpers import assert_error
from tests.support.private_redis import ProxiedRedis, proxied_redis
from tests.support.server import start_server

NO_CACHE = "no-cache, no-store, must-revalidate"
MS = re.compile(r"^\d+ms$")
MB = re.compile(r"^\d+\.\d\dMB$")
ADMIN, READER = "health-admin-key-0123456789abcdef01", "health-read-key-0123456789abcdef012"


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedRedis]:
    with proxied_redis(tmp_path_factory.mktemp("health-redis")) as proxied:
        yield proxied


def env_for(redis: ProxiedRedis, **extra: str) -> dict[str, str]:
    return {
        "KK_REDIS_URL": redis.direct_url,
        "KK_QUEUE_PREFIX": f"kkh-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(TEST_QUEUES),
        "KK_SHUTDOWN_GRACE_S": "2",
        **extra,
    }


@pytest.fixture(scope="module")
def client(redis: ProxiedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("health-kk")
    with start_server(data_dir, env_for(redis)) as srv, srv.client as http:
        yield http


def test_health_is_terminus_shaped_with_database_and_redis(client: httpx.Client):
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200, body
    assert response.headers["cache-control"] == NO_CACHE
    assert body["status"] == "ok"
    assert body["error"] == {}
    assert set(body["info"]) == {"database", "redis"} == set(body["details"])
    assert body["info"]["database"]["status"] == "up"
    redis = body["info"]["redis"]
    assert redis["status"] == "up"
    assert MS.match(redis["responseTime"]), redis
    assert MB.match(redis["memory"]["used"]), redis
    assert redis["memory"]["healthy"] is True
    assert body["details"] == body["info"]


def test_health_redis_reports_what_the_server_says(client: httpx.Client, redis: ProxiedRedis):
    response = client.get("/health/redis")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == NO_CACHE
    body = response.json()
    direct = redis.client()
    try:
        info = direct.info()
    finally:
        direct.close()
    assert body["status"] == "up" and body["ping"] == "PONG"
    assert MS.match(body["responseTime"])
    assert MB.match(body["memory"]["used"])
    assert body["memory"]["threshold"] == "1024MB"
    assert body["memory"]["healthy"] is True
    assert body["memory"]["policy"] == "noeviction"
    connections = body["connections"]
    assert 1 <= connections["current"] <= info["connected_clients"] + 5
    assert connections["threshold"] == 100 and connections["healthy"] is True
    assert body["mode"] == "standalone"
    assert body["version"] == info["redis_version"]
    assert body["warnings"] == []
    used = float(body["memory"]["used"].removesuffix("MB"))
    assert abs(used - info["used_memory"] / 1048576) < 1.0


def test_an_evicting_policy_is_reported_as_a_warning(client: httpx.Client, redis: ProxiedRedis):
    direct = redis.client()
    direct.config_set("maxmemory-policy", "allkeys-lru")
    try:
        body = client.get("/health/redis").json()
        assert body["status"] == "up"
        assert body["memory"]["policy"] == "allkeys-lru"
        assert any("allkeys-lru" in w and "noeviction" in w for w in body["warnings"]), body
        indicator = client.get("/health").json()["details"]["redis"]
        assert any("allkeys-lru" in w for w in indicator["warnings"]), indicator
    finally:
        direct.config_set("maxmemory-policy", "noeviction")
        direct.close()
    assert client.get("/health/redis").json()["warnings"] == []


def test_thresholds_are_configuration(redis: ProxiedRedis, tmp_path: Path):
    env = env_for(
        redis,
        KK_HEALTH_REDIS_MEMORY_THRESHOLD_MB="0.5",
        KK_HEALTH_REDIS_CONNECTIONS_THRESHOLD="1",
    )
    with start_server(tmp_path / "kk", env) as srv, srv.client as client:
        body = client.get("/health/redis").json()
        assert body["status"] == "up"
        assert body["memory"] | {"used": "x"} == {
            "used": "x",
            "threshold": "0.5MB",
            "healthy": False,
            "policy": "noeviction",
        }
        assert body["connections"]["threshold"] == 1
        assert body["connections"]["healthy"] is False
        assert len(body["warnings"]) == 2, body["warnings"]
        assert client.get("/health").json()["details"]["redis"]["memory"]["healthy"] is False


def test_probes(client: httpx.Client):
    live = client.get("/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert live.headers["cache-control"] == NO_CACHE
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ok",
        "info": {"database": {"status": "up"}, "redis": {"status": "up"}},
        "error": {},
        "details": {"database": {"status": "up"}, "redis": {"status": "up"}},
    }


def test_details_need_the_read_role_and_probes_stay_open(redis: ProxiedRedis, tmp_path: Path):
    env = env_for(redis, KK_API_KEYS=json.dumps([ADMIN]), KK_READ_API_KEYS=json.dumps([READER]))
    with start_server(tmp_path / "kk", env) as srv, srv.client as client:
        for path in ("/health", "/health/redis", "/metrics"):
            assert_error(client.get(path), 401, "UNAUTHORIZED")
            assert_error(client.get(path, headers={"X-API-Key": "wrong"}), 401, "UNAUTHORIZED")
            for key in (READER, ADMIN):
                answer = client.get(path, headers={"Authorization": f"Bearer {key}"})
                assert answer.status_code == 200, (path, answer.text)
        for path in ("/health/live", "/health/ready"):
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            assert "responseTime" not in answer.text and "memory" not in answer.text
