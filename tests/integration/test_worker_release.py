"""A job released at shutdown is counted where a scrape can see it: by the live process
whose stalled check hands it on, not only by the one exiting."""

from __future__ import annotations

import json
import uuid

from tests.integration.helpers import add_job, wait_job
from tests.support.full_redis import scrape, total
from tests.support.server import free_port, start_server, start_worker

QUEUES = {"rel": {"processor": "tests.support.processors:nap", "attempts": 1}}


def test_a_release_shows_in_the_metrics_of_the_process_that_takes_the_job(tmp_path, redis_url):
    env = {
        "KK_REDIS_URL": redis_url,
        "KK_QUEUE_PREFIX": f"kkr-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(QUEUES),
        "KK_SHUTDOWN_GRACE_S": "0.5",
        # Short locks and checks: the released job is recovered within seconds.
        "KK_LOCK_DURATION_MS": "1000",
        "KK_STALLED_INTERVAL_MS": "500",
    }
    port = free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    queue = ["--queues", "rel"]
    with (
        start_server(tmp_path / "api", env, ["--no-workers"]) as api,
        api.client as client,
        start_worker(tmp_path / "a", env, queue) as first,
    ):
        job_id = add_job(client, "rel", {"seconds": 4})
        wait_job(client, "rel", "active", job_id)
        with start_worker(tmp_path / "b", env, [*queue, "--metrics-port", str(port)]):
            assert total(scrape(metrics_url), "kk_jobs_stalled_total", queue="rel") == 0
            first.stop()  # SIGTERM: past the 0.5 s grace, the job is released
            assert "job released queue=rel" in first.log()
            wait_job(client, "rel", "completed", job_id, timeout=30)
            found = scrape(metrics_url)
            assert total(found, "kk_jobs_stalled_total", queue="rel") == 1
            assert total(found, "kk_jobs_total", queue="rel", outcome="completed") == 1
