"""Two API servers and three worker processes on one Redis: every job runs exactly once,
both servers report the same counts and alerts, and a schedule ticks once per tick."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import ExitStack

from tests.support.server import start_server, start_worker, wait_for

QUEUES = {
    "so-work": {"processor": "tests.support.processors:flaky", "attempts": 1, "concurrency": 4,
                "alerts": {"waiting": 10000}},
    "so-tick": {"processor": "tests.support.processors:flaky", "attempts": 1},
}  # fmt: skip
SCHEDULES = {"so-every-second": {"queue": "so-tick", "job": "tick", "cron": "* * * * * *"}}


def test_two_servers_and_three_workers_stay_consistent(tmp_path, redis_url, redis_client):
    prefix = f"kko-{uuid.uuid4().hex[:8]}"
    env = {
        "KK_REDIS_URL": redis_url,
        "KK_QUEUE_PREFIX": prefix,
        "KK_QUEUES": json.dumps(QUEUES),
        "KK_SCHEDULES": json.dumps(SCHEDULES),
        "KK_RUN_WORKERS": "false",
    }
    with ExitStack() as stack:
        servers = [stack.enter_context(start_server(tmp_path / f"api{i}", env)) for i in range(2)]
        workers = [
            stack.enter_context(start_worker(tmp_path / f"w{i}", {**env, "KK_RUN_WORKERS": "true"}))
            for i in range(3)
        ]
        clients = [stack.enter_context(s.client) for s in servers]
        job_ids = []
        for i in range(60):
            client = clients[i % 2]
            jobs = [{"data": {"value": i * 10 + j}} for j in range(10)]
            response = client.post("/api/queues/so-work/jobs/bulk", json={"jobs": jobs})
            assert response.status_code == 201, response.text
            job_ids += response.json()["jobIds"]
        assert len(set(job_ids)) == 600

        def completed() -> int:
            return clients[0].get("/api/queues/so-work/stats").json()["data"]["completed"]

        wait_for(lambda: completed() == 600, timeout=60, what="600 jobs to complete")
        runs = redis_client.mget([f"kk-test:runs:{prefix}:so-work:{j}" for j in job_ids])
        assert runs == ["1"] * 600, "each job ran exactly once across three workers"
        shares = [w.log().count("job done queue=so-work") for w in workers]
        assert sum(shares) == 600 and sum(1 for s in shares if s) >= 2, shares

        # Five processes run the scheduler: each tick is still enqueued once.
        def ticks() -> list[dict]:
            page = clients[1].get("/api/queues/so-tick/jobs", params={"status": "completed"})
            return [j for j in page.json()["data"] if j["name"] == "tick"]

        wait_for(lambda: len(ticks()) >= 4, timeout=30, what="four scheduled ticks")
        ids = [j["id"] for j in ticks()]
        assert len(set(ids)) == len(ids)
        tick_runs = redis_client.mget([f"kk-test:runs:{prefix}:so-tick:{i}" for i in ids])
        assert tick_runs == ["1"] * len(ids), "every tick ran exactly once"

        # Stop the ticks so nothing moves, then both servers must tell the same story.
        disabled = clients[0].post("/api/queue-dashboard/scheduled-jobs/so-every-second/disable")
        assert disabled.status_code == 200, disabled.text
        time.sleep(2)
        views = [c.get("/api/queue-dashboard/overview").json()["data"] for c in clients]
        stats = [{q["name"]: q for q in v["stats"]} for v in views]
        assert stats[0]["so-work"] == stats[1]["so-work"]
        assert views[0]["metrics"]["total"] == views[1]["metrics"]["total"]
        assert views[0]["alerts"] == views[1]["alerts"]
