"""`GET /api/queues/workers` lists worker processes (not connections), and the dashboard's
health counts processes per queue."""

from __future__ import annotations

import json
import re
import socket
import uuid

import pytest

from tests.support.server import start_server, start_worker, wait_for

QUEUES = {
    "wl-a": {"processor": "tests.support.processors:flaky", "attempts": 1},
    "wl-b": {"processor": "tests.support.processors:flaky", "attempts": 1},
}


@pytest.fixture
def env(redis_url):
    return {
        "KK_REDIS_URL": redis_url,
        "KK_QUEUE_PREFIX": f"kkwl-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(QUEUES),
    }


def test_two_worker_processes_are_listed_with_their_queues(tmp_path, env):
    with (
        start_server(tmp_path / "api", env, ["--no-workers"]) as api,
        api.client as client,
    ):
        with (
            start_worker(tmp_path / "w1", env, ["--queues", "wl-a", "--concurrency", "3"]) as one,
            start_worker(tmp_path / "w2", env, ["--queues", "wl-a,wl-b"]) as two,
        ):
            pids = {one.proc.pid, two.proc.pid}

            def listed():
                response = client.get("/api/queues/workers")
                assert response.status_code == 200, response.text
                rows = response.json()["data"]
                mine = {r["pid"]: r for r in rows if r["pid"] in pids}
                ready = len(mine) == 2 and all(r["idleSeconds"] is not None for r in mine.values())
                return mine if ready and mine[two.proc.pid]["queues"] == ["wl-a", "wl-b"] else None

            rows = wait_for(listed, timeout=20, what="both worker processes listed")
            first, second = rows[one.proc.pid], rows[two.proc.pid]
            assert first["queues"] == ["wl-a"]
            assert first["concurrency"] == {"wl-a": 3}
            assert set(second["concurrency"]) == {"wl-a", "wl-b"}
            assert (
                first["host"]
                == second["host"]
                == re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())
            )
            for row in (first, second):
                assert row["started"].endswith("Z") and row["lastSeen"].endswith("Z")
                assert row["connections"] >= 2  # several connections, one row
            # The API process runs no workers: no row carries its pid.
            every = client.get("/api/queues/workers").json()["data"]
            assert api.proc.pid not in {r["pid"] for r in every}

            health = client.get("/api/queue-dashboard/health")
            assert health.status_code == 200, health.text
            queues = health.json()["data"]["queues"]["queues"]
            assert queues["wl-a"]["workers"] == 2, "processes, not connections"
            assert queues["wl-b"]["workers"] == 1

            # Not taken for a queue named "workers".
            response = client.get("/api/queues/workers/stats")
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "QUEUE_NOT_FOUND"

        def gone():
            rows = client.get("/api/queues/workers").json()["data"]
            return not [r for r in rows if r["pid"] in pids]

        wait_for(gone, timeout=10, what="stopped workers to leave the list")
