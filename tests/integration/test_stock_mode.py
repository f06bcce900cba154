"""KK_TUNED_WORKER=false: the fallback for a library upgrade runs the stock `bullmq.Worker`,
one `Queue.add` per add and redis-py's own pools, through the same API."""

from __future__ import annotations

import json
import uuid

from tests.integration.helpers import add_job, wait_job
from tests.support.server import start_server

QUEUES = {"st-work": {"processor": "tests.support.processors:flaky", "attempts": 2,
                      "backoff_type": "fixed", "backoff_delay_ms": 0}}  # fmt: skip


def test_stock_mode_adds_lists_runs_and_retries_jobs(tmp_path, redis_url):
    env = {
        "KK_REDIS_URL": redis_url,
        "KK_QUEUE_PREFIX": f"kks-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(QUEUES),
        "KK_TUNED_WORKER": "false",
    }
    with start_server(tmp_path / "data", env) as srv, srv.client as client:
        done = [add_job(client, "st-work", {"value": n}) for n in range(5)]
        failing = add_job(client, "st-work", {"fail": True, "value": 7})
        bulk = client.post(
            "/api/queues/st-work/jobs/bulk", json={"jobs": [{"data": {"value": 8}}] * 3}
        )
        assert bulk.status_code == 201, bulk.text
        for n, job_id in enumerate(done):
            assert wait_job(client, "st-work", "completed", job_id)["returnValue"] == {
                "doubled": 2 * n
            }
        failed = wait_job(client, "st-work", "failed", failing)
        assert failed["attempts"] == 2 and "requested failure" in failed["failedReason"]
        stats = client.get("/api/queues/st-work/stats").json()["data"]
        assert stats["completed"] == 8 and stats["failed"] == 1
    assert "stock bullmq worker" in srv.log()
